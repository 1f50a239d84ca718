"""The loyalty plugin's settings (``TENURE_LOYALTY_<FIELD>``); DOMAIN.md's numbers are the defaults."""

from __future__ import annotations

from dataclasses import dataclass

from tenure.core.context import ServiceContext
from tenure.core.settings import Settings, SettingsError


@dataclass(frozen=True)
class LoyaltySettings:
    #: Points earned by an order stay pending (shown, not spendable) this long after the order.
    return_window_days: int = 14
    #: Points expire this long after they were earned, oldest first; 0 means never.
    expiry_days: int = 365
    #: Members are reminded this many days before points expire ("expiring soon").
    reminder_days: int = 30
    #: Qualifying points (what counts toward a tier) are summed over this window.
    qualifying_window_days: int = 365
    #: With no base earn rule for a currency: ``default_points`` per ``default_per_amount`` minor units.
    default_points: int = 1
    default_per_amount: int = 100
    #: What one point costs the business, in minor units (for the liability figure).
    point_value_minor: int = 1
    expiry_schedule: str = "0 2 * * *"
    release_schedule: str = "15 * * * *"
    birthday_schedule: str = "0 6 * * *"

    def check(self) -> None:
        for name in ("return_window_days", "expiry_days", "reminder_days", "point_value_minor", "default_points"):
            if getattr(self, name) < 0:
                raise SettingsError(f"TENURE_LOYALTY_{name.upper()}: must not be negative")
        if self.default_per_amount < 1 or self.qualifying_window_days < 1:
            raise SettingsError("TENURE_LOYALTY_DEFAULT_PER_AMOUNT and _QUALIFYING_WINDOW_DAYS must be at least 1")


def loyalty_settings(source: ServiceContext | Settings) -> LoyaltySettings:
    """Read once per ``Settings`` object (they never change) and kept on it."""
    settings = source.settings if isinstance(source, ServiceContext) else source
    found = getattr(settings, "_loyalty_settings", None)
    if found is None:
        found = settings.for_plugin("loyalty", LoyaltySettings)
        object.__setattr__(settings, "_loyalty_settings", found)
    return found
