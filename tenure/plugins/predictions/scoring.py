"""Fitting the models on the orders and scoring every customer (numpy and scipy, imported
only by the processes that fit or compute a figure).

:func:`fit_and_score` reads the summary (:mod:`tenure.plugins.predictions.statements`, one
statement), fits BG/NBD and Gamma-Gamma (:mod:`tenure.plugins.predictions.fitting`), checks a fit
on the calibration days against the holdout days, scores every customer in one vectorised
pass and rewrites the per-customer table in bulk, all in the caller's transaction. Too few
buyers and it refuses in words, keeping the previous predictions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import clock
from tenure.core.context import ServiceContext
from tenure.core.db import UTCDateTime
from tenure.plugins.predictions import fitting, statements
from tenure.plugins.predictions.fitting import Array, BgNbd, GammaGamma
from tenure.plugins.predictions.models import Fit, Prediction
from tenure.plugins.predictions.results import CustomerFigures, Refused
from tenure.plugins.predictions.settings import PredictionsSettings, predictions_settings

EPOCH = date(1970, 1, 1)
WEEK = 7.0
#: The holdout table groups customers by repeat purchases in the calibration days: 0 ... 7+.
HOLDOUT_GROUPS = 8
#: Serialises fits on PostgreSQL (the CLI and the nightly job may meet).
LOCK_KEY = 0x7072_6564  # "pred"


@dataclass
class Summary:
    """One array per column of :func:`tenure.plugins.predictions.statements.summary`."""

    customer_id: np.ndarray
    first_day: Array
    last_day: Array
    occasions: Array
    value: Array
    first_value: Array
    cal_occasions: Array
    cal_last_day: Array
    cal_value: Array

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass
class Outcome:
    fit: Fit
    scored: int
    seconds: float
    #: Seconds each step took, in order.
    steps: dict[str, float]


def day_number(day: date) -> int:
    return (day - EPOCH).days


async def read_summary(session: AsyncSession, dialect: str, cfg: PredictionsSettings, end_at: datetime,
                       cal_end: int, zone: str = "UTC") -> Summary:
    """Every buyer's summary as arrays: on PostgreSQL through a binary COPY of the statement
    (fixed-width rows read by numpy, no Python object per value), on SQLite streamed a batch
    at a time."""
    sql = statements.summary(dialect, cfg.merge_same_day, zone)
    if dialect == "postgresql":
        table = await _copy_summary(session, sql, end_at, cal_end)
    else:
        stmt = text(sql).bindparams(bindparam("end_at", type_=UTCDateTime()), bindparam("cal_end"))
        parts: list[np.ndarray] = []
        result = await session.stream(stmt, {"end_at": end_at, "cal_end": cal_end})
        async for part in result.partitions(cfg.batch_size):
            parts.append(np.array([tuple(row) for row in part], dtype=np.float64))
        table = np.concatenate(parts) if parts else np.zeros((0, len(statements.COLUMNS)))
    columns = {name: np.ascontiguousarray(table[:, i]) for i, name in enumerate(statements.COLUMNS)}
    columns["customer_id"] = columns["customer_id"].astype(np.int64)
    return Summary(**columns)


#: PostgreSQL's binary COPY: a 19-byte header, then per row a field count and, per field, its
#: length and value (all float8 here), then a 2-byte trailer.
_COPY_ROW = np.dtype([("count", ">i2"), *((f, t) for i in range(len(statements.COLUMNS))
                                           for f, t in ((f"len{i}", ">i4"), (f"val{i}", ">f8")))])


async def _copy_summary(session: AsyncSession, sql: str, end_at: datetime, cal_end: int) -> np.ndarray:
    floats = ", ".join(f"CAST({c} AS DOUBLE PRECISION)" for c in statements.COLUMNS)
    query = f"SELECT {floats} FROM ({sql}) summary".replace(":end_at", "$1").replace(":cal_end", "$2")
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    received = bytearray()

    async def keep(chunk: bytes) -> None:
        received.extend(chunk)

    await driver.copy_from_query(query, end_at, cal_end, output=keep, format="binary")
    rows = np.frombuffer(memoryview(received)[19: len(received) - 2], dtype=_COPY_ROW)
    table = np.empty((len(rows), len(statements.COLUMNS)))
    for i in range(len(statements.COLUMNS)):
        table[:, i] = rows[f"val{i}"]
    return table


def refusal(cfg: PredictionsSettings, customers: int, repeat_buyers: int, what: str = "") -> str | None:
    """Why the fit will not run on this many buyers, or None."""
    if customers >= cfg.min_customers and repeat_buyers >= cfg.min_repeat_buyers:
        return None
    repeat = "bought on two or more days" if cfg.merge_same_day else "bought two or more times"
    return (f"too few buyers to fit{what}: {repeat_buyers} repeat buyers (customers who {repeat}) among "
            f"{customers} customers; the fit needs at least {cfg.min_repeat_buyers} repeat buyers and "
            f"{cfg.min_customers} customers (TENURE_PREDICTIONS_MIN_REPEAT_BUYERS, _MIN_CUSTOMERS)")


def _repeat_mean(value: Array, first_value: Array, x: Array) -> Array:
    """Mean value of each customer's repeat occasions (0 where there is none)."""
    return np.divide(value - first_value, x, out=np.zeros_like(x), where=x > 0)


def fit_models(x: Array, t_x: Array, t: Array, mean: Array,
               near: tuple[BgNbd, GammaGamma] | None = None) -> tuple[BgNbd, GammaGamma]:
    """Both models on one period's summary (times in weeks); Gamma-Gamma on the repeat buyers
    whose repeat purchases were worth something. ``near``: where to start the search."""
    repeat = (x > 0) & (mean > 0)
    return (fitting.fit_bgnbd(x, t_x, t, near[0] if near else None),
            fitting.fit_gamma_gamma(x[repeat], mean[repeat], near[1] if near else None))


def _params(model: BgNbd | GammaGamma) -> dict[str, float]:
    return {k: round(v, 6) for k, v in vars(model).items()}


def holdout_check(cfg: PredictionsSettings, s: Summary, cal_end: int,
                  near: tuple[BgNbd, GammaGamma] | None = None) -> dict[str, Any]:
    """Fit on the days before ``cal_end`` (starting the search ``near`` the full fit) and set
    the forecast of the next ``holdout_days`` against what the same customers did, by repeat
    purchases in calibration."""
    first_holdout_day = (EPOCH + timedelta(days=cal_end)).isoformat()
    known = s.cal_occasions > 0
    x = s.cal_occasions[known] - 1
    check: dict[str, Any] = {"calibrationEnd": first_holdout_day, "days": cfg.holdout_days,
                             "customers": int(known.sum()), "repeatBuyers": int((x > 0).sum())}
    refused = refusal(cfg, int(known.sum()), int((x > 0).sum()), " the calibration days")
    if refused:
        return {**check, "skipped": refused}
    first = s.first_day[known]
    t_x = (s.cal_last_day[known] - first) / WEEK
    t = (cal_end - 1 - first) / WEEK
    bgnbd, gg = fit_models(x, t_x, t, _repeat_mean(s.cal_value[known], s.first_value[known], x), near)
    predicted = fitting.expected_occasions(bgnbd, x, t_x, t, cfg.holdout_days / WEEK)
    actual = (s.occasions - s.cal_occasions)[known]
    group = np.minimum(x, HOLDOUT_GROUPS - 1).astype(np.int64)
    rows = []
    for k in range(HOLDOUT_GROUPS):
        members = group == k
        n = int(members.sum())
        rows.append({"purchases": k, "label": f"{k}+" if k == HOLDOUT_GROUPS - 1 else str(k), "customers": n,
                     "actual": round(float(actual[members].mean()), 4) if n else None,
                     "predicted": round(float(predicted[members].mean()), 4) if n else None})
    return {**check, "bgnbd": _params(bgnbd), "gammaGamma": _params(gg), "rows": rows,
            "actualTotal": int(actual.sum()), "predictedTotal": round(float(predicted.sum()), 2), "skipped": None}


def basis(cfg: PredictionsSettings, zone: str = "UTC") -> dict[str, Any]:
    return {"mergeSameDay": cfg.merge_same_day, "timeZone": zone, "horizonDays": cfg.horizon_days,
            "discountRate": cfg.discount_rate, "discountStepDays": cfg.discount_step_days,
            "holdoutDays": cfg.holdout_days}


def score(cfg: PredictionsSettings, bgnbd: BgNbd, gg: GammaGamma, x: Array, t_x: Array, t: Array,
          mean: Array) -> tuple[Array, Array, Array | None]:
    """Probability active, expected occasions and discounted value over the horizon, for
    every customer at once; no value when the Gamma-Gamma mean is infinite (q <= 1)."""
    horizon = cfg.horizon_days / WEEK
    active = fitting.probability_active(bgnbd, x, t_x, t)
    expected = fitting.expected_occasions(bgnbd, x, t_x, t, horizon)
    value = None
    if gg.q > 1:
        discounted = fitting.discounted_occasions(bgnbd, x, t_x, t, horizon, cfg.discount_rate,
                                                  cfg.discount_step_days / WEEK)
        value = np.rint(fitting.expected_value(gg, x, mean) * discounted)
    unusable = int(np.sum(~np.isfinite(active) | ~np.isfinite(expected)
                          | (~np.isfinite(value) if value is not None else False)))
    if unusable:
        raise fitting.FitError(
            f"the fitted parameters (r {bgnbd.r:.4g}, alpha {bgnbd.alpha:.4g}, a {bgnbd.a:.4g}, b {bgnbd.b:.4g}; "
            f"p {gg.p:.4g}, q {gg.q:.4g}, v {gg.v:.4g}) give no figures for {unusable} of {len(x)} customers: "
            "too little or too uniform a history for these models")
    return active, expected, value


async def _store_fit(session: AsyncSession, values: dict[str, Any]) -> Fit:
    """Replace the fit of the same day; a refusal never replaces a fitted row."""
    same_day = await session.scalar(select(Fit).where(Fit.as_of == values["as_of"]))
    if same_day is not None:
        if values["status"] == "refused" and same_day.status == "fitted":
            return Fit(**values)
        await session.execute(delete(Fit).where(Fit.id == same_day.id))
    fit = Fit(**values)
    session.add(fit)
    await session.flush()
    return fit


COLUMNS = ("customer_id", "fit_id", "occasions", "recency_days", "age_days", "mean_value", "probability_active",
           "expected_orders", "predicted_value")
#: Columns held as floats with NaN for null, and those written as whole numbers.
NULLABLE = ("mean_value", "predicted_value")
WHOLE = ("customer_id", "fit_id", "occasions", "recency_days", "age_days", "predicted_value")


def _rows(columns: dict[str, np.ndarray], start: int, stop: int) -> list[tuple[Any, ...]]:
    """Rows ``start`` to ``stop`` as Python values, None for NaN: built a batch at a time, so
    the scoring never holds a Python object per value of every customer."""
    values = []
    for name in COLUMNS:
        part = columns[name][start:stop]
        if name in NULLABLE:
            cast: Any = int if name in WHOLE else float
            values.append([None if v != v else cast(v) for v in part.tolist()])
        else:
            values.append(part.astype(np.int64).tolist() if name in WHOLE else part.tolist())
    return list(zip(*values, strict=True))


async def write_predictions(session: AsyncSession, dialect: str, batch: int, columns: dict[str, np.ndarray]) -> None:
    """Replace every customer's row: COPY on PostgreSQL, batched inserts on SQLite."""
    n = len(columns["customer_id"])
    if dialect == "postgresql":
        await session.execute(text("TRUNCATE predictions_customers"))
        raw = await (await session.connection()).get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for start in range(0, n, batch):
            await driver.copy_records_to_table("predictions_customers", columns=list(COLUMNS),
                                               records=_rows(columns, start, start + batch))
        return
    await session.execute(delete(Prediction))
    for start in range(0, n, batch):
        await session.execute(insert(Prediction), [dict(zip(COLUMNS, row, strict=True))
                                                   for row in _rows(columns, start, start + batch)])


async def fit_and_score(ctx: ServiceContext) -> Outcome:
    """Fit both models on the orders of the whole days before today, check them against the
    holdout days, score every buyer and store it all; raises :class:`Refused` (after
    recording the refusal) when there are too few buyers."""
    started = time.perf_counter()
    steps: dict[str, float] = {}

    def step(name: str) -> None:
        steps[name] = time.perf_counter() - started - sum(steps.values())

    cfg = predictions_settings(ctx)
    session = ctx.session
    dialect = session.get_bind().dialect.name
    now = clock.now()
    # Days are the business's (TENURE_TIMEZONE): the fit stands on the whole days before
    # today there, and an order's day is the day it was placed on there.
    zone = ctx.settings.zone
    as_of = clock.business_day(now, zone)
    end = day_number(as_of)
    cal_end = end - cfg.holdout_days
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        await session.execute(text(f"SET LOCAL work_mem = '{int(cfg.work_mem_mb)}MB'"))
        await session.execute(text("SET LOCAL jit = off"))
        # The summary is read through a cursor: plan it for every row, not the first tenth.
        await session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
    end_at = datetime.combine(as_of, datetime.min.time(), zone).astimezone(UTC)
    s = await read_summary(session, dialect, cfg, end_at, cal_end, ctx.settings.timezone)
    step("summary read")
    x = s.occasions - 1
    record: dict[str, Any] = {"as_of": as_of, "fitted_at": now, "customers": len(s),
                              "repeat_buyers": int((x > 0).sum()), "occasions": int(s.occasions.sum()),
                              "basis": basis(cfg, ctx.settings.timezone)}
    refused = refusal(cfg, len(s), int((x > 0).sum()))
    if refused:
        await _store_fit(session, {**record, "status": "refused", "message": refused,
                                   "seconds": time.perf_counter() - started})
        raise Refused(refused)
    t_x = (s.last_day - s.first_day) / WEEK
    t = (end - 1 - s.first_day) / WEEK
    mean = _repeat_mean(s.value, s.first_value, x)
    try:
        bgnbd, gg = fit_models(x, t_x, t, mean)
        step("models fitted")
        active, expected, value = score(cfg, bgnbd, gg, x, t_x, t, mean)
        step("customers scored")
    except fitting.FitError as error:
        await _store_fit(session, {**record, "status": "refused", "message": str(error),
                                   "seconds": time.perf_counter() - started})
        raise Refused(str(error)) from None
    check = holdout_check(cfg, s, cal_end, (bgnbd, gg)) if cfg.holdout_days > 0 else None
    step("holdout check")
    message = "" if value is not None else (
        f"the Gamma-Gamma fit gave q = {gg.q:.3f} (at most 1): the mean value of a purchase is unbounded, "
        "so no predicted values were written")
    fit = await _store_fit(session, {**record, "status": "fitted", "message": message, "r": bgnbd.r,
                                     "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b,
                                     "bgnbd_log_likelihood": bgnbd.log_likelihood, "p": gg.p, "q": gg.q, "v": gg.v,
                                     "gamma_gamma_log_likelihood": gg.log_likelihood, "holdout": check})
    repeat = x > 0
    columns = {
        "customer_id": s.customer_id, "fit_id": np.full(len(s), fit.id), "occasions": s.occasions,
        "recency_days": s.last_day - s.first_day, "age_days": end - 1 - s.first_day,
        "mean_value": np.where(repeat, mean, np.nan), "probability_active": active, "expected_orders": expected,
        "predicted_value": np.full(len(s), np.nan) if value is None else value,
    }
    step("rows prepared")
    await write_predictions(session, dialect, cfg.batch_size, columns)
    fit.seconds = time.perf_counter() - started
    await session.flush()
    step("rows written")
    return Outcome(fit, len(s), fit.seconds, steps)


def figures(cfg: PredictionsSettings, fit: Fit, row: Prediction, days: int) -> CustomerFigures:
    """A customer's figures over ``days``, from their stored summary and the fit it was scored with."""
    bgnbd = BgNbd(fit.r or 0, fit.alpha or 0, fit.a or 0, fit.b or 0, 0.0)
    gg = GammaGamma(fit.p or 0, fit.q or 0, fit.v or 0, 0.0)
    x = np.array([row.occasions - 1], dtype=np.float64)
    t_x = np.array([row.recency_days / WEEK])
    t = np.array([row.age_days / WEEK])
    mean = np.array([row.mean_value or 0.0])
    horizon = days / WEEK
    expected = float(fitting.expected_occasions(bgnbd, x, t_x, t, horizon)[0])
    value = None
    if gg.q > 1 and row.predicted_value is not None:
        discounted = fitting.discounted_occasions(bgnbd, x, t_x, t, horizon, cfg.discount_rate,
                                                  cfg.discount_step_days / WEEK)
        value = int(np.rint(fitting.expected_value(gg, x, mean) * discounted)[0])
    return CustomerFigures(row.probability_active, expected, value)
