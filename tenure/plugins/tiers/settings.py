"""The tiers plugin's settings (``TENURE_TIERS_<FIELD>``): defaults for new tiers and the review schedule."""

from __future__ import annotations

from dataclasses import dataclass

from tenure.core.settings import Settings, SettingsError


@dataclass(frozen=True)
class TiersSettings:
    #: The rolling window a new tier qualifies over, unless it says otherwise.
    window_days: int = 365
    #: How long a member keeps a tier they no longer qualify for, unless the tier says otherwise.
    grace_days: int = 30
    review_schedule: str = "30 3 * * *"

    def check(self) -> None:
        if self.window_days < 1 or self.grace_days < 0:
            raise SettingsError("TENURE_TIERS_WINDOW_DAYS must be at least 1 and TENURE_TIERS_GRACE_DAYS not negative")


def tiers_settings(settings: Settings) -> TiersSettings:
    return settings.for_plugin("tiers", TiersSettings)
