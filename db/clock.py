"""The one clock. Code reads the time only through a Clock, so scenarios can set it.

Times are stored in UTC; dates that matter to the law (deadlines, letters) are read in Asia/Shanghai.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
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
