"""The predictions plugin's tables: each fit (parameters, sample, check) and each customer's
figures as the last scoring saw them."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Date, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.db import Base, BigId, Json, plugin_model_base

if TYPE_CHECKING:  # mypy sees the declarative base; at run time the tables are marked as the plugin's
    Model = Base
else:
    Model = plugin_model_base("predictions")


class Fit(Model):
    """One fit of the models, as of a day (orders of the whole days before it): refused (too
    few buyers; ``message`` says why, the parameters are null) or fitted. Fitting again on
    the same day replaces that day's row, so the nightly job run twice leaves one."""

    __tablename__ = "predictions_fits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, unique=True)
    status: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(String(500), default="")
    fitted_at: Mapped[datetime]
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    repeat_buyers: Mapped[int] = mapped_column(Integer, default=0)
    occasions: Mapped[int] = mapped_column(BigInteger, default=0)
    r: Mapped[float | None] = mapped_column(Float)
    alpha: Mapped[float | None] = mapped_column(Float)
    a: Mapped[float | None] = mapped_column(Float)
    b: Mapped[float | None] = mapped_column(Float)
    bgnbd_log_likelihood: Mapped[float | None] = mapped_column(Float)
    p: Mapped[float | None] = mapped_column(Float)
    q: Mapped[float | None] = mapped_column(Float)
    v: Mapped[float | None] = mapped_column(Float)
    gamma_gamma_log_likelihood: Mapped[float | None] = mapped_column(Float)
    #: The calibration/holdout check (see :func:`tenure.plugins.predictions.service.holdout_check`).
    holdout: Mapped[dict[str, Any] | None] = mapped_column(Json)
    #: The settings the figures stand on (same-day merging, horizon, discount rate ...).
    basis: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Prediction(Model):
    """A customer's summary and figures as of the fit ``fit_id``; customers who never bought
    have none. Rewritten whole by each scoring."""

    __tablename__ = "predictions_customers"

    # No foreign key: the scoring writes every row at once, and a check per row would lock
    # each customer's row. The merge handler deletes the merged customer's row.
    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    fit_id: Mapped[int] = mapped_column(BigInteger)
    #: Purchase occasions in all, and repeat ones (the model's x).
    occasions: Mapped[int] = mapped_column(Integer)
    #: Days from the first occasion to the last (t_x), and to the end of the fit's data (T).
    recency_days: Mapped[int] = mapped_column(Integer)
    age_days: Mapped[int] = mapped_column(Integer)
    #: Mean net value of the repeat occasions, minor units; null without one.
    mean_value: Mapped[float | None] = mapped_column(Float)
    probability_active: Mapped[float] = mapped_column(Float)
    #: Over the settings' horizon (``horizon_days``).
    expected_orders: Mapped[float] = mapped_column(Float)
    predicted_value: Mapped[int | None] = mapped_column(BigInteger)
