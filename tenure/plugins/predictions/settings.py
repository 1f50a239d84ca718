"""The predictions plugin's settings (``TENURE_PREDICTIONS_<FIELD>``)."""

from __future__ import annotations

from dataclasses import dataclass

from tenure.core.context import ServiceContext
from tenure.core.settings import Settings, SettingsError


@dataclass(frozen=True)
class PredictionsSettings:
    #: Orders of one customer on one day (UTC: the core has no business time zone) are one
    #: purchase occasion, as in the published models; off, every order is one.
    merge_same_day: bool = True
    #: The fit refuses with fewer repeat buyers (customers with two or more occasions) or
    #: fewer customers than these: the parameters would say more about chance than about them.
    min_repeat_buyers: int = 20
    min_customers: int = 100
    #: The calibration/holdout check: the models are fitted again on the orders before the
    #: last this many days and their forecast of those days compared with what happened
    #: (273 days = the 39 weeks of the published check); 0 skips the check.
    holdout_days: int = 273
    #: The horizon of the stored figures (``expectedOrders`` and ``predictedValue`` without
    #: ``days``, sorting, the retention bands).
    horizon_days: int = 365
    #: Yearly rate at which future purchases are discounted to today in ``predictedValue``.
    discount_rate: float = 0.10
    #: Discounting steps: expected purchases of each step count at the step's end.
    discount_step_days: int = 30
    #: Members see their own prediction in ``me`` only when the business allows it.
    member_visible: bool = False
    #: Upper bounds of the ``probability_active_band`` groups (a share from 0 to 1) and of the
    #: ``predicted_value_band`` groups (minor units over ``horizon_days``).
    active_bands: tuple[float, ...] = (0.25, 0.5, 0.75)
    value_bands: tuple[int, ...] = (2_000, 10_000, 50_000)
    #: Customers read and written per batch by the scoring.
    batch_size: int = 50_000
    #: Sort and hash memory (PostgreSQL ``work_mem``, MB) for the summary statement.
    work_mem_mb: int = 128
    fit_schedule: str = "15 4 * * *"

    def check(self) -> None:
        for name in ("min_repeat_buyers", "min_customers", "horizon_days", "discount_step_days", "batch_size",
                     "work_mem_mb"):
            if getattr(self, name) < 1:
                raise SettingsError(f"TENURE_PREDICTIONS_{name.upper()}: must be at least 1")
        if self.holdout_days < 0:
            raise SettingsError("TENURE_PREDICTIONS_HOLDOUT_DAYS: 0 (no check) or more days")
        if not 0 <= self.discount_rate < 10:
            raise SettingsError("TENURE_PREDICTIONS_DISCOUNT_RATE: a yearly rate such as 0.1 for 10%")
        if list(self.active_bands) != sorted(self.active_bands) or not all(0 < b < 1 for b in self.active_bands):
            raise SettingsError("TENURE_PREDICTIONS_ACTIVE_BANDS: rising shares between 0 and 1, e.g. 0.25,0.5,0.75")
        if list(self.value_bands) != sorted(self.value_bands) or not all(b > 0 for b in self.value_bands):
            raise SettingsError("TENURE_PREDICTIONS_VALUE_BANDS: rising amounts in minor units, e.g. 2000,10000")


def predictions_settings(source: ServiceContext | Settings) -> PredictionsSettings:
    settings = source.settings if isinstance(source, ServiceContext) else source
    return settings.for_plugin("predictions", PredictionsSettings)
