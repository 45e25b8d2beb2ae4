"""Values kept on one table from another, written in the transaction that changes their source."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from db.clock import to_utc
from db.models import Case, Deadline

CASES = Case.__table__
DEADLINES = Deadline.__table__


def refresh_next_due(conn: Connection, case_id: int) -> None:
    """Keep `cases.next_due_at` equal to the earliest due time of the case's open (running or breached) limits.

    The case's few deadline rows are read by `case_id` and reduced here: a `min(due_at) ... status IN (...)`
    lets SQLite's planner pick the (status, due_at) index and walk every open deadline of every case."""
    rows = conn.execute(
        select(DEADLINES.c.due_at, DEADLINES.c.status, DEADLINES.c.stopped_at).where(
            DEADLINES.c.case_id == case_id
        )
    ).all()
    due = [to_utc(r.due_at) for r in rows if r.stopped_at is None and r.status in ("running", "breached")]
    conn.execute(update(CASES).where(CASES.c.id == case_id).values(next_due_at=min(due) if due else None))
