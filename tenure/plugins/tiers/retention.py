"""TIER for the core's retention figures: ``retention(by: TIER)`` splits them by each
customer's current tier (see ``tenure_retention_dimensions`` in :mod:`tenure.core.hookspecs`)."""

from __future__ import annotations

from tenure.core.contributions import RetentionDimension

# Every customer is in one group: their tier's name, or '' while they have none.
CURRENT_TIER = """
SELECT c.id AS customer_id, COALESCE(t.name, '') AS label
FROM customers c
LEFT JOIN tier_memberships m ON m.customer_id = c.id
LEFT JOIN tiers t ON t.id = m.tier_id"""


def dimensions() -> list[RetentionDimension]:
    return [RetentionDimension("tier", CURRENT_TIER, "The customer's current tier ('' without one)")]
