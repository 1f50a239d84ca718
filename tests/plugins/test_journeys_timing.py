"""Waits between journey steps: ISO 8601 durations and a time of day in the business zone,
across daylight-saving changes and month ends; wrong ones refused in words."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tenure.core.errors import UserError
from tenure.plugins.journeys.timing import due_after, parse_at, parse_wait

BERLIN = ZoneInfo("Europe/Berlin")


def wait(text: str, at: str | None = None) -> object:
    parsed = parse_wait(text, "wait")
    return type(parsed)(parsed.months, parsed.length, parse_at(at, "at"))


@pytest.mark.parametrize(("start", "duration", "at", "due"), [
    # Whole days land on the time of the day the wait ends on, whatever the time of entry.
    ("2026-06-01T15:30:00+00:00", "P3D", "10:00", "2026-06-04T08:00:00+00:00"),
    # No wait at 10:00, entered at 17:00 Berlin time: tomorrow at 10:00.
    ("2026-06-01T15:00:00+00:00", "P0D", "10:00", "2026-06-02T08:00:00+00:00"),
    # Entered at 07:00 Berlin time: today at 10:00.
    ("2026-06-01T05:00:00+00:00", "P0D", "10:00", "2026-06-01T08:00:00+00:00"),
    # Across the switch to winter time (25 October 2026): still 10:00 on the clock, an hour later in UTC.
    ("2026-10-23T08:00:00+00:00", "P3D", "10:00", "2026-10-26T09:00:00+00:00"),
    # Hours: the first 10:00 at or after the wait's end.
    ("2026-06-01T06:00:00+00:00", "PT3H", "10:00", "2026-06-02T08:00:00+00:00"),
    ("2026-06-01T05:00:00+00:00", "PT2H", "10:00", "2026-06-01T08:00:00+00:00"),
    # Months are calendar months; the 31st becomes the month's last day.
    ("2026-01-31T09:00:00+00:00", "P1M", None, "2026-02-28T09:00:00+00:00"),
    ("2026-03-01T09:00:00+00:00", "P1Y2W", None, "2027-03-15T09:00:00+00:00"),
    # Without a time of day: exactly the length, on the wall clock across DST.
    ("2026-03-28T12:00:00+00:00", "P1D", None, "2026-03-29T11:00:00+00:00"),
])
def test_due_times(start: str, duration: str, at: str | None, due: str) -> None:
    result = due_after(datetime.fromisoformat(start), wait(duration, at), BERLIN)  # type: ignore[arg-type]
    assert result == datetime.fromisoformat(due)
    assert result.tzinfo is not None and result.utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize("text", ["3 days", "P", "PT", "P3DT", "-P3D", "P1.5D", "", "P20Y"])
def test_bad_durations_are_refused_in_words(text: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_wait(text, "steps[0].wait")
    assert refused.value.field == "steps[0].wait" and refused.value.code == "invalid_duration"
    assert "P3D" in refused.value.message or "ten years" in refused.value.message


@pytest.mark.parametrize("text", ["24:00", "9:00", "10h", "10:60"])
def test_bad_times_of_day_are_refused(text: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_at(text, "steps[1].at")
    assert refused.value.field == "steps[1].at" and "HH:MM" in refused.value.message
