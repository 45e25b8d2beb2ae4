"""China's working-day calendar and the due-date arithmetic.

Counting (DOMAIN.md §3): a limit of N days starts the day after the event and, if its last day is not a
working day, moves to the next working day; N working days count only the working days after the event. A
deadline ends at the end of its day in Asia/Shanghai.

The calendar is a table of dates with an explicit working flag and a name (春节, 国庆节, 调休上班...): make-up
working weekends (调休) are working days, weekends and statutory holidays are not. Years come from the
maintained `chinesecalendar` package (2004-2026 today) or from an administrator's file
(`degreeflow calendar import`). A date in a year the calendar does not cover is judged by weekends only, and a
due date that depends on such a date is **provisional**.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.engine import Connection

from db.models import CalendarDay, CalendarYear

DAYS = CalendarDay.__table__
YEARS = CalendarYear.__table__

# chinesecalendar's English holiday names -> the names on the official schedule.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}
WEEKEND = "周末"
MAKE_UP = "调休上班"
# Statutory holidays on fixed dates (全国年节及纪念日放假办法, 2024 revision, 国务院令第795号, from 2025): known
# before the State Council publishes a year's schedule, so a year the calendar does not cover still has them.
# (The lunar holidays and the make-up working days are not: limits that reach such a year stay provisional.)
FIXED_HOLIDAYS = {(1, 1): "元旦", (5, 1): "劳动节", (5, 2): "劳动节", (10, 1): "国庆节", (10, 2): "国庆节",
                  (10, 3): "国庆节"}  # fmt: skip
FIXED_HOLIDAYS_FROM = 2025
# The longest limit counted: statutory limits are days to months; ten years is far beyond any of them and keeps
# the working-day count short.
MAX_LIMIT_DAYS = 3660


class DateOutOfRange(ValueError):
    """A date, or a limit counted from it, that the calendar cannot compute (the message is Chinese)."""

    code = "invalid_payload"

    def __init__(self, message: str, *, rule: str = "date_range", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.field = field

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "rule": self.rule, "message": self.message, "field": self.field}


@dataclass
class WorkingCalendar:
    """An in-memory view of the calendar table: covered years and the dates that break the weekday rule."""

    covered: frozenset[int] = frozenset()
    exceptions: dict[date, bool] = field(
        default_factory=dict
    )  # date -> working, where it differs from Mon-Fri
    names: dict[date, str] = field(default_factory=dict)

    def covers(self, day: date) -> bool:
        return day.year in self.covered

    def is_workday(self, day: date) -> bool:
        found = self.exceptions.get(day)
        if found is not None:
            return found
        return day.weekday() < 5 and self._fixed_holiday(day) is None

    def _fixed_holiday(self, day: date) -> str | None:
        """A fixed-date statutory holiday of a year the calendar does not cover (covered years say it all)."""
        if day.year < FIXED_HOLIDAYS_FROM or day.year in self.covered:
            return None
        return FIXED_HOLIDAYS.get((day.month, day.day))

    def name(self, day: date) -> str:
        return self.names.get(day) or self._fixed_holiday(day) or ("" if day.weekday() < 5 else WEEKEND)

    def due(self, start: date, days: int, working: bool) -> tuple[date, bool]:
        """The last day of a limit counted from the day after `start`, and whether it is provisional.

        Raises DateOutOfRange for a limit longer than MAX_LIMIT_DAYS or a last day after 9999-12-31."""
        if days > MAX_LIMIT_DAYS:
            unit = "个工作日" if working else "日"
            raise DateOutOfRange(
                f"期限 {days}{unit}过长：最多 {MAX_LIMIT_DAYS} 日", rule="limit_days", field="days"
            )
        try:
            return self._due(start, days, working)
        except OverflowError:
            raise DateOutOfRange(
                f"自 {start} 起 {days}{'个工作日' if working else '日'}的截止日超出可计算的日期范围"
                f"（最晚 {date.max}），请检查日期"
            ) from None

    def _due(self, start: date, days: int, working: bool) -> tuple[date, bool]:
        provisional = False
        day = start
        if working:
            left = days
            while left > 0:
                day += timedelta(days=1)
                provisional = provisional or not self.covers(day)
                if self.is_workday(day):
                    left -= 1
        else:
            day = start + timedelta(days=days)
            provisional = not self.covers(day)
            while not self.is_workday(day):
                day += timedelta(days=1)
                provisional = provisional or not self.covers(day)
        return day, provisional

    def remaining(self, today: date, due: date, working: bool) -> int:
        """Days (working days when `working`) after `today` up to and including `due`; 0 when due is past."""
        if due <= today:
            return 0
        if not working:
            return (due - today).days
        return sum(
            1 for offset in range(1, (due - today).days + 1) if self.is_workday(today + timedelta(offset))
        )


def load(conn: Connection) -> WorkingCalendar:
    covered = frozenset(row.year for row in conn.execute(select(YEARS.c.year)))
    exceptions: dict[date, bool] = {}
    names: dict[date, str] = {}
    for row in conn.execute(select(DAYS.c.day, DAYS.c.working, DAYS.c.name)):
        if row.working != (row.day.weekday() < 5):
            exceptions[row.day] = row.working
        if row.name and row.name != WEEKEND:
            names[row.day] = row.name
    return WorkingCalendar(covered, exceptions, names)


class CachedCalendar:
    """The calendar the engine and the sweep use: loaded from the database, reloaded after `ttl` seconds or
    at once after an import in this process. (A process that has not reloaded yet may still mark a date
    provisional; the sweep recomputes provisional deadlines, so that is corrected within a minute.)"""

    def __init__(self, db: Engine, ttl: float = 60.0):
        self.db = db
        self.ttl = ttl
        self._lock = threading.Lock()
        self._calendar: WorkingCalendar | None = None
        self._loaded = 0.0

    def get(self) -> WorkingCalendar:
        with self._lock:
            if self._calendar is None or time.monotonic() - self._loaded > self.ttl:
                with self.db.connect() as conn:
                    self._calendar = load(conn)
                self._loaded = time.monotonic()
            return self._calendar

    def invalidate(self) -> None:
        with self._lock:
            self._calendar = None

    # The DueCalculator protocol of workflow.timers
    def due(self, start: date, days: int, working: bool) -> tuple[date, bool]:
        return self.get().due(start, days, working)

    def remaining(self, today: date, due: date, working: bool) -> int:
        return self.get().remaining(today, due, working)


def days_of_year(year: int) -> Iterable[date]:
    if not date.min.year <= year <= date.max.year:
        raise DateOutOfRange(
            f"年份须在 {date.min.year} 至 {date.max.year} 之间，收到 {year}", rule="year_range", field="year"
        )
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += timedelta(days=1)


@functools.cache
def package_years() -> dict[int, tuple[tuple[date, bool, str], ...]]:
    """Every date of every year the `chinesecalendar` package covers, with its flag and name.

    Read from the package's own tables (its `is_workday` is the same rule: a listed make-up day works, a
    listed holiday does not, otherwise Monday to Friday work)."""
    from chinese_calendar import constants

    holidays: dict[date, str] = constants.holidays
    workdays: dict[date, str] = constants.workdays
    years: dict[int, tuple[tuple[date, bool, str], ...]] = {}
    for year in range(min(holidays).year, max(holidays).year + 1):
        rows = []
        for day in days_of_year(year):
            if day in workdays:
                row = (day, True, MAKE_UP if day.weekday() >= 5 else "")
            elif day in holidays:
                row = (day, False, HOLIDAY_NAMES.get(holidays[day], holidays[day]))
            elif day.weekday() >= 5:
                row = (day, False, WEEKEND)
            else:
                row = (day, True, "")
            rows.append(row)
        years[year] = tuple(rows)
    return years


def package_source() -> str:
    from importlib.metadata import version

    return f"chinesecalendar {version('chinesecalendar')}"


def store_year(
    conn: Connection, year: int, rows: list[tuple[date, bool, str]], source: str, now: datetime
) -> None:
    """Replace one year's dates and mark the year covered (in the caller's transaction)."""
    conn.execute(delete(DAYS).where(DAYS.c.day >= date(year, 1, 1), DAYS.c.day <= date(year, 12, 31)))
    conn.execute(insert(DAYS), [{"day": d, "working": w, "name": n} for d, w, n in rows])
    conn.execute(delete(YEARS).where(YEARS.c.year == year))
    conn.execute(insert(YEARS).values(year=year, source=source, loaded_at=now))


def seed_from_package(conn: Connection, now: datetime) -> list[int]:
    """Load every year the package covers that the table does not have yet; returns the years loaded."""
    have = {row.year for row in conn.execute(select(YEARS.c.year))}
    source = package_source()
    loaded = []
    for year, rows in package_years().items():
        if year not in have:
            store_year(conn, year, rows, source, now)
            loaded.append(year)
    return loaded


def covered_years(conn: Connection) -> list[dict[str, object]]:
    return [dict(row._mapping) for row in conn.execute(select(YEARS).order_by(YEARS.c.year))]
