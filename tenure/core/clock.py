"""Time, injectable: every rule asks the clock, so tests can move through a year at once.

``TENURE_NOW`` freezes the clock of a whole process: the server, the worker, the scheduler
and every CLI command call :func:`freeze_from_setting` as they start, so a business can try
its rules as of any moment (``TENURE_NOW=2027-03-01T09:00:00Z tenure jobs run``). Inside one
process, :func:`use_clock` swaps the clock for a block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo


class Clock:
    """The real clock: timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that stands still until told to move."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware time")
        self.at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at.astimezone(UTC)


_current: Clock = Clock()


def now() -> datetime:
    """The current time by the clock in use."""
    return _current.now()


def current() -> Clock:
    return _current


def install(clock: Clock) -> None:
    global _current
    _current = clock


def freeze_from_setting(at: datetime | None) -> None:
    """Stand the process's clock still at ``at`` (the ``TENURE_NOW`` setting), if it is set."""
    if at is not None:
        install(FrozenClock(at))


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    previous = _current
    install(clock)
    try:
        yield clock
    finally:
        install(previous)


def as_utc(value: datetime) -> datetime:
    """Times read back from SQLite come without a zone; Tenure stores UTC, so say so."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def business_day(value: datetime, zone: tzinfo) -> date:
    """The calendar day ``value`` falls on in the business's time zone (``TENURE_TIMEZONE``)."""
    return as_utc(value).astimezone(zone).date()
