"""The education plugin's churn signal: a learner who stopped logging in.

Read by the churn plugin through its ``churn_signals`` hook while churn is on: a learner
(anyone with a completed course) with no ``login`` interaction for the threshold's days is
flagged, and the churn score, warning and follow-up take it from there.
"""

from __future__ import annotations

from collections.abc import Callable

from tenure.plugin import Settings
from tenure.plugins.churn.signals import ChurnSignal, SignalQuery

from tenure_education.service import EducationSettings


def no_login_statement(login_kind: str) -> Callable[[SignalQuery], str]:
    def no_login(q: SignalQuery) -> str:
        # Since the last login, or the first completion for a learner who never logged in.
        return f"""SELECT c.customer_id FROM education_completions c
LEFT JOIN interactions i ON i.customer_id = c.customer_id AND i.kind = '{login_kind}'
WHERE {q.among('c.customer_id')}
GROUP BY c.customer_id
HAVING {q.days_since('COALESCE(MAX(i.occurred_at), MIN(c.completed_at))')} >= {q.threshold}"""

    return no_login


def signals() -> list[ChurnSignal]:
    cfg = Settings.from_env().for_plugin("education", EducationSettings)
    if not cfg.login_kind.replace("_", "").isalnum():
        raise ValueError("TENURE_EDUCATION_LOGIN_KIND: letters, digits and _ only")
    return [ChurnSignal(name="no_login", reason="no login for {threshold} days", threshold=14, weight=45,
                        flagged=no_login_statement(cfg.login_kind), minimum=1,
                        threshold_means="days without a login, for learners with a completed course")]
