"""The one clock. Code reads the time only through a Clock, so scenarios can set it.

Times are stored in UTC; dates that matter to the law (deadlines, letters) are read in Asia/Shanghai.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive value (as SQLite returns it) is taken to be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_iso(value: datetime) -> str:
    """Canonical text of a time, used in hashes: UTC with microseconds."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def start_of_day(day: date) -> datetime:
    """Midnight at the start of a Chinese calendar day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """The last instant of a Chinese calendar day, in UTC: deadlines end there."""
    return start_of_day(day + timedelta(days=1)) - timedelta(microseconds=1)


class Clock:
    def now(self) -> datetime:  # pragma: no cover - interface
        raise NotImplementedError

    def today(self) -> date:
        """Today's date in China (Asia/Shanghai)."""
        return self.now().astimezone(SHANGHAI).date()


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock(Clock):
    """A clock set by `--now` / DEGREEFLOW_NOW; it can be moved forward by tests and scripts."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=SHANGHAI)
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=SHANGHAI)
        self._at = at.astimezone(UTC)
