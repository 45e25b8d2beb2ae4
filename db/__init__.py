"""Persistence: tables, engine factory, the unit of work and the one clock.

Nothing here imports the rest of degreeflow.
"""

from db.clock import Clock, FixedClock, SystemClock, to_utc, utc_iso
from db.engine import create_schema, drop_schema, make_engine, transaction
from db.models import (
    CalendarDay,
    CalendarYear,
    Case,
    CaseEvent,
    Deadline,
    DeadlineFinding,
    DocSequence,
    Document,
    Organisation,
    OutboxMessage,
    User,
)

__all__ = [
    "CalendarDay",
    "CalendarYear",
    "Case",
    "CaseEvent",
    "Clock",
    "Deadline",
    "DeadlineFinding",
    "DocSequence",
    "Document",
    "FixedClock",
    "Organisation",
    "OutboxMessage",
    "SystemClock",
    "User",
    "create_schema",
    "drop_schema",
    "make_engine",
    "to_utc",
    "transaction",
    "utc_iso",
]
