"""The NPS plugin's jobs."""

from __future__ import annotations

from tenure.core.contributions import JobSpec
from tenure.plugins.nps import service


def jobs() -> list[JobSpec]:
    return [JobSpec(service.SEND_JOB, service.send_due, schedule="*/15 * * * *",
                    description="Start scheduled surveys and send the invitations that are due")]
