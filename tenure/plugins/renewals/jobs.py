"""The renewals plugin's jobs."""

from __future__ import annotations

from tenure.core.contributions import JobSpec
from tenure.plugins.renewals import service


def jobs() -> list[JobSpec]:
    return [JobSpec(service.DAILY_JOB, service.daily, schedule="0 6 * * *",
                    description="Renew or lapse what ended; send the renewal reminders due today")]
