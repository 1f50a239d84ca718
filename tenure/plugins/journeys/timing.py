"""Waits between steps: ISO 8601 durations (``P3D``, ``PT2H``, ``P1M``) and an optional
time of day in the business time zone (``10:00``).

A wait counts from the moment the previous step was due (the entry, for the first step),
not from when a job happened to run it, so a sequence keeps its rhythm. With ``at``:

- a wait of whole days, weeks, months or years lands on ``at`` of the day it ends on
  (``P3D`` at ``10:00`` is day 3 at 10:00 whatever the time of entry), or of the next day
  when that moment is not after the start (``P0D`` at ``10:00`` entered at 15:00 is
  tomorrow at 10:00);
- a wait with hours, minutes or seconds lands on the first ``at`` at or after its end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from tenure.core.clock import as_utc
from tenure.core.errors import UserError

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_WAIT_DAYS = 3660


@dataclass(frozen=True)
class Wait:
    """A parsed wait: calendar months, then a fixed length, then an optional time of day."""

    months: int
    length: timedelta
    at: time | None = None

    @property
    def whole_days(self) -> bool:
        return self.length % timedelta(days=1) == timedelta(0)

    def approximate(self) -> timedelta:
        """Roughly how long (a month as 30 days), for limits and forecasts."""
        return self.length + timedelta(days=30 * self.months)


def parse_wait(text: str, field: str) -> Wait:
    """``P3D`` -> three days. A user error naming ``field`` when it is not a duration."""
    raw = (text or "").strip().upper()
    found = _DURATION.match(raw)
    if raw in ("", "P", "PT") or raw.endswith("T") or found is None:
        raise UserError(f"{text!r} is not an ISO 8601 duration: write P3D for three days, PT2H for two hours, "
                        "P1M for a month, P0D for none", field, "invalid_duration")
    years, months, weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    wait = Wait(months=years * 12 + months,
                length=timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds))
    if wait.approximate() > timedelta(days=MAX_WAIT_DAYS):
        raise UserError(f"{text!r} is longer than ten years", field, "invalid_duration")
    return wait


def parse_at(text: str | None, field: str) -> time | None:
    """``10:00`` -> 10:00 (24-hour clock, business time zone); empty means no time of day."""
    if text is None or not text.strip():
        return None
    found = _AT.match(text.strip())
    if found is None:
        raise UserError(f"{text!r} is not a time of day: write HH:MM on the 24-hour clock, such as 10:00 "
                        "(in the business time zone, TENURE_TIMEZONE)", field, "invalid_time")
    return time(int(found.group(1)), int(found.group(2)))


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later; the 31st becomes the month's last day where it has fewer."""
    if not months:
        return moment
    year, month = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + year, month + 1
    last = (datetime(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last))


def due_after(start: datetime, wait: Wait, zone: tzinfo) -> datetime:
    """When a step with ``wait`` is due, counted from ``start`` (see the module notes)."""
    local = as_utc(start).astimezone(zone)
    end = add_months(local, wait.months) + wait.length
    if wait.at is None:
        return as_utc(end)
    landed = _at(end, wait.at, zone)
    if wait.whole_days:
        if landed <= local:
            landed = _at(end + timedelta(days=1), wait.at, zone)
    elif landed < end:
        landed = _at(end + timedelta(days=1), wait.at, zone)
    return as_utc(landed)


def _at(day: datetime, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day.date(), at, tzinfo=zone)
