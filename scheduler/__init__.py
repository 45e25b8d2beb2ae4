"""Deadlines: the working-day calendar, due-date arithmetic and (with the deadlines issue) the sweep."""

from scheduler.calendar import WeekendCalendar

__all__ = ["WeekendCalendar"]
