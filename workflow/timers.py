"""Deadline rows changed by a transition, in the transition's own transaction.

The due-date arithmetic is injected (a `DueCalculator`): the scheduler package owns the working-day calendar.
Statuses: running, paused, breached (past due, open until stopped), met, superseded, cancelled (stopped while
paused, or by a `cancel` effect: the case was withdrawn or cancelled).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from db.clock import end_of_day, to_utc
from db.derived import refresh_next_due
from db.models import Deadline
from workflow.definition import DeadlineEffect
from workflow.fields import parse_date

DEADLINES = Deadline.__table__
OPEN_STATUSES = ("running", "paused", "breached")


class DueCalculator(Protocol):
    def due(self, start: date, days: int, working: bool) -> tuple[date, bool]:
        """The last day of a limit of `days` (working) days counted from the day after `start`, and whether
        the result is provisional (it reaches into a year the calendar does not cover)."""

    def remaining(self, today: date, due: date, working: bool) -> int:
        """Days (or working days) left after `today` up to and including `due`."""


def apply_effects(
    conn: Connection,
    calc: DueCalculator,
    *,
    case_id: int,
    rule_set: str,
    effects: tuple[DeadlineEffect, ...],
    payload: dict[str, Any],
    event_id: int,
    now: datetime,
    today: date,
) -> None:
    applied = False
    for effect in effects:
        if not effect.applies(rule_set):
            continue
        applied = True
        current = and_(DEADLINES.c.case_id == case_id, DEADLINES.c.name == effect.name)
        if effect.action == "start":
            _close(conn, current, now, event_id, superseded=True)
            anchor = parse_date(payload.get(effect.anchor)) if effect.anchor else None
            start = anchor or today
            due, provisional = calc.due(start, effect.days, effect.working)
            due_at = end_of_day(due)
            conn.execute(
                insert(DEADLINES).values(
                    case_id=case_id,
                    name=effect.name,
                    label=effect.label,
                    owner=effect.owner,
                    days=effect.days,
                    working=effect.working,
                    start_date=start,
                    basis_date=start,
                    basis_days=effect.days,
                    due_date=due,
                    due_at=due_at,
                    provisional=provisional,
                    # A case opened after its limit already passed is late at once.
                    status="breached" if due_at < to_utc(now) else "running",
                    started_event_id=event_id,
                )
            )
        elif effect.action == "stop":
            _close(conn, current, now, event_id)
        elif effect.action == "cancel":
            _close(conn, current, now, event_id, cancelled=True)
        elif effect.action == "pause":
            for row in conn.execute(select(DEADLINES).where(current, DEADLINES.c.status == "running")):
                conn.execute(
                    update(DEADLINES)
                    .where(DEADLINES.c.id == row.id)
                    .values(
                        status="paused",
                        remaining_days=max(calc.remaining(today, row.due_date, row.working), 0),
                    )
                )
        elif effect.action == "resume":
            for row in conn.execute(select(DEADLINES).where(current, DEADLINES.c.status == "paused")):
                days = row.remaining_days or 0
                due, provisional = calc.due(today, days, row.working)
                conn.execute(
                    update(DEADLINES)
                    .where(DEADLINES.c.id == row.id)
                    .values(
                        status="running",
                        basis_date=today,
                        basis_days=days,
                        due_date=due,
                        due_at=end_of_day(due),
                        provisional=provisional,
                        remaining_days=None,
                    )
                )
    if applied:
        refresh_next_due(conn, case_id)


def close_all(conn: Connection, *, case_id: int, now: datetime, event_id: int) -> None:
    """A case that reaches a terminal state leaves no timer behind."""
    _close(conn, DEADLINES.c.case_id == case_id, now, event_id)
    refresh_next_due(conn, case_id)


def _close(
    conn: Connection, where: Any, now: datetime, event_id: int, *, superseded: bool = False, cancelled: bool = False
) -> None:
    rows = conn.execute(
        select(DEADLINES.c.id, DEADLINES.c.status, DEADLINES.c.due_at).where(
            where, DEADLINES.c.stopped_at.is_(None), DEADLINES.c.status.in_(OPEN_STATUSES)
        )
    ).all()
    for row in rows:
        if superseded:
            status = "superseded"
        elif cancelled or row.status == "paused":
            status = "cancelled"
        elif row.status == "breached" or to_utc(now) > to_utc(row.due_at):
            status = "breached"
        else:
            status = "met"
        conn.execute(
            update(DEADLINES)
            .where(DEADLINES.c.id == row.id)
            .values(status=status, stopped_at=now, stopped_event_id=event_id)
        )
