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


# China has kept UTC+8 all year since its last daylight-saving period ended in September 1991: from 1992 on,
# Beijing time is UTC + 8 hours without a look-up in the zone database (a list page converts hundreds of times).
_FIXED_OFFSET_SINCE = datetime(1992, 1, 1)
_EIGHT_HOURS = timedelta(hours=8)
# Text and date are built apart from the naive wall-clock time: going through an aware value would double the
# cost of the text (isoformat with an offset), which is what lists spend here.


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def beijing_iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a time in Beijing time, to the second, with its offset (a naive value is UTC)."""
    if value is None:
        return None
    utc = _naive_utc(value)
    if utc >= _FIXED_OFFSET_SINCE:
        return (utc + _EIGHT_HOURS).isoformat(timespec="seconds") + "+08:00"
    return utc.replace(tzinfo=UTC).astimezone(SHANGHAI).isoformat(timespec="seconds")


def beijing_date(value: datetime) -> date:
    """The Chinese calendar day of a time (a naive value is UTC)."""
    utc = _naive_utc(value)
    if utc >= _FIXED_OFFSET_SINCE:
        return (utc + _EIGHT_HOURS).date()
    return utc.replace(tzinfo=UTC).astimezone(SHANGHAI).date()


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
