"""The predictions plugin's rules: reading fits, the merge handler, the report, and the entry
points of the fit and of a customer's figures, whose numeric work lives in
:mod:`tenure.plugins.predictions.scoring` (numpy and scipy are imported there, when first needed,
so a server or worker that never fits starts without them)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.context import ServiceContext
from tenure.plugins.predictions.models import Fit, Prediction
from tenure.plugins.predictions.results import CustomerFigures
from tenure.plugins.predictions.settings import PredictionsSettings

if TYPE_CHECKING:
    from tenure.plugins.predictions.scoring import Outcome


async def fit_and_score(ctx: ServiceContext) -> Outcome:
    """Fit, check and score now (see :func:`tenure.plugins.predictions.scoring.fit_and_score`)."""
    from tenure.plugins.predictions import scoring

    return await scoring.fit_and_score(ctx)


def figures(cfg: PredictionsSettings, fit: Fit, row: Prediction, days: int | None) -> CustomerFigures:
    """A customer's figures over ``days``: the stored ones for the settings' horizon."""
    if days is None or days == cfg.horizon_days:
        return CustomerFigures(row.probability_active, row.expected_orders, row.predicted_value)
    from tenure.plugins.predictions import scoring

    return scoring.figures(cfg, fit, row, days)


async def latest_fit(session: AsyncSession) -> Fit | None:
    return await session.scalar(select(Fit).where(Fit.status == "fitted").order_by(Fit.as_of.desc()).limit(1))


async def last_refusal(session: AsyncSession, after: date | None) -> Fit | None:
    stmt = select(Fit).where(Fit.status == "refused").order_by(Fit.as_of.desc()).limit(1)
    if after is not None:
        stmt = stmt.where(Fit.as_of > after)
    return await session.scalar(stmt)


async def on_customers_merged(ctx: ServiceContext, event: Any) -> None:
    """The merged customer goes; so does their row (the survivor's is refreshed by the next fit)."""
    await ctx.session.execute(delete(Prediction).where(Prediction.customer_id == event.merged_id)
                              .execution_options(synchronize_session=False))


def report_lines(fit: Fit) -> list[str]:
    """The fit and its check as a person reads them (``tenure predict report``)."""
    lines = [
        f"fitted {fit.fitted_at:%Y-%m-%d %H:%M} UTC on the orders before {fit.as_of} in {fit.seconds:.1f} s: "
        f"{fit.customers} customers, {fit.repeat_buyers} repeat buyers, {fit.occasions} purchase occasions "
        f"(same-day orders {'merged' if fit.basis.get('mergeSameDay') else 'counted apart'}, days in UTC)",
        f"BG/NBD        r = {fit.r:.4f}  alpha = {fit.alpha:.4f}  a = {fit.a:.4f}  b = {fit.b:.4f}  "
        f"(log-likelihood {fit.bgnbd_log_likelihood:.2f}; times in weeks)",
        f"Gamma-Gamma   p = {fit.p:.4f}  q = {fit.q:.4f}  v = {fit.v:.4f}  "
        f"(log-likelihood {fit.gamma_gamma_log_likelihood:.2f}; minor units)",
    ]
    if fit.message:
        lines.append(fit.message)
    check = fit.holdout
    if not check:
        lines.append("no holdout check (TENURE_PREDICTIONS_HOLDOUT_DAYS=0)")
        return lines
    lines.append(f"holdout check: fitted on the orders before {check['calibrationEnd']}, "
                 f"forecast of the {check['days']} days from then against what happened")
    if check.get("skipped"):
        lines.append(f"  skipped: {check['skipped']}")
        return lines
    cal, cgg = check["bgnbd"], check["gammaGamma"]
    lines.append(f"  calibration: {check['customers']} customers, {check['repeatBuyers']} repeat buyers; "
                 f"r = {cal['r']:.4f} alpha = {cal['alpha']:.4f} a = {cal['a']:.4f} b = {cal['b']:.4f}; "
                 f"p = {cgg['p']:.4f} q = {cgg['q']:.4f} v = {cgg['v']:.4f}")
    lines.append("  repeat purchases   customers   actual per customer   predicted per customer")
    for row in check["rows"]:
        if row["customers"]:
            lines.append(f"  {row['label']:>16}   {row['customers']:>9}   {row['actual']:>19.3f}   "
                         f"{row['predicted']:>22.3f}")
    lines.append(f"  total purchases in the holdout days: actual {check['actualTotal']}, "
                 f"predicted {check['predictedTotal']:.1f}")
    return lines
