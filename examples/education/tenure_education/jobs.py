"""The education plugin's job: the daily look for learners who stopped logging in."""

from __future__ import annotations

from tenure.plugin import JobSpec

from tenure_education import service

JOBS = [
    JobSpec("education.flag_inactive", service.flag_inactive, schedule="0 7 * * *",
            description="Open a follow-up task for learners with no login for TENURE_EDUCATION_INACTIVE_DAYS"),
]
