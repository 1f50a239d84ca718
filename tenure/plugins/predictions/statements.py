"""The summary every fit stands on, in one SQL statement over the orders (PostgreSQL and SQLite).

A purchase is an order that is not cancelled; its value is the amount less what was refunded
(an order refunded in full is a purchase occasion worth nothing, as a free one is). Days are
whole days counted from 1970-01-01 in the business time zone (``TENURE_TIMEZONE``: an order
at 23:30 in Paris falls on that Paris day, whatever UTC says). With same-day
merging, a customer's purchases of one day are one occasion worth their sum; without it,
each order is one.

Per customer who bought before ``:end_at``: the first and last day, the number and value of
occasions, the value of the first occasion (the Gamma-Gamma model reads repeat occasions
only), and the same figures restricted to the calibration days before ``:cal_end``.
"""

from __future__ import annotations

import re

#: Whole days since 1970-01-01 of an order's time in UTC, per dialect.
DAY = {
    "postgresql": "CAST(FLOOR(date_part('epoch', placed_at) / 86400) AS INTEGER)",
    "sqlite": "CAST(julianday(placed_at) - 2440587.5 AS INTEGER)",
}


def day_of_order(dialect: str, zone: str) -> str:
    """Whole days since 1970-01-01 of the calendar day an order was placed on in ``zone``
    (an IANA name, checked by the settings: it is written into the statement)."""
    if zone == "UTC":
        return DAY[dialect]
    if not re.fullmatch(r"[A-Za-z0-9/_+\-]+", zone):
        raise ValueError(f"not a time zone name: {zone!r}")
    if dialect == "postgresql":
        return f"((placed_at AT TIME ZONE '{zone}')::date - DATE '1970-01-01')"
    return f"business_day(placed_at, '{zone}')"

#: The columns :func:`summary` returns, in order.
COLUMNS = ("customer_id", "first_day", "last_day", "occasions", "value", "first_value",
           "cal_occasions", "cal_last_day", "cal_value")

#: The last calibration day of a customer with none.
NO_DAY = -1_000_000


def summary(dialect: str, merge_same_day: bool, zone: str = "UTC") -> str:
    """The statement; parameters ``end_at`` (a time: orders before it) and ``cal_end`` (a day
    number: calibration days before it).

    One pass over the orders in customer order (PostgreSQL reads ``ix_orders_customer_placed``):
    a window finds each customer's first occasion, and one aggregate per customer counts days
    (or orders) and sums values, with no intermediate row per occasion."""
    day = day_of_order(dialect, zone)
    if merge_same_day:
        count, cal_count = "COUNT(DISTINCT day)", "COUNT(DISTINCT CASE WHEN day < :cal_end THEN day END)"
        first = "CASE WHEN day = MIN(day) OVER (PARTITION BY customer_id) THEN 1 ELSE 0 END"
    else:
        count, cal_count = "COUNT(*)", "SUM(CASE WHEN day < :cal_end THEN 1 ELSE 0 END)"
        first = "CASE WHEN ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day, id) = 1 THEN 1 ELSE 0 END"
    return f"""
SELECT customer_id, MIN(day) AS first_day, MAX(day) AS last_day, {count} AS occasions, SUM(value) AS value,
       SUM(CASE WHEN is_first = 1 THEN value ELSE 0 END) AS first_value,
       {cal_count} AS cal_occasions,
       MAX(CASE WHEN day < :cal_end THEN day ELSE {NO_DAY} END) AS cal_last_day,
       SUM(CASE WHEN day < :cal_end THEN value ELSE 0 END) AS cal_value
FROM (
    SELECT customer_id, day, value, {first} AS is_first
    FROM (
        SELECT id, customer_id, {day} AS day, CAST(amount - refunded_amount AS DOUBLE PRECISION) AS value
        FROM orders
        WHERE status <> 'cancelled' AND placed_at < :end_at
    ) purchases
) marked
GROUP BY customer_id"""
