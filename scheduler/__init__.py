"""Deadlines: the working-day calendar, due-date arithmetic, the sweep and its notifications."""

from scheduler.calendar import CachedCalendar, WorkingCalendar

__all__ = ["CachedCalendar", "WorkingCalendar"]
