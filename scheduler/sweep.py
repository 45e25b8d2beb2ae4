"""The deadline sweep: one idempotent function, safe to run often, twice at once, or after downtime.

Each pass claims a batch of deadline rows in one transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite:
`BEGIN IMMEDIATE` serialises writers), records the finding (a unique key per deadline and kind makes "never
twice" a database rule), flags the deadline and writes the notifications, and commits. A crash inside a batch
rolls the whole batch back, so a restart neither loses nor duplicates a finding. Conditions compare with
"now", so a sweep after downtime catches up on everything it missed.

Findings: `reminder` (due within the reminder window, default 3 working days), `due_today`, and `breach`
(past due: recorded once and escalated to the supervising level, unit → province → national).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from db.clock import SHANGHAI, end_of_day, start_of_day, to_utc
from db.derived import refresh_next_due
from db.engine import transaction
from db.models import Case, Deadline, DeadlineFinding, Organisation, OutboxMessage
from db.precompiled import Precompiled
from scheduler.calendar import CachedCalendar

D = Deadline.__table__
C = Case.__table__
O = Organisation.__table__  # noqa: E741
F = DeadlineFinding.__table__
OUTBOX = OutboxMessage.__table__

LEVEL_LABELS = {"unit": "学位授予单位", "province": "省级学位委员会办公室", "national": "国务院学位委员会办公室",
                "center": "学位中心"}  # fmt: skip
_COUNTERS = {"reminder": "reminders", "due_today": "due_today", "breach": "breaches"}
# Who supervises the level that missed a limit.
SUPERVISOR = {"unit": "province", "province": "national", "center": "national", "national": None}


@dataclass
class SweepReport:
    now: str
    recomputed: int = 0
    reminders: int = 0
    due_today: int = 0
    breaches: int = 0
    escalations: int = 0
    messages: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


_COLUMNS = (
    D.c.id,
    D.c.case_id,
    D.c.name,
    D.c.label,
    D.c.owner,
    D.c.days,
    D.c.working,
    D.c.due_date,
    D.c.due_at,
    D.c.provisional,
    D.c.status,
    C.c.type.label("case_type"),
    C.c.org_id,
    O.c.name.label("org_name"),
    O.c.parent_id.label("org_parent_id"),
)


def _flag_statement(flag: Any, breach: bool) -> Any:
    values: dict[str, Any] = {flag.key: bindparam("v_now", type_=flag.type)}
    if breach:
        values["status"] = bindparam("v_status", type_=D.c.status.type)
    return update(D).where(D.c.id == bindparam("w_id"), flag.is_(None)).values(values)


_FINDING_VALUES = {
    name: bindparam(f"v_{name}", type_=F.c[name].type)
    for name in ("deadline_id", "case_id", "kind", "at", "escalated_to")
}
_OUTBOX_COLUMNS = (
    "created_at",
    "recipient_org_id",
    "kind",
    "subject",
    "body",
    "case_id",
    "deadline_id",
    "attempts",
    "last_error",
)
_FLAG = {
    "breach": Precompiled(_flag_statement(D.c.breached_at, True)),
    "due_today": Precompiled(_flag_statement(D.c.due_today_at, False)),
    "reminder": Precompiled(_flag_statement(D.c.reminded_at, False)),
}
_RECORD = {
    name: Precompiled(
        dialect.insert(F)
        .values(_FINDING_VALUES)
        .on_conflict_do_nothing(index_elements=["deadline_id", "kind"])
        .returning(F.c.id),
        returning=(F.c.id,),
    )
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_OUTBOX_INSERT = Precompiled(
    OUTBOX.insert().values({n: bindparam(f"v_{n}", type_=OUTBOX.c[n].type) for n in _OUTBOX_COLUMNS})
)
_ORG_OF_KIND = Precompiled(select(O.c.id).where(O.c.kind == bindparam("w_kind")).order_by(O.c.id))


class Sweeper:
    def __init__(
        self,
        db: Engine,
        calendar: CachedCalendar,
        *,
        reminder_days: int = 3,
        batch_size: int = 500,
        case_labels: Mapping[str, str] | None = None,
    ):
        self.db = db
        self.calendar = calendar
        self.reminder_days = reminder_days
        self.batch_size = batch_size
        self.case_labels = dict(case_labels or {})

    # -- the one entry point ----------------------------------------------------------------------------
    def sweep(self, now: datetime, on_finding: Callable[[str, int], None] | None = None) -> SweepReport:
        """`on_finding(kind, deadline_id)` is called inside the batch's transaction (tests crash there)."""
        now = to_utc(now)
        today = now.astimezone(SHANGHAI).date()
        report = SweepReport(now=now.isoformat())
        report.recomputed = self.recompute_provisional(now)
        cal = self.calendar.get()
        horizon, _ = cal.due(today, self.reminder_days, True)
        passes = [
            ("breach", and_(D.c.breached_at.is_(None), D.c.status.in_(("running", "breached")), D.c.due_at < now),
             D.c.breached_at),
            ("due_today", and_(D.c.due_today_at.is_(None), D.c.status == "running",
                               D.c.due_at >= start_of_day(today), D.c.due_at <= end_of_day(today)),
             D.c.due_today_at),
            ("reminder", and_(D.c.reminded_at.is_(None), D.c.status == "running", D.c.due_at >= now,
                              D.c.due_at <= end_of_day(horizon)),
             D.c.reminded_at),
        ]  # fmt: skip
        for kind, condition, flag in passes:
            while True:
                claimed = self._batch(kind, condition, flag, now, today, report, on_finding)
                if claimed < self.batch_size:
                    break
        return report

    def _batch(
        self,
        kind: str,
        condition: Any,
        flag: Any,
        now: datetime,
        today: date,
        report: SweepReport,
        on_finding: Callable[[str, int], None] | None,
    ) -> int:
        self._level_orgs: dict[str, int | None] = {}
        with transaction(self.db) as conn:
            query = (
                select(*_COLUMNS)
                .join_from(D, C, D.c.case_id == C.c.id)
                .join(O, C.c.org_id == O.c.id)
                .where(condition)
                .order_by(D.c.status, D.c.due_at, D.c.id)
                .limit(self.batch_size)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=D, skip_locked=True)
            rows = conn.execute(query).all()
            for row in rows:
                # The flag update is guarded too: a row another sweep already handled is left alone.
                flagged = _FLAG[kind].execute(conn, {"w_id": row.id, "v_now": now, "v_status": "breached"})
                if flagged != 1:
                    continue
                escalate_to = self._supervisor_org(conn, row) if kind == "breach" else None
                if not self._record(conn, row, kind, now, escalate_to):
                    continue
                report.findings.append({"kind": kind, "deadline_id": row.id, "case_id": row.case_id})
                counter = _COUNTERS[kind]
                setattr(report, counter, getattr(report, counter) + 1)
                report.messages += self._notify(conn, row, kind, now, today, escalate_to)
                if escalate_to is not None:
                    report.escalations += 1
                if on_finding is not None:
                    on_finding(kind, row.id)
            return len(rows)

    # -- pieces -----------------------------------------------------------------------------------------
    def _record(self, conn: Connection, row: Any, kind: str, now: datetime, escalate_to: int | None) -> bool:
        values = {
            "deadline_id": row.id,
            "case_id": row.case_id,
            "kind": kind,
            "at": now,
            "escalated_to": escalate_to,
        }
        statement = _RECORD["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
        return statement.first(conn, {f"v_{k}": v for k, v in values.items()}) is not None

    def _org_of_level(self, conn: Connection, row: Any, level: str | None) -> int | None:
        if level == "unit":
            return row.org_id
        if level == "province":
            return row.org_parent_id
        if level in ("national", "center"):
            # One look-up per batch, not one per finding (the batch's transaction sees one answer anyway).
            if level not in self._level_orgs:
                found = _ORG_OF_KIND.first(conn, {"w_kind": level})
                self._level_orgs[level] = found[0] if found else None
            return self._level_orgs[level]
        return None

    def _supervisor_org(self, conn: Connection, row: Any) -> int | None:
        return self._org_of_level(conn, row, SUPERVISOR.get(row.owner))

    def _notify(
        self, conn: Connection, row: Any, kind: str, now: datetime, today: date, escalate_to: int | None
    ) -> int:
        case = f"{self.case_labels.get(row.case_type, row.case_type)}案件 #{row.case_id}（{row.org_name}）"
        what = row.label or row.name
        limit = f"{row.days}{'个工作日' if row.working else '日'}"
        due = f"{row.due_date.isoformat()}{'（暂定，当年节假日安排未导入）' if row.provisional else ''}"
        owner = LEVEL_LABELS.get(row.owner, row.owner)
        left = self.calendar.get().remaining(today, row.due_date, True)
        if kind == "reminder":
            subject = f"时限提醒：{case}“{what}”将于 {row.due_date} 到期"
            body = f"{case}的“{what}”（时限 {limit}，由{owner}办理）将于 {due} 到期，尚余 {left} 个工作日。"
        elif kind == "due_today":
            subject = f"今日到期：{case}“{what}”"
            body = f"{case}的“{what}”（时限 {limit}，由{owner}办理）今日（{due}）到期，请于今日办结。"
        else:
            subject = f"已超期：{case}“{what}”已于 {row.due_date} 到期"
            body = f"{case}的“{what}”（时限 {limit}，由{owner}办理）已于 {due} 到期，尚未办结。"
        messages = [(self._org_of_level(conn, row, row.owner), kind, subject, body)]
        if escalate_to is not None:
            supervisor = LEVEL_LABELS.get(SUPERVISOR[row.owner] or "", "")
            messages.append(
                (escalate_to, "escalation", f"超期督办：{case}“{what}”", body + f" 报{supervisor}督办。")
            )
        count = 0
        for org_id, message_kind, subject_text, body_text in messages:
            if org_id is None:
                continue
            _OUTBOX_INSERT.execute(
                conn,
                dict(
                    v_created_at=now,
                    v_recipient_org_id=org_id,
                    v_kind=message_kind,
                    v_subject=subject_text,
                    v_body=body_text,
                    v_case_id=row.case_id,
                    v_deadline_id=row.id,
                    v_attempts=0,
                    v_last_error="",
                ),
            )
            count += 1
        return count

    def recompute_provisional(self, now: datetime) -> int:
        """Provisional deadlines whose years the calendar now covers get their final dates.

        Only open provisional rows due within the covered years are read (one index range), so the pass
        costs nothing once they are final."""
        cal = self.calendar.get()
        if not cal.covered:
            return 0
        last_covered = date(max(cal.covered), 12, 31)
        changed = 0
        with transaction(self.db) as conn:
            rows = conn.execute(
                select(D).where(
                    D.c.provisional.is_(True), D.c.stopped_at.is_(None), D.c.due_date <= last_covered
                )
            ).all()
            for row in rows:
                changed += recompute(conn, cal, row, now)
        return changed


def recompute(conn: Connection, cal: Any, row: Any, now: datetime) -> bool:
    """Recompute one deadline from its basis; returns True if its date or provisional mark changed."""
    due, provisional = cal.due(row.basis_date, row.basis_days, row.working)
    if (due, provisional) == (row.due_date, row.provisional):
        return False
    due_at = end_of_day(due)
    values: dict[str, Any] = {"due_date": due, "due_at": due_at, "provisional": provisional}
    if row.status in ("running", "breached") and row.stopped_at is None:
        values["status"] = "breached" if due_at < to_utc(now) else "running"
    conn.execute(update(D).where(D.c.id == row.id).values(**values))
    refresh_next_due(conn, row.case_id)
    return True


def recompute_all_provisional(conn: Connection, cal: Any, now: datetime) -> int:
    """After a calendar import, in the import's transaction: every open provisional deadline."""
    rows = conn.execute(select(D).where(D.c.provisional.is_(True), D.c.stopped_at.is_(None))).all()
    return sum(recompute(conn, cal, row, now) for row in rows)
