"""The renewals plugin's churn signal: a subscription ends soon and nothing renews it (read
by the churn plugin through its ``churn_signals`` hook, while both are on)."""

from __future__ import annotations

from tenure.plugins.churn.signals import ChurnSignal, SignalQuery


def ending_without_renewal(q: SignalQuery) -> str:
    return f"""SELECT s.customer_id FROM renewals_subscriptions s
WHERE {q.among('s.customer_id')} AND s.status = 'active' AND NOT s.auto_renew
  AND {q.days_until('s.ends_on')} <= {q.threshold}"""


def signals() -> list[ChurnSignal]:
    return [ChurnSignal(name="renewal_lapse", reason="a subscription ends soon without renewal", threshold=30,
                        weight=45, flagged=ending_without_renewal, minimum=0,
                        threshold_means="days before a subscription without auto-renew ends")]
