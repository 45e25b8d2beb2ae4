"""Inside a unit: departments, level-1 and level-2 authentication accounts, routing of verification tasks.

Seed 001 art. 8-9 and annexes 2-3 (学位中心〔2020〕18号): a unit names one lead department (牵头部门) whose
level-1 account sees every verification task of the unit and reassigns them, and verification departments
(核查部门) whose level-2 accounts receive and answer the tasks within their scope: degree level (学士 / 硕士 /
博士), award year (往届 / 应届) and, for bachelor's degrees, study form (普通 / 成人/自考 / 来华留学). Seed 004
adds colleges (二级学院) and managing departments (教务处, 继续教育学院, 国际交流与合作处).

Routing (our design): when the Center sends a task to the unit, the record's facts are looked up (the filed
record by certificate number, else the request and the certificate number's level digit); the first
verification department (in the order they were registered) whose scope covers them gets the task, else the
lead department, else nobody (every unit user sees it). A task is "应届" when the degree was conferred in
the year the task is sent, else "往届". The department is kept in the case payload (`department_id`,
`department`), so the audit trail shows every assignment and reassignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from cases.degree_record import LEVEL_DIGIT, LEVEL_NAMES, degree_level
from db.clock import to_utc
from db.models import Case, CaseEvent, Deadline, DegreeRecord, Department, Organisation, OutboxMessage, User
from workflow import FireContext, Forbidden, InvalidPayload, NotFound

DEPARTMENTS = Department.__table__
ORGS = Organisation.__table__
DEADLINES = Deadline.__table__
RECORDS = DegreeRecord.__table__
OUTBOX = OutboxMessage.__table__

KINDS = {
    "lead": "认证牵头部门",
    "verification": "学位信息核查部门",
    "college": "二级学院",
    "managing": "管理部门",
}
# The choices of seed 001 annex 3 (an empty list = A / E / I 全部).
LEVELS = ("学士", "硕士", "博士")
YEARS = ("往届", "应届")
FORMS = ("普通", "成人/自考", "来华留学")
_LEVEL_BY_DIGIT = {digit: LEVEL_NAMES[level] for level, digit in LEVEL_DIGIT.items()}
NAME_MAX = 100

# Roles of the accounts inside a unit (cases.vocabulary): the level-1 account and the level-2 account.
LEAD_ROLE, CHECKER_ROLE = "lead", "checker"


def _choices(values: Iterable[str] | None, allowed: Sequence[str], field: str, label: str) -> list[str]:
    chosen: list[str] = []
    for raw in values or ():
        value = str(raw).strip()
        if value in ("", "全部"):
            return []  # 全部
        if value not in allowed:
            raise InvalidPayload(
                f"字段 {field}（{label}）：应为 {'、'.join(allowed)} 或 全部，收到“{value}”",
                field=field,
                rule="choice",
            )
        if value not in chosen:
            chosen.append(value)
    return [] if len(chosen) == len(allowed) else chosen


def _unit(conn: Connection, unit_code: str) -> Any:
    unit = conn.execute(select(ORGS).where(ORGS.c.code == unit_code)).first()
    if unit is None or unit.kind != "unit":
        raise NotFound(
            f"字段 unit（学位授予单位）：单位 {unit_code} 不存在", field="unit", rule="unit_exists"
        )
    return unit


def add_department(
    conn: Connection,
    unit_code: str,
    name: str,
    kind: str,
    *,
    levels: Iterable[str] | None = None,
    years: Iterable[str] | None = None,
    forms: Iterable[str] | None = None,
    head_name: str = "",
    now: datetime,
) -> dict[str, Any]:
    unit = _unit(conn, unit_code)
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidPayload(
            f"字段 name（部门名称）：必须填写，至多 {NAME_MAX} 个字符，不含控制字符",
            field="name",
            rule="department_name",
        )
    if kind not in KINDS:
        allowed = "、".join(f"{k}（{v}）" for k, v in KINDS.items())
        raise InvalidPayload(
            f"字段 kind（部门类型）：应为 {allowed} 之一，收到“{kind}”", field="kind", rule="choice"
        )
    head_name = (head_name or "").strip()
    if len(head_name) > 64 or not head_name.isprintable():
        raise InvalidPayload(
            "字段 head_name（部门负责人）：至多 64 个字符", field="head_name", rule="max_length"
        )
    scope = {
        "levels": _choices(levels, LEVELS, "levels", "学位层级"),
        "years": _choices(years, YEARS, "years", "授予年份"),
        "forms": _choices(forms, FORMS, "forms", "学习形式（学士）"),
    }
    if kind != "verification" and any(scope.values()):
        raise InvalidPayload(
            "字段 levels/years/forms（可核查的信息）：只有学位信息核查部门登记可核查的范围",
            field="levels",
            rule="scope_for_verification_only",
        )
    taken = conn.execute(
        select(DEPARTMENTS.c.id).where(DEPARTMENTS.c.unit_id == unit.id, DEPARTMENTS.c.name == name)
    ).first()
    if taken:
        raise InvalidPayload(
            f"字段 name（部门名称）：{unit.name} 已有部门“{name}”", field="name", rule="unique"
        )
    if (
        kind == "lead"
        and conn.execute(
            select(DEPARTMENTS.c.id).where(DEPARTMENTS.c.unit_id == unit.id, DEPARTMENTS.c.kind == "lead")
        ).first()
    ):
        raise InvalidPayload(
            f"字段 kind（部门类型）：{unit.name} 已确定认证牵头部门，每个单位只能有一个（学位中心〔2020〕18号）",
            field="kind",
            rule="one_lead_department",
        )
    department_id = conn.execute(
        insert(DEPARTMENTS).values(
            unit_id=unit.id, name=name, kind=kind, head_name=head_name, created_at=now, **scope
        )
    ).inserted_primary_key[0]
    return department(conn, int(department_id))


# Departments with their unit's code and name.
_DEPARTMENTS_OF_UNITS = select(
    DEPARTMENTS, ORGS.c.code.label("unit_code"), ORGS.c.name.label("unit_name")
).join(ORGS, ORGS.c.id == DEPARTMENTS.c.unit_id)


def department(conn: Connection, department_id: int) -> dict[str, Any]:
    row = conn.execute(_DEPARTMENTS_OF_UNITS.where(DEPARTMENTS.c.id == department_id)).first()
    if row is None:
        raise NotFound(f"部门 #{department_id} 不存在", field="department", rule="department_exists")
    return _as_dict(row)


def departments(conn: Connection, unit_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        _DEPARTMENTS_OF_UNITS.where(DEPARTMENTS.c.unit_id == unit_id).order_by(DEPARTMENTS.c.id)
    ).all()
    return [_as_dict(row) for row in rows]


def _as_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["kind_label"] = KINDS.get(data["kind"], data["kind"])
    data["scope_label"] = scope_label(data)
    return data


def scope_label(dept: Mapping[str, Any]) -> str:
    if dept["kind"] != "verification":
        return ""
    return "；".join(
        f"{label}：{'、'.join(dept[key]) or '全部'}"
        for key, label in (("levels", "学位层级"), ("years", "授予年份"), ("forms", "学习形式（学士）"))
    )


def find_department(conn: Connection, unit_id: int, reference: str | int) -> dict[str, Any]:
    """A department of this unit by id or name (what a user types)."""
    text = str(reference).strip()
    condition = (
        DEPARTMENTS.c.id == int(text) if text.isdigit() and len(text) < 10 else DEPARTMENTS.c.name == text
    )
    row = conn.execute(select(DEPARTMENTS.c.id).where(DEPARTMENTS.c.unit_id == unit_id, condition)).first()
    if row is None:
        raise InvalidPayload(
            f"字段 department（核查部门）：本单位没有部门“{text}”",
            field="department",
            rule="department_exists",
        )
    return department(conn, int(row.id))


# -- the facts of a verification task and the department that answers it -------------------------------
def task_facts(conn: Connection, payload: Mapping[str, Any], today: date) -> dict[str, str | None]:
    """Degree level, award year and study form of the degree a task is about: from the filed record when there
    is one, else from the request and the certificate number."""
    cert = str(payload.get("cert_no") or "")
    record = None
    if cert:
        found = conn.execute(
            select(RECORDS.c.data, RECORDS.c.degree_type, RECORDS.c.conferral_date).where(
                RECORDS.c.cert_no == cert
            )
        ).first()
        if found is not None:
            record = {**(found.data or {}), "degree_type": found.degree_type,
                      "conferral_date": found.conferral_date.strftime("%Y%m%d")}  # fmt: skip
    data: Mapping[str, Any] = record or {}
    level_key = degree_level(str(data.get("degree_type") or payload.get("degree_type") or ""))
    level = (
        LEVEL_NAMES[level_key] if level_key else _LEVEL_BY_DIGIT.get(cert[5:6]) if len(cert) == 16 else None
    )
    conferral = str(data.get("conferral_date") or payload.get("conferral_date") or "").replace("-", "")
    year = None
    if len(conferral) >= 4 and conferral[:4].isdigit():
        year = "应届" if int(conferral[:4]) == today.year else "往届"
    form = None
    if level == "学士":
        study = f"{data.get('study_form') or ''}{data.get('degree_type') or ''}"
        if data.get("country") and data.get("country") != "中国":
            form = "来华留学"
        elif "成人" in study or "自考" in study or "自学考试" in study:
            form = "成人/自考"
        elif record is not None:
            form = "普通"
    return {"level": level, "year": year, "form": form}


def covers(dept: Mapping[str, Any], facts: Mapping[str, str | None]) -> bool:
    """Whether a verification department's scope covers a task (an unknown fact is covered only by 全部)."""
    for key, fact in (("levels", facts["level"]), ("years", facts["year"])):
        if dept[key] and fact not in dept[key]:
            return False
    # The study form is asked of bachelor's degrees only (annex 3: 学习形式（学士）).
    return not (dept["forms"] and facts["level"] == "学士" and facts["form"] not in dept["forms"])


def route(conn: Connection, unit_id: int, facts: Mapping[str, str | None]) -> dict[str, Any] | None:
    found = departments(conn, unit_id)
    for dept in found:
        if dept["kind"] == "verification" and covers(dept, facts):
            return dept
    return next((d for d in found if d["kind"] == "lead"), None)


def _assign(ctx: FireContext, dept: Mapping[str, Any] | None, how: str) -> None:
    values = {
        "department_id": dept["id"] if dept else None,
        "department": dept["name"] if dept else "",
        "department_assigned": how,
    }
    ctx.payload.update(values)
    ctx.step_payload.update(values)  # the event shows where the task went


def route_task(ctx: FireContext) -> None:
    """Guard of the steps that send a task to the unit: choose the department that answers it."""
    facts = task_facts(ctx.conn, ctx.payload, ctx.today)
    dept = route(ctx.conn, ctx.case.org_id, facts)
    how = (
        "按范围自动分配" if dept and dept["kind"] == "verification" else "转牵头部门" if dept else "未设部门"
    )
    _assign(ctx, dept, how)


def reassign_task(ctx: FireContext) -> None:
    """Guard of `reassign`: only the lead department's level-1 account (or the unit administrator) reassigns,
    to a verification or the lead department of the same unit."""
    if ctx.actor.role not in (LEAD_ROLE, "admin"):
        raise Forbidden("只有认证牵头部门的一级账号或单位管理员可以重新分配核查任务", rule="reassign_role")
    dept = find_department(ctx.conn, ctx.case.org_id, ctx.step_payload.get("department", ""))
    if dept["kind"] not in ("verification", "lead"):
        raise InvalidPayload(
            f"字段 department（核查部门）：“{dept['name']}”是{dept['kind_label']}，只能分配给核查部门或牵头部门",
            field="department",
            rule="department_kind",
        )
    if dept["id"] == ctx.case.payload.get("department_id"):
        raise InvalidPayload(
            f"字段 department（核查部门）：任务已由“{dept['name']}”核查",
            field="department",
            rule="department_changed",
        )
    _assign(ctx, dept, "牵头部门重新分配")


def complex_notice(ctx: FireContext) -> None:
    """Guard of `notify_complex` (seed 001 art. 12): the unit says a task is complex before its 10 working days
    end. The limit is kept; the case is flagged for the Center."""
    row = ctx.conn.execute(
        select(DEADLINES.c.due_at, DEADLINES.c.status)
        .where(DEADLINES.c.case_id == ctx.case.id, DEADLINES.c.name == "unit_answer")
        .order_by(DEADLINES.c.id.desc())
    ).first()
    if row is None or row.status != "running" or to_utc(row.due_at) <= ctx.now:
        raise Forbidden(
            "复杂情况须在核查时限（10个工作日）届满前告知学位中心；时限已过，请尽快反馈核查结果",
            rule="complex_before_deadline",
        )
    if ctx.case.payload.get("complex"):
        raise InvalidPayload("已告知学位中心此任务情况复杂", field="note", rule="complex_once")
    notice = {
        "complex": True,
        "complex_at": ctx.now.isoformat(),
        "complex_reason": ctx.payload.get("reason", ""),
    }
    ctx.payload.update(notice)
    ctx.step_payload.update(notice)
    # Told to the Center in its inbox, in the same transaction as the step.
    for center in ctx.conn.execute(select(ORGS.c.id).where(ORGS.c.kind == "center")).scalars():
        ctx.conn.execute(
            insert(OUTBOX).values(
                created_at=ctx.now, recipient_org_id=center, kind="complex", case_id=ctx.case.id,
                subject=f"认证核查任务情况复杂：案件 #{ctx.case.id}（{ctx.case.org_name}）",
                body=(f"{ctx.case.org_name} {ctx.actor.name} 告知：案件 #{ctx.case.id}（证书编号 "
                      f"{ctx.case.payload.get('cert_no', '')}）情况复杂，可能无法在 10 个工作日内反馈。"
                      f"原因：{notice['complex_reason']}"),
            )
        )  # fmt: skip


def may_see(
    actor_role: str, actor_department: int | None, case_type: str, payload: Mapping[str, Any]
) -> bool:
    """A level-2 account sees only the verification tasks assigned to its department."""
    if actor_role != CHECKER_ROLE:
        return True
    return (
        case_type == "authentication"
        and actor_department is not None
        and payload.get("department_id") == actor_department
    )


# -- accounts inside a unit -------------------------------------------------------------------------------
CONTACT_FIELDS = {
    "phone": ("电话", 32),
    "mobile": ("手机", 32),
    "fax": ("传真", 32),
    "address": ("通讯地址", 200),
}


def contact_values(contact: Mapping[str, str]) -> dict[str, str]:
    """The contact details of an account (registration forms of seed 001 annexes 2-3), checked."""
    unknown = sorted(set(contact) - set(CONTACT_FIELDS))
    if unknown:
        raise InvalidPayload(
            f"未知的联系方式字段：{'、'.join(unknown)}", field=unknown[0], rule="unknown_field"
        )
    values = {}
    for key, (label, limit) in CONTACT_FIELDS.items():
        value = str(contact.get(key) or "").strip()
        if len(value) > limit or not value.isprintable():
            raise InvalidPayload(
                f"字段 {key}（{label}）：至多 {limit} 个字符，不含控制字符", field=key, rule="max_length"
            )
        if (
            key in ("phone", "mobile", "fax")
            and value
            and not all(c.isdigit() or c in "+-() 转" for c in value)
        ):
            raise InvalidPayload(
                f"字段 {key}（{label}）：只能包含数字、空格和 + - ( ) 转，收到“{value}”",
                field=key,
                rule="phone_format",
            )
        values[key] = value
    return values


def department_for_account(
    conn: Connection, org: Any, role: str, reference: str | int | None
) -> dict[str, Any] | None:
    """The department of a new account of `org`: a level-2 account (`checker`) needs a verification
    department of its unit; a level-1 account (`lead`) may name the lead department."""
    if reference is None or str(reference).strip() == "":
        if role == CHECKER_ROLE:
            raise InvalidPayload(
                "字段 department（部门）：学位信息核查部门的二级账号须指定所属核查部门",
                field="department",
                rule="department_required",
            )
        return None
    if org.kind != "unit":
        raise InvalidPayload(
            "字段 department（部门）：只有学位授予单位的账号属于部门",
            field="department",
            rule="department_for_unit",
        )
    dept = find_department(conn, org.id, reference)
    expected = {CHECKER_ROLE: "verification", LEAD_ROLE: "lead"}.get(role)
    if expected and dept["kind"] != expected:
        raise InvalidPayload(
            f"字段 department（部门）：角色 {role} 的账号须属于{KINDS[expected]}，“{dept['name']}”是{dept['kind_label']}",
            field="department",
            rule="department_kind",
        )
    return dept


def departments_with_accounts(conn: Connection, unit_code: str) -> list[dict[str, Any]]:
    users = User.__table__
    unit = _unit(conn, unit_code)
    found = departments(conn, unit.id)
    accounts = conn.execute(
        select(
            users.c.username,
            users.c.name,
            users.c.role,
            users.c.email,
            users.c.department_id,
            users.c.phone,
            users.c.mobile,
            users.c.fax,
            users.c.address,
        )  # fmt: skip
        .where(users.c.org_id == unit.id, users.c.department_id.is_not(None))
        .order_by(users.c.id)
    ).all()
    for dept in found:
        dept["accounts"] = [dict(a._mapping) for a in accounts if a.department_id == dept["id"]]
    return found


# -- the fee statement: verification tasks answered per unit and department (seed 001 art. 7, 9) ------------
def verification_counts(
    conn: Connection, start: datetime, end: datetime, unit_code: str | None = None
) -> list[dict[str, Any]]:
    """Verification tasks answered (`answer` of authentication cases, a dispute's second answer included) from
    `start` (inclusive) to `end` (exclusive), per unit and the answering account's department."""
    cases, events, users = Case.__table__, CaseEvent.__table__, User.__table__
    query = (
        select(
            ORGS.c.code,
            ORGS.c.name,
            DEPARTMENTS.c.name.label("department"),
            func.count().label("tasks"),
        )
        .select_from(events)
        .join(cases, cases.c.id == events.c.case_id)
        .join(ORGS, ORGS.c.id == cases.c.org_id)
        .join(users, users.c.id == events.c.actor_id)
        .outerjoin(DEPARTMENTS, DEPARTMENTS.c.id == users.c.department_id)
        .where(
            cases.c.type == "authentication",
            events.c.trigger == "answer",
            events.c.at >= start,
            events.c.at < end,
        )
        .group_by(ORGS.c.code, ORGS.c.name, DEPARTMENTS.c.name)
        .order_by(ORGS.c.code, DEPARTMENTS.c.name)
    )
    if unit_code:
        query = query.where(ORGS.c.code == unit_code)
    return [
        {
            "unit_code": r.code,
            "unit_name": r.name,
            "department": r.department or "（未设部门）",
            "tasks": int(r.tasks),
        }
        for r in conn.execute(query)
    ]


def fee_workbook(rows: Sequence[Mapping[str, Any]], start: date, end: date, path: Any) -> None:
    """The counts as an XLSX statement (one row per unit and department, a total per unit and overall)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "核查劳务费统计"
    sheet.append([f"学位信息核查任务统计（{start.isoformat()} 至 {end.isoformat()}）"])
    sheet["A1"].font = Font(bold=True)
    sheet.append(["学位授予单位码", "学位授予单位", "核查部门", "已反馈核查任务数"])
    total = 0
    by_unit: dict[str, int] = {}
    for row in rows:
        sheet.append([row["unit_code"], row["unit_name"], row["department"], row["tasks"]])
        by_unit[row["unit_code"]] = by_unit.get(row["unit_code"], 0) + row["tasks"]
        total += row["tasks"]
    for code, count in by_unit.items():
        sheet.append([code, "单位小计", "", count])
    sheet.append(["合计", "", "", total])
    for column, width in zip("ABCD", (16, 28, 24, 18), strict=True):
        sheet.column_dimensions[column].width = width
    book.save(path)


# -- who does a filing step inside the unit (seed 002 art. 12, seed 004 art. 11) -----------------------------
def department_step(kind: str, payload_key: str) -> Any:
    """A guard: once the unit has registered departments of `kind` (colleges collect, managing departments
    check), the step is done by a member of one of them (or the unit administrator); the department is kept in
    the case (`payload_key`). A unit without such departments keeps the plain role rules."""

    def guard(ctx: FireContext) -> None:
        rows = ctx.conn.execute(
            select(DEPARTMENTS.c.id, DEPARTMENTS.c.name).where(
                DEPARTMENTS.c.unit_id == ctx.case.org_id, DEPARTMENTS.c.kind == kind
            )
        ).all()
        if not rows:
            return
        names = {row.id: row.name for row in rows}
        if ctx.actor.department_id in names:
            ctx.payload[payload_key] = ctx.step_payload[payload_key] = names[ctx.actor.department_id]
            return
        if ctx.actor.role == "admin":
            return
        raise Forbidden(
            f"本单位已登记{KINDS[kind]}（{'、'.join(names.values())}），此步骤须由{KINDS[kind]}的人员办理；"
            f"{ctx.actor.name} 不属于{KINDS[kind]}",
            rule="department_for_step",
        )

    guard.__name__ = f"by_{kind}"
    return guard


COLLECTED_BY_COLLEGE = department_step("college", "collected_by")
CHECKED_BY_MANAGING_DEPARTMENT = department_step("managing", "checked_by")
