"""What the churn rules will flag in the coming days if nothing changes: customers who
reach the no-order rule's threshold on each day (their last order that many days back),
among those without an open warning and not yet lost. The other rules depend on what
customers do, so only this one is foreseeable."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from tenure.core.clock import as_utc
from tenure.core.context import ServiceContext
from tenure.core.contributions import Forecaster, ForecastItem
from tenure.core.models import Customer
from tenure.plugins.churn.models import Warning
from tenure.plugins.churn.rules import effective_rules
from tenure.plugins.churn.settings import churn_settings


async def forecast(ctx: ServiceContext, first: date, last: date) -> list[ForecastItem]:
    rule = (await effective_rules(ctx))["no_order"]
    cfg = churn_settings(ctx)
    if not rule.enabled or rule.weight <= 100 - cfg.threshold:
        return []  # on its own the rule does not raise a warning
    days = int(rule.threshold)
    start = datetime.combine(first, time(), UTC) - timedelta(days=days)
    end = datetime.combine(last + timedelta(days=1), time(), UTC) - timedelta(days=days)
    open_warning = select(Warning.customer_id).where(Warning.status == "open")
    reaching: Counter[date] = Counter()
    for at, n in await ctx.session.execute(
            select(Customer.last_order_at, func.count()).where(
                Customer.last_order_at >= start, Customer.last_order_at < end, Customer.id.not_in(open_warning))
            .group_by(Customer.last_order_at)):
        if at is not None:
            reaching[as_utc(at).date() + timedelta(days=days)] += int(n)
    return [ForecastItem(d, "churn.no_order", n,
                         f"{n} customer{'s' * (n != 1)} reach{'es' * (n == 1)} {days} days without an order "
                         "(a warning at the next rescore)") for d, n in reaching.items()]


def forecasters() -> list[Forecaster]:
    return [Forecaster("churn", forecast, "customers reaching the no-order rule")]
