"""Persistence: tables, engine factory, the unit of work and the one clock.

Nothing here imports the rest of degreeflow.
"""

from db.clock import Clock, FixedClock, SystemClock, to_utc, utc_iso
from db.engine import create_schema, drop_schema, make_engine, transaction
from db.models import (
    Attachment,
    AuthorizationCode,
    CalendarDay,
    CalendarYear,
    Case,
    CaseEvent,
    Deadline,
    DeadlineFinding,
    DegreeRecord,
    DocSequence,
    Document,
    DocumentVoid,
    LoginAttempt,
    Organisation,
    OutboxMessage,
    QueryLog,
    RecordChange,
    User,
)

__all__ = [
    "Attachment",
    "AuthorizationCode",
    "LoginAttempt",
    "CalendarDay",
    "CalendarYear",
    "Case",
    "CaseEvent",
    "Clock",
    "Deadline",
    "DeadlineFinding",
    "DegreeRecord",
    "DocSequence",
    "Document",
    "DocumentVoid",
    "FixedClock",
    "Organisation",
    "OutboxMessage",
    "QueryLog",
    "RecordChange",
    "SystemClock",
    "User",
    "create_schema",
    "drop_schema",
    "make_engine",
    "to_utc",
    "transaction",
    "utc_iso",
]
