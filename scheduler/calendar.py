"""Due-date arithmetic.

Counting (DOMAIN.md §3): a limit of N days starts the day after the event and, if its last day is not a
working day, moves to the next working day; N working days count only working days after the event.

`WeekendCalendar` knows weekends only. It has no holiday data yet, so every date it computes is marked
**provisional**; the deadlines issue adds the official holiday calendar (with make-up working weekends) and
recomputes provisional deadlines when a year is imported.
"""

from __future__ import annotations

from datetime import date, timedelta


class WeekendCalendar:
    covers_holidays = False

    def is_workday(self, day: date) -> bool:
        return day.weekday() < 5

    def due(self, start: date, days: int, working: bool) -> tuple[date, bool]:
        if working:
            day, left = start, days
            while left > 0:
                day += timedelta(days=1)
                if self.is_workday(day):
                    left -= 1
        else:
            day = start + timedelta(days=days)
            while not self.is_workday(day):
                day += timedelta(days=1)
        return day, not self.covers_holidays

    def remaining(self, today: date, due: date, working: bool) -> int:
        if due <= today:
            return 0
        if not working:
            return (due - today).days
        count, day = 0, today
        while day < due:
            day += timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count
