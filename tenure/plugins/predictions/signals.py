"""The predictions plugin's churn signal: the model gives the customer a low probability of
still being a customer (BG/NBD's ``probabilityActive`` from the last fit). Off until staff
switch it on with ``saveChurnRule``: it overlaps the no-order and long-gap rules, and it
says nothing before the first fit."""

from __future__ import annotations

from tenure.plugins.churn.signals import ChurnSignal, SignalQuery


def unlikely_active(q: SignalQuery) -> str:
    return f"""SELECT p.customer_id FROM predictions_customers p
WHERE {q.among('p.customer_id')} AND p.probability_active < {q.threshold}"""


def signals() -> list[ChurnSignal]:
    return [ChurnSignal(name="probability_active", enabled=False, threshold=0.3, weight=45,
                        reason="the model gives under {threshold} chance that they are still a customer",
                        flagged=unlikely_active, minimum=0.01, maximum=1,
                        threshold_means="the probability active (0-1, from the last fit) below which it fires")]
