"""Read models scoped to a person: the work queue, case search, the overview. No writes here.

Scope is applied in SQL, so a person never even counts another organisation's cases: a unit sees its own, a
province its units', the national office and the Degree Center everything.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, case, cast, false, func, or_, select, true, tuple_, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from cases import registry
from cases.units import CHECKER_ROLE
from cases.vocabulary import CENTER, NATIONAL, PROVINCE, UNIT
from db.clock import to_utc
from db.models import Case, CaseEvent, Deadline, Organisation
from workflow import Actor

CASES = Case.__table__
ORGS = Organisation.__table__
DEADLINES = Deadline.__table__
EVENTS = CaseEvent.__table__
OPEN_DEADLINE = ("running", "breached")
COUNT_CAP = 1000


def scope_clause(actor: Actor) -> ColumnElement[bool]:
    """Which cases `actor` may see, as a condition on CASES alone (no join needed)."""
    return _scope(_scope_kind(actor), actor.org_id, actor.department_id)


# A level-2 account of a verification department (cases.units): its unit's tasks assigned to its department.
_DEPARTMENT = "unit_department"


def _scope_kind(actor: Actor) -> str:
    return _DEPARTMENT if actor.org_kind == UNIT and actor.role == CHECKER_ROLE else actor.org_kind


def _scope(
    scope_kind: str, org_id: int | None = None, department_id: int | None = None
) -> ColumnElement[bool]:
    """The scope rule of an organisation kind (or `_DEPARTMENT`); `org_id` None leaves `scope_org` (and
    `scope_department`) parameters of the statement (statements built once and run for everyone of that kind)."""
    if scope_kind in (NATIONAL, CENTER):
        return true()
    org = bindparam("scope_org", org_id, unique=True) if org_id is not None else bindparam("scope_org")
    if scope_kind == UNIT:
        return CASES.c.org_id == org
    if scope_kind == _DEPARTMENT:
        # One unit's open tasks are few: read by organisation, the department compared in the payload.
        department = (
            bindparam("scope_department", department_id, unique=True)
            if org_id is not None
            else bindparam("scope_department")
        )
        return and_(
            CASES.c.org_id == org,
            CASES.c.type == "authentication",
            CASES.c.payload["department_id"].as_integer() == department,
        )
    if scope_kind == PROVINCE:
        return CASES.c.org_id.in_(select(ORGS.c.id).where(ORGS.c.parent_id == org))
    return false()


def actionable(actor: Actor) -> list[tuple[str, str]]:
    """(type, state) pairs in which this person's level and role can take a manual step."""
    pairs = []
    for name, defn in registry.DEFINITIONS.items():
        for step in defn.steps:
            if step.automatic or actor.org_kind not in step.actors:
                continue
            if step.roles and actor.role not in step.roles:
                continue
            pairs.append((name, step.source))
    return sorted(set(pairs))


def _base_columns():  # type: ignore[no-untyped-def]
    return select(
        CASES.c.id,
        CASES.c.type,
        CASES.c.state,
        CASES.c.rule_set,
        CASES.c.version,
        CASES.c.opened_at,
        CASES.c.updated_at,
        CASES.c.closed_at,
        # Lists never read the whole payload (a batch's holds thousands of records): the subject and the
        # certificate number are kept in columns, and only an authentication task's small payload is read.
        CASES.c.summary,
        CASES.c.reference,
        case((CASES.c.type == "authentication", CASES.c.payload["complex"].as_string()), else_=None).label(
            "complex_flag"
        ),
        ORGS.c.code.label("org"),
        ORGS.c.name.label("org_name"),
        CASES.c.next_due_at,
        CASES.c.notice,
    ).join_from(CASES, ORGS, CASES.c.org_id == ORGS.c.id)


def _base(actor: Actor):  # type: ignore[no-untyped-def]
    return _base_columns().where(scope_clause(actor))


# The columns of `_base_columns`, in order: a row is unpacked as a tuple (by name, each read costs a look-up).
_COLUMNS = ("id", "type", "state", "rule_set", "version", "opened_at", "updated_at", "closed_at", "summary",
            "reference", "complex_flag", "org", "org_name", "next_due_at", "notice")  # fmt: skip
if tuple(_base_columns().selected_columns.keys()) != _COLUMNS:  # pragma: no cover - a column added above only
    raise RuntimeError("worklist._COLUMNS does not follow _base_columns()")


def _row(row: Any) -> dict[str, Any]:
    (case_id, case_type, state, rule_set, version, opened_at, updated_at, closed_at, summary, reference,
     complex_flag, org, org_name, next_due_at, notice) = row  # fmt: skip
    defn = registry.DEFINITIONS[case_type]
    return {
        "id": case_id,
        "type": case_type,
        "type_label": defn.label,
        "state": state,
        "state_label": defn.state_label(state),
        "rule_set": rule_set,
        "version": version,
        "org": org,
        "org_name": org_name,
        "opened_at": opened_at,
        "updated_at": updated_at,
        "closed_at": closed_at,
        "next_due_at": next_due_at,
        "subject": summary or "",
        "cert_no": reference or "",
        # A verification task the unit said is complex (seed 001 art. 12): its limit runs on, flagged.
        "complex": complex_flag is not None and str(complex_flag).lower() in ("1", "true"),
        "notice": notice or "",  # e.g. 本地学位信息库无此记录
    }


@dataclass(frozen=True)
class _QueueStatements:
    """The queue's statements for one (level, role), built once; the person's organisation, the page size and
    offset are parameters, so SQLAlchemy's compiled cache serves every request after the first."""

    dated: Any
    undated: Any
    count_dated: Any
    count: Any


@functools.cache
def _queue_statements(scope_kind: str, pairs: tuple[tuple[str, str], ...]) -> _QueueStatements:
    waiting = and_(
        CASES.c.closed_at.is_(None), tuple_(CASES.c.type, CASES.c.state).in_(pairs), _scope(scope_kind)
    )
    dated = and_(waiting, CASES.c.next_due_at.is_not(None))
    base = _base_columns()
    page_limit, page_offset = bindparam("page_limit"), bindparam("page_offset")
    return _QueueStatements(
        # Read in due order from an index of open cases (a unit's own: ix_cases_unit_queue(_open)), so a page
        # reads about as many rows as it shows, with a thousand cases or a million.
        dated=base.where(dated)
        .order_by(CASES.c.next_due_at, CASES.c.id)
        .limit(page_limit)
        .offset(page_offset),
        undated=base.where(waiting, CASES.c.next_due_at.is_(None))
        .order_by(CASES.c.id)
        .limit(page_limit)
        .offset(page_offset),
        count_dated=select(func.count()).select_from(select(CASES.c.id).where(dated).subquery()),
        count=_capped_count(scope_kind, pairs),
    )


def _capped_count(scope_kind: str, pairs: tuple[tuple[str, str], ...]) -> Any:
    """How many cases wait in these (type, state) pairs, counted up to the `count_cap` parameter.

    One branch per pair, each a range of ix_cases_open_kind (or ix_cases_org_queue for a unit) read in the
    index alone, and the count stops at the cap: a queue of 1,000,000 open cases costs what one of 1,000 does.
    (A single `(type, state) IN (...)` made PostgreSQL build a bitmap of every matching open case first.)"""
    branches = [
        select(CASES.c.id).where(
            CASES.c.closed_at.is_(None), CASES.c.type == kind, CASES.c.state == state, _scope(scope_kind)
        )
        for kind, state in pairs
    ]
    waiting = union_all(*branches).subquery() if len(branches) > 1 else branches[0].subquery()
    capped = select(waiting.c.id).limit(bindparam("count_cap")).subquery()
    return select(func.count()).select_from(capped)


def queue(
    conn: Connection, actor: Actor, *, limit: int = 50, offset: int = 0, count_cap: int = COUNT_CAP
) -> tuple[list[dict[str, Any]], int]:
    """Open cases waiting on this person, most urgent deadline first, then the ones without a deadline.

    Both parts are read in index order (open cases by next due time), so a page costs about the same with a
    thousand or a million cases. The total is counted up to `count_cap` (the page shows "1000+" beyond)."""
    pairs = tuple(actionable(actor))
    if not pairs:
        return [], 0
    scope_kind = _scope_kind(actor)
    statements = _queue_statements(scope_kind, pairs)
    params = {"scope_org": actor.org_id, "page_limit": limit, "page_offset": offset, "count_cap": count_cap}
    if scope_kind == _DEPARTMENT:
        params["scope_department"] = actor.department_id
    rows = conn.execute(statements.dated, params).all()
    if len(rows) < limit:
        dated_total = (
            offset + len(rows) if rows else int(conn.execute(statements.count_dated, params).scalar_one())
        )
        more = {**params, "page_limit": limit - len(rows), "page_offset": max(offset - dated_total, 0)}
        rows += conn.execute(statements.undated, more).all()
    total = int(conn.execute(statements.count, params).scalar_one())
    return [_row(row) for row in rows], total


def search(
    conn: Connection,
    actor: Actor,
    *,
    case_type: str | None = None,
    state: str | None = None,
    org: str | None = None,
    text: str | None = None,
    open_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Cases in scope, newest first; `text` matches the certificate number or a name in the case data."""
    conditions: list[ColumnElement[bool]] = [scope_clause(actor)]
    if case_type:
        conditions.append(CASES.c.type == case_type)
    if state:
        conditions.append(CASES.c.state == state)
    if org:
        conditions.append(ORGS.c.code == org)
    if open_only:
        conditions.append(CASES.c.closed_at.is_(None))
    text = (text or "").strip()[:64]
    if text.isdigit() or (len(text) >= 10 and text.isalnum()):
        # A certificate number (or a case number): the indexed reference first, every payload only if that
        # finds nothing (a supplement or photo batch lists its people's numbers in the payload).
        exact = or_(CASES.c.reference == text, CASES.c.id == int(text[:9])) if text.isdigit() else (
            CASES.c.reference == text
        )  # fmt: skip
        found = conn.execute(
            select(func.count()).select_from(CASES.join(ORGS, CASES.c.org_id == ORGS.c.id))
            .where(and_(*conditions, exact))
        ).scalar_one()  # fmt: skip
        conditions.append(exact if found else _payload_contains(text))
    elif text:
        conditions.append(_payload_contains(text))
    where = and_(*conditions)
    query = _base(actor).where(where).order_by(CASES.c.id.desc()).limit(limit).offset(offset)
    total = conn.execute(
        select(func.count()).select_from(CASES.join(ORGS, CASES.c.org_id == ORGS.c.id)).where(where)
    ).scalar_one()
    return [_row(row) for row in conn.execute(query)], int(total)


def _payload_contains(text: str) -> ColumnElement[bool]:
    needle = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(CASES.c.payload, String).like(f"%{needle}%", escape="\\")


def visible(conn: Connection, actor: Actor, case_id: int) -> bool:
    return (
        conn.execute(
            select(CASES.c.id)
            .join_from(CASES, ORGS, CASES.c.org_id == ORGS.c.id)
            .where(CASES.c.id == case_id, scope_clause(actor))
        ).first()
        is not None
    )


def overview(conn: Connection, actor: Actor, now: datetime) -> dict[str, Any]:
    """Open cases by type and state, overdue counts by unit, average time per step (hours)."""
    scoped = CASES.join(ORGS, CASES.c.org_id == ORGS.c.id)
    by_state = []
    for type_, state, count in conn.execute(
        select(CASES.c.type, CASES.c.state, func.count())
        .select_from(scoped)
        .where(scope_clause(actor), CASES.c.closed_at.is_(None))
        .group_by(CASES.c.type, CASES.c.state)
        .order_by(CASES.c.type, CASES.c.state)
    ):
        defn = registry.DEFINITIONS[type_]
        by_state.append({"type": type_, "type_label": defn.label, "state": state,
                         "state_label": defn.state_label(state), "count": int(count)})  # fmt: skip
    overdue_rows = conn.execute(
        select(ORGS.c.code, ORGS.c.name, func.count(func.distinct(CASES.c.id)))
        .select_from(scoped.join(DEADLINES, DEADLINES.c.case_id == CASES.c.id))
        .where(
            scope_clause(actor),
            DEADLINES.c.stopped_at.is_(None),
            or_(
                DEADLINES.c.status == "breached",
                and_(DEADLINES.c.status == "running", DEADLINES.c.due_at < now),
            ),
        )
        .group_by(ORGS.c.code, ORGS.c.name)
        .order_by(func.count(func.distinct(CASES.c.id)).desc(), ORGS.c.code)
    ).all()
    overdue = [{"org": code, "org_name": name, "count": int(count)} for code, name, count in overdue_rows]
    # Average time per step: from the previous event of the same case to this one.
    previous = EVENTS.alias("previous")
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    rows = conn.execute(
        select(CASES.c.type, EVENTS.c.trigger, previous.c.at, EVENTS.c.at)
        .select_from(
            scoped.join(EVENTS, EVENTS.c.case_id == CASES.c.id).join(
                previous, and_(previous.c.case_id == EVENTS.c.case_id, previous.c.seq == EVENTS.c.seq - 1)
            )
        )
        .where(scope_clause(actor))
        .order_by(EVENTS.c.id.desc())
        .limit(20000)
    )
    for type_, trigger, before, after in rows:
        durations[(type_, trigger)].append((to_utc(after) - to_utc(before)).total_seconds() / 3600)
    steps = []
    for (type_, trigger), values in sorted(durations.items()):
        defn = registry.DEFINITIONS[type_]
        label = next((s.label for s in defn.steps if s.trigger == trigger), trigger)
        steps.append({"type": type_, "type_label": defn.label, "trigger": trigger, "label": label,
                      "count": len(values), "avg_hours": round(sum(values) / len(values), 1)})  # fmt: skip
    totals: dict[str, int] = defaultdict(int)
    for item in by_state:
        totals[item["type_label"]] += item["count"]
    return {"by_state": by_state, "by_type": dict(totals), "overdue_by_unit": overdue, "step_times": steps}
