"""Personal data: export everything held about a customer, and erase it.

The core's own tables are found by their ``customer_id`` column, so a core table added later
is exported without a change here; plugins answer through the ``tenure_personal_data`` hook.
Erasure removes what identifies the person (name, contacts, identities, birthday, free
text) and keeps the history's shape: orders, amounts, ledgers and counts stay, so totals
and reports do not move.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.context import ServiceContext
from tenure.core.contributions import PersonalData
from tenure.core.db import Base, plugin_tables
from tenure.core.errors import NotFound
from tenure.core.models import Customer, CustomerContact, CustomerIdentity, CustomerTag, Order, OrderLine

ERASED_NAME = "erased"

#: Free-text columns of core tables that may name or describe the person, and what they
#: become on erasure.
SCRUB: dict[str, dict[str, Any]] = {
    "interactions": {"summary": "", "payload": {}},
    "tasks": {"title": ERASED_NAME, "reason": ""},
    "events": {"summary": "", "data": {}},
    "messages": {"to_address": None, "subject": "", "body": "", "data": {}},
}


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _row(table: Table, row: Any) -> dict[str, Any]:
    return {c.name: _json(row._mapping[c]) for c in table.columns}


async def export_rows(session: AsyncSession, statement: Select[Any]) -> list[dict[str, Any]]:
    """The rows a select returns as JSON-ready dicts (dates as ISO text): for a plugin's
    ``PersonalData.export``."""
    return [{key: _json(value) for key, value in row._mapping.items()} for row in await session.execute(statement)]


def _customer_tables() -> list[Table]:
    """The core's tables that hold rows of one customer (besides ``customers`` itself)."""
    return [t for t in plugin_tables(None) if "customer_id" in t.columns]


def handlers(ctx: ServiceContext) -> list[PersonalData]:
    found: list[PersonalData] = []
    for name in ctx.plugins.names():
        plugin = ctx.plugins.pm.get_plugin(name)
        hook = getattr(plugin, "tenure_personal_data", None)
        if hook is not None:
            found.extend(hook() or [])
    return found


async def export_customer(ctx: ServiceContext, customer_id: int) -> dict[str, Any]:
    """Everything held about the customer: ``customer``, then one list per core table, then
    one entry per plugin under ``plugins``."""
    customers = Customer.__table__
    row = (await ctx.session.execute(select(customers).where(customers.c.id == customer_id))).first()
    if row is None:
        raise NotFound("customer", customer_id, "id")
    document: dict[str, Any] = {"customer": _row(customers, row)}  # type: ignore[arg-type]
    for table in _customer_tables():
        rows = await ctx.session.execute(select(table).where(table.c.customer_id == customer_id))
        document[table.name] = [_row(table, r) for r in rows]
    lines = OrderLine.__table__
    line_rows = await ctx.session.execute(
        select(lines).join(Order.__table__, Order.__table__.c.id == lines.c.order_id)
        .where(Order.__table__.c.customer_id == customer_id).order_by(lines.c.id)
    )
    document["order_lines"] = [_row(lines, r) for r in line_rows]  # type: ignore[arg-type]
    document["plugins"] = {h.name: await h.export(ctx.session, customer_id) for h in handlers(ctx)}
    return document


async def erase_customer(ctx: ServiceContext, customer_id: int) -> Customer:
    """Remove the customer's personal data and keep the anonymised history. Erasing an
    erased customer again changes nothing more."""
    customer = await ctx.session.get(Customer, customer_id, with_for_update=ctx.dialect == "postgresql")
    if customer is None:
        raise NotFound("customer", customer_id, "customerId")
    if customer.erased_at is not None:
        return customer
    for model in (CustomerContact, CustomerIdentity, CustomerTag):
        await ctx.session.execute(delete(model).where(model.customer_id == customer_id))
    customer.name = ERASED_NAME
    customer.birthday = None
    customer.locale = None
    customer.source_channel = None
    customer.consent_email = customer.consent_sms = customer.consent_push = False
    customer.erased_at = ctx.now()
    customer.updated_at = ctx.now()
    for table_name, values in SCRUB.items():
        table = Base.metadata.tables.get(table_name)
        if table is not None:
            await ctx.session.execute(update(table).where(table.c.customer_id == customer_id).values(**values))
    for handler in handlers(ctx):
        await handler.erase(ctx.session, customer_id)
    await ctx.session.flush()
    await ctx.publish("customer.erased", source="core", customer_id=customer_id,
                      summary="personal data erased", timeline=True)
    return customer
