"""The nps plugin's churn signal: the customer's latest answer was low (read by the churn
plugin through its ``churn_signals`` hook, while both are on)."""

from __future__ import annotations

from tenure.plugins.churn.signals import ChurnSignal, SignalQuery


def low_survey(q: SignalQuery) -> str:
    # The latest answer per customer (the highest id); an NPS answer at or below the
    # threshold, or a CSAT answer in the dissatisfied category.
    return f"""SELECT r.customer_id FROM nps_responses r
WHERE r.id IN (SELECT MAX(id) FROM nps_responses WHERE {q.among('customer_id')} GROUP BY customer_id)
  AND ((r.scale = 'nps' AND r.score <= {q.threshold}) OR (r.scale <> 'nps' AND r.category = 'dissatisfied'))"""


def signals() -> list[ChurnSignal]:
    return [ChurnSignal(name="low_survey", reason="a low score in the latest survey", threshold=6, weight=45,
                        flagged=low_survey, minimum=0,
                        threshold_means="the highest latest NPS score (0-10) that counts as low; "
                                        "CSAT counts its dissatisfied answers")]
