"""The journeys plugin's settings (``TENURE_JOURNEYS_<FIELD>``)."""

from __future__ import annotations

from dataclasses import dataclass

from tenure.core.settings import Settings, SettingsError


@dataclass(frozen=True)
class JourneysSettings:
    #: When the ``journeys.run`` job runs (cron, UTC): entries from events and dates, and
    #: the steps that came due. ``TENURE_SCHEDULE_JOURNEYS_RUN`` overrides it too.
    schedule: str = "*/5 * * * *"
    #: Entries handled per statement; a run goes on batch after batch until nothing is due.
    batch_size: int = 500
    #: A step more than this late (the journey was paused, the worker was down) is skipped,
    #: saying so, instead of greeting someone days after the moment.
    late_after_hours: int = 72
    #: The holdout share of a new journey, unless it says otherwise (percent, 0-50).
    holdout_percent: int = 10
    #: A new journey's conversion window: an entrant converts by ordering within it.
    conversion_days: int = 30
    #: How far back each run looks again for events whose transaction committed late.
    event_lookback_minutes: int = 30

    def check(self) -> None:
        from croniter import croniter

        if not croniter.is_valid(self.schedule):
            raise SettingsError(f"TENURE_JOURNEYS_SCHEDULE: {self.schedule!r} is not a cron expression "
                                "(minute hour day month weekday, UTC), such as */5 * * * *")
        if self.batch_size < 1:
            raise SettingsError("TENURE_JOURNEYS_BATCH_SIZE: must be at least 1")
        if not 0 <= self.holdout_percent <= 50:
            raise SettingsError("TENURE_JOURNEYS_HOLDOUT_PERCENT: a share from 0 to 50")
        if not 1 <= self.conversion_days <= 365:
            raise SettingsError("TENURE_JOURNEYS_CONVERSION_DAYS: from 1 to 365 days")
        if self.late_after_hours < 1 or self.event_lookback_minutes < 0:
            raise SettingsError("TENURE_JOURNEYS_LATE_AFTER_HOURS must be at least 1 and "
                                "TENURE_JOURNEYS_EVENT_LOOKBACK_MINUTES not negative")


def journeys_settings(settings: Settings) -> JourneysSettings:
    return settings.for_plugin("journeys", JourneysSettings)
