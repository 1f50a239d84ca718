"""The churn plugin's settings (``TENURE_CHURN_<FIELD>``); DOMAIN.md's numbers are the defaults.

Rule thresholds and weights here are the defaults of the churn plugin's own rules (other
plugins' signals carry their own defaults); staff change a rule through
the API (``saveChurnRule``), which overrides these until the rule is deleted again.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenure.core.context import ServiceContext
from tenure.core.settings import Settings, SettingsError


@dataclass(frozen=True)
class ChurnSettings:
    #: A health score below this (0-100) raises a warning.
    threshold: int = 60
    #: Below this the risk is high; from here to ``threshold`` it is medium.
    high_risk_below: int = 30
    #: RFM figures (orders and spend) are counted over this window; customers who ordered in
    #: it are the "active base" the quintiles split.
    rfm_window_days: int = 365
    #: Segment thresholds on the 1-5 scores.
    champion_min_recency: int = 4
    champion_min_frequency: int = 4
    loyal_min_frequency: int = 3
    potential_min_recency: int = 3
    lost_max_recency: int = 1
    #: Lifecycle: first order this recent is "new"; nothing at all this long is "silent";
    #: no order this long is "lost".
    new_days: int = 30
    silent_days: int = 60
    lost_days: int = 365
    #: Rule defaults (threshold, weight). Each weight alone takes a customer below the
    #: warning threshold (100 - 45 = 55 < 60): a rule at its threshold raises a warning by itself.
    no_order_days: int = 90
    no_order_weight: int = 45
    gap_factor: float = 3.0
    gap_weight: int = 45
    #: The gap rule ignores silences shorter than this, whatever the usual gap.
    gap_min_days: int = 14
    interactions_drop: float = 0.5
    interactions_weight: int = 45
    #: Interactions are compared between the last period of this length and the one before.
    interactions_period_days: int = 90
    #: The previous period needs at least this many interactions for a fall to mean anything.
    interactions_min_previous: int = 3
    complaints_count: int = 1
    complaints_weight: int = 45
    complaints_window_days: int = 90
    #: Interaction kinds that count as complaints.
    complaint_kinds: tuple[str, ...] = ("complaint",)
    #: Customers per batch where a full rescore counts some customers afresh by id.
    batch_size: int = 20000
    #: The nightly rescore counts everyone's figures afresh, rather than moving the stored
    #: ones on, when more than this share of the customers changed since the last one (to be
    #: counted afresh, or moved on from their own rescore's moment): past a fifth, counting
    #: everyone costs about the same, and the ids of so many are not worth holding.
    recount_above: float = 0.2
    #: Sort and hash memory (PostgreSQL ``work_mem``, MB) for the full rescore's statements:
    #: the quintiles sort the active base and the figures hash every customer.
    work_mem_mb: int = 128
    #: New warnings followed up (task, timeline entry) per transaction.
    follow_up_batch: int = 2000
    #: Offer a win-back action (the ``churn_win_back`` hook) when a warning is raised.
    win_back: bool = False
    rescore_schedule: str = "30 3 * * *"
    #: Orders, refunds and interactions mark their customers; one job rescores the customers
    #: marked in each window of this many seconds (0: at once, a job per change).
    rescore_delay_seconds: int = 5

    def check(self) -> None:
        if not 0 <= self.high_risk_below <= self.threshold <= 100:
            raise SettingsError("TENURE_CHURN_THRESHOLD and _HIGH_RISK_BELOW: 0 <= high_risk_below <= threshold <= 100")
        for name in ("rfm_window_days", "new_days", "silent_days", "lost_days", "interactions_period_days",
                     "complaints_window_days", "batch_size", "work_mem_mb", "follow_up_batch"):
            if getattr(self, name) < 1:
                raise SettingsError(f"TENURE_CHURN_{name.upper()}: must be at least 1")
        if not 0 <= self.recount_above <= 1:
            raise SettingsError("TENURE_CHURN_RECOUNT_ABOVE: a share from 0 to 1")
        for name in ("champion_min_recency", "champion_min_frequency", "loyal_min_frequency",
                     "potential_min_recency", "lost_max_recency"):
            if not 1 <= getattr(self, name) <= 5:
                raise SettingsError(f"TENURE_CHURN_{name.upper()}: a score from 1 to 5")


def churn_settings(source: ServiceContext | Settings) -> ChurnSettings:
    settings = source.settings if isinstance(source, ServiceContext) else source
    return settings.for_plugin("churn", ChurnSettings)
