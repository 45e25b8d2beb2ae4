"""The service layer: the one set of functions the CLI, the web pages and the scheduler call.

Each command is one transaction (the engine's); read models are plain dicts ready for JSON or a table.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select

from cases import (
    accounts,
    attachments,
    authentication,
    filing,
    letters,
    record_files,
    records,
    registry,
    registry_checks,
    unit_forms,
    units,
    voids,
    worklist,
)
from cases.policy import scope
from cases.vocabulary import (
    CENTER,
    LEVELS,
    NATIONAL,
    PROVINCE,
    PROVINCE_CODES,
    ROLE_LABELS,
    ROLES_BY_KIND,
    UNIT,
)
from db import (
    Attachment,
    Case,
    CaseEvent,
    Clock,
    Deadline,
    Document,
    Organisation,
    SystemClock,
    User,
    create_schema,
    transaction,
)
from db.clock import SHANGHAI, beijing_date, beijing_iso, end_of_day, to_utc
from scheduler.calendar import CachedCalendar, covered_years, seed_from_package, store_year
from scheduler.calendar_file import read_calendar_file
from scheduler.calendar_file import template as calendar_template
from scheduler.notify import DeliveryReport, SmtpSettings, deliver, inbox_query
from scheduler.runner import ensure_job_table
from scheduler.sweep import Sweeper, SweepReport, recompute_all_provisional
from workflow import (
    Actor,
    FireResult,
    Forbidden,
    InvalidPayload,
    NotAllowedInState,
    NotFound,
    SeparationOfDuties,
    Vocabulary,
    WorkflowEngine,
    WorkflowError,
    load_actor,
    load_case,
)
from workflow.audit import VerifyReport, verify_chain

ORGS = Organisation.__table__
USERS = User.__table__
CASES = Case.__table__
EVENTS = CaseEvent.__table__
DEADLINES = Deadline.__table__
DOCS = Document.__table__
ATTACHMENTS = Attachment.__table__

_NATIONAL_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")


class DegreeFlow:
    def __init__(
        self,
        db: Engine,
        clock: Clock | None = None,
        *,
        reminder_days: int = 3,
        smtp: SmtpSettings | None = None,
        query_limit: int = 10,
        attachments_dir: Path | None = None,
        issue_letters: bool = True,
        require_registry_record: bool = False,
    ):
        registry.assert_valid()
        self.db = db
        self.clock = clock or SystemClock()
        self.calendar = CachedCalendar(db)
        self.smtp = smtp
        self.engine = WorkflowEngine(
            db,
            registry.DEFINITIONS,
            scope=scope,
            calculator=self.calendar,
            clock=self.clock,
            vocabulary=Vocabulary(levels=LEVELS, roles=ROLE_LABELS),
            # Letters are issued inside the step; `issue_letters=False` only for measuring the engine alone.
            # A step that undoes a round (withdraw, return, cancel) voids what the round issued (cases.voids).
            after_step=(records.apply_for_step, letters.issue_for_step, voids.void_for_step)
            if issue_letters
            else (records.apply_for_step, voids.void_for_step),
            authorize=self._authorize,
            options={registry_checks.REQUIRE_SETTING: require_registry_record},
        )
        self.attachments_dir = attachments_dir
        authentication.set_comparator(records.compare)
        self.query_limit = query_limit
        self.sweeper = Sweeper(
            db,
            self.calendar,
            reminder_days=reminder_days,
            case_labels={name: defn.label for name, defn in registry.DEFINITIONS.items()},
        )

    # -- set-up ---------------------------------------------------------------------------------------
    def init_schema(self, *, migrate: bool = False) -> list[int]:
        """Create the tables (through the migrations when `migrate`; directly from the models otherwise, as the
        tests do) and load the official holiday calendar for the years the package covers."""
        if migrate:
            from db.migrate import upgrade

            upgrade(self.db)
        else:
            create_schema(self.db)
        ensure_job_table(self.db)
        with transaction(self.db) as conn:
            loaded = seed_from_package(conn, self.clock.now())
        self.calendar.invalidate()
        return loaded

    # -- calendar -------------------------------------------------------------------------------------
    def calendar_import(self, path: Path) -> dict[str, Any]:
        """Load a year from an administrator's file; provisional deadlines are recomputed in the same step."""
        year, rows = read_calendar_file(path)
        now = self.clock.now()
        with transaction(self.db) as conn:
            store_year(conn, year, rows, f"import:{path.name}", now)
        self.calendar.invalidate()
        with transaction(self.db) as conn:
            recomputed = recompute_all_provisional(conn, self.calendar.get(), now)
        return {"year": year, "days": len(rows), "working_days": sum(1 for _d, w, _n in rows if w),
                "recomputed_deadlines": recomputed}  # fmt: skip

    @staticmethod
    def calendar_template(year: int) -> str:
        return calendar_template(year)

    def calendar_years(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return [{**row, "loaded_at": beijing_iso(row["loaded_at"])} for row in covered_years(conn)]

    def calendar_day(self, day: date) -> dict[str, Any]:
        cal = self.calendar.get()
        return {"date": day.isoformat(), "working": cal.is_workday(day), "name": cal.name(day),
                "provisional": not cal.covers(day)}  # fmt: skip

    def calendar_due(self, start: date, days: int, working: bool) -> dict[str, Any]:
        if days < 1:
            raise InvalidPayload(f"参数 N（期限）：应为正整数，收到 {days}", field="N", rule="positive")
        due, provisional = self.calendar.due(start, days, working)
        return {
            "start": start.isoformat(),
            "days": days,
            "working": working,
            "due_date": due.isoformat(),
            "due_at": beijing_iso(end_of_day(due)),
            "provisional": provisional,
        }

    def add_org(
        self, code: str, name: str, kind: str, parent: str | None = None, organ_code: str = ""
    ) -> dict[str, Any]:
        code, name, organ_code = code.strip(), name.strip(), organ_code.strip()
        if organ_code and not re.fullmatch(r"[\u4e00-\u9fffA-Za-z0-9]{1,16}", organ_code):
            raise InvalidPayload(
                f"字段 organ_code（机关代字）：应为 1-16 个汉字或字母数字（如 渝学位办），收到“{organ_code}”",
                field="organ_code",
                rule="organ_code_format",
            )
        if kind not in LEVELS:
            raise InvalidPayload(
                f"字段 kind（组织类型）：取值须为 {'、'.join(LEVELS)} 之一，收到“{kind}”",
                field="kind",
                rule="choice",
            )
        if not name:
            raise InvalidPayload("字段 name（名称）：必须填写", field="name", rule="required_field")
        accounts.check_name(name, "name", "名称", accounts.ORG_NAME_MAX)
        if kind == PROVINCE and code not in PROVINCE_CODES:
            raise InvalidPayload(
                f"字段 code（代码）：省级代码须为 GB/T 2260 的2位数字代码（如 11 北京市、45 广西），收到“{code}”",
                field="code",
                rule="province_code",
            )
        if kind == UNIT and not re.fullmatch(r"\d{5}", code):
            raise InvalidPayload(
                f"字段 code（代码）：学位授予单位代码须为5位数字，收到“{code}”",
                field="code",
                rule="unit_code",
            )
        if kind in (NATIONAL, CENTER) and not _NATIONAL_CODE.match(code):
            raise InvalidPayload(
                f"字段 code（代码）：须为大写字母开头的字母数字代码（如 XWB），收到“{code}”",
                field="code",
                rule="national_code",
            )
        with transaction(self.db) as conn:
            if conn.execute(select(ORGS.c.id).where(ORGS.c.code == code)).first():
                raise InvalidPayload(
                    f"字段 code（代码）：组织 {code} 已存在", field="code", rule="unique_code"
                )
            parent_id = None
            if kind == UNIT:
                if not parent:
                    raise InvalidPayload(
                        "字段 parent（上级）：学位授予单位须指定所属省级学位委员会办公室的代码",
                        field="parent",
                        rule="unit_parent",
                    )
                row = conn.execute(select(ORGS).where(ORGS.c.code == parent)).first()
                if row is None or row.kind != PROVINCE:
                    raise InvalidPayload(
                        f"字段 parent（上级）：{parent} 不是已登记的省级学位委员会办公室",
                        field="parent",
                        rule="unit_parent",
                    )
                parent_id = row.id
            elif parent:
                raise InvalidPayload(
                    "字段 parent（上级）：只有学位授予单位有上级组织",
                    field="parent",
                    rule="parent_only_for_units",
                )
            org_id = conn.execute(
                insert(ORGS).values(
                    code=code,
                    name=name,
                    kind=kind,
                    parent_id=parent_id,
                    organ_code=organ_code,
                    created_at=self.clock.now(),
                )
            ).inserted_primary_key[0]
        return {
            "id": org_id,
            "code": code,
            "name": name,
            "kind": kind,
            "parent": parent,
            "organ_code": organ_code,
        }

    def list_orgs(self) -> list[dict[str, Any]]:
        parent = ORGS.alias("parent")
        query = (
            select(
                ORGS.c.id,
                ORGS.c.code,
                ORGS.c.name,
                ORGS.c.kind,
                parent.c.code.label("parent"),
                ORGS.c.organ_code,
            )
            .outerjoin(parent, ORGS.c.parent_id == parent.c.id)
            .order_by(ORGS.c.kind, ORGS.c.code)
        )
        with self.db.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def add_user(
        self,
        username: str,
        name: str,
        role: str,
        org: str,
        email: str | None = None,
        *,
        department: str | int | None = None,
        contact: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """`department`: its department inside a unit (id or name; a level-2 account `checker` needs a
        verification department). `contact`: phone, mobile, fax, address (the registration forms)."""
        contact_values = units.contact_values(contact or {})
        username, name = username.strip(), name.strip()
        email = (email or "").strip() or None
        if email is not None:
            accounts.check_email(email)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{2,64}", username):
            raise InvalidPayload(
                f"字段 username（用户名）：2-64 位字母、数字、下划线、点或连字符，收到“{username}”",
                field="username",
                rule="username_format",
            )
        if not name:
            raise InvalidPayload("字段 name（姓名）：必须填写", field="name", rule="required_field")
        accounts.check_name(name, "name", "姓名", accounts.PERSON_NAME_MAX)
        with transaction(self.db) as conn:
            row = conn.execute(select(ORGS).where(ORGS.c.code == org)).first()
            if row is None:
                raise NotFound(f"组织 {org} 不存在", field="org", rule="organisation_exists")
            if row.kind == UNIT and not re.fullmatch(rf"{re.escape(row.code)}XW\d{{2,3}}", username):
                raise InvalidPayload(
                    f"字段 username（用户名）：学位授予单位的账号须为“单位代码 + XW + 序号”（如 {row.code}XW01），"
                    f"收到“{username}”",
                    field="username",
                    rule="unit_account_name",
                )
            roles = ROLES_BY_KIND[row.kind]
            if role not in roles:
                allowed = "、".join(f"{k}（{v}）" for k, v in roles.items())
                raise InvalidPayload(
                    f"字段 role（角色）：{LEVELS[row.kind]}的角色须为 {allowed} 之一，收到“{role}”",
                    field="role",
                    rule="role_for_kind",
                )
            if conn.execute(select(USERS.c.id).where(USERS.c.username == username)).first():
                raise InvalidPayload(
                    f"字段 username（用户名）：{username} 已存在", field="username", rule="unique"
                )
            dept = units.department_for_account(conn, row, role, department)
            user_id = conn.execute(
                insert(USERS).values(
                    username=username,
                    name=name,
                    role=role,
                    org_id=row.id,
                    email=email,
                    active=True,
                    created_at=self.clock.now(),
                    department_id=dept["id"] if dept else None,
                    **contact_values,
                )
            ).inserted_primary_key[0]
        return {"id": user_id, "username": username, "name": name, "role": role, "org": org, "email": email,
                "department": dept["name"] if dept else None, **contact_values}  # fmt: skip

    # -- departments inside a unit (cases.units) ----------------------------------------------------------
    def add_department(
        self,
        unit: str,
        name: str,
        kind: str,
        *,
        levels: Iterable[str] | None = None,
        years: Iterable[str] | None = None,
        forms: Iterable[str] | None = None,
        head_name: str = "",
    ) -> dict[str, Any]:
        with transaction(self.db) as conn:
            return units.add_department(conn, unit, name, kind, levels=levels, years=years, forms=forms,
                                        head_name=head_name, now=self.clock.now())  # fmt: skip

    def departments(self, unit: str) -> list[dict[str, Any]]:
        """The unit's departments, each with its accounts (for the registration forms and the list)."""
        with self.db.connect() as conn:
            return units.departments_with_accounts(conn, unit)

    def registration_forms_html(self, unit: str, *, inline_css: bool = False) -> str:
        """Seed 001 annexes 2-3 for a unit, from its departments and accounts (cases.unit_forms)."""
        found = self.departments(unit)
        if not any(d["kind"] in ("lead", "verification") for d in found):
            raise InvalidPayload(
                f"字段 unit（学位授予单位）：{unit} 尚未登记认证牵头部门或学位信息核查部门（先用 dept add 登记）",
                field="unit",
                rule="departments_registered",
            )
        name = found[0]["unit_name"]  # every department row carries its unit's name
        return unit_forms.render_html(
            unit_forms.context(unit, name, found, self.clock.today()), inline_css=inline_css
        )

    def spot_check(self, month: str, as_user: str, percent: float = 5.0, seed: str = "") -> dict[str, Any]:
        """Open spot-check cases (seed 001 art. 15) for `percent` % (rounded up) of the authentication reports
        finished in `month` (YYYY-MM, Beijing time). The sample is drawn from the month and `seed`, so it can be
        reproduced; running again opens only what is missing (reports already checked count toward the share)."""
        match = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
        if not match or not 1 <= int(match[2]) <= 12 or not 1900 <= int(match[1]) <= 2100:
            raise InvalidPayload(
                f"字段 month（月份）：格式应为 YYYY-MM，收到“{month}”", field="month", rule="month_format"
            )
        if not 0 <= percent <= 100:
            raise InvalidPayload(
                f"字段 percent（抽查比例）：应为 0 至 100，收到 {percent}",
                field="percent",
                rule="number_range",
            )
        year, number = int(match[1]), int(match[2])
        start = datetime(year, number, 1, tzinfo=SHANGHAI)
        end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=SHANGHAI)
        with self.db.connect() as conn:
            if load_actor(conn, as_user).org_kind != CENTER:
                raise Forbidden("认证报告抽查由学位中心进行", field="as", rule="spot_check_by_center")
            finished = conn.execute(
                select(CASES.c.id, CASES.c.payload, ORGS.c.code)
                .join(ORGS, ORGS.c.id == CASES.c.org_id)
                .where(CASES.c.type == "authentication", CASES.c.state == "reported",
                       CASES.c.closed_at >= to_utc(start), CASES.c.closed_at < to_utc(end))
                .order_by(CASES.c.id)
            ).all()  # fmt: skip
            checked = {
                (payload or {}).get("authentication_case")
                for payload in conn.execute(
                    select(CASES.c.payload).where(CASES.c.type == "spot_check")
                ).scalars()
            }
        target = math.ceil(len(finished) * percent / 100 - 1e-9)
        already = [row.id for row in finished if row.id in checked]
        pool = [row for row in finished if row.id not in checked]
        chosen = random.Random(f"{month}:{seed}").sample(pool, max(0, min(len(pool), target - len(already))))
        opened = []
        for row in sorted(chosen, key=lambda r: r.id):
            payload = row.payload or {}
            data = {
                "authentication_case": row.id,
                "cert_no": payload.get("cert_no", ""),
                "applicant_name": payload.get("applicant_name", ""),
                "id_number": payload.get("id_number") or None,
                "conferral_date": payload.get("conferral_date") or None,
                "original_result": payload.get("result") or "与数据库记录一致",
            }
            opened.append(
                self.open_case(
                    "spot_check",
                    row.code,
                    as_user,
                    {k: v for k, v in data.items() if v is not None},
                    f"{month} 认证报告抽查",
                ).case_id  # fmt: skip
            )
        return {"month": month, "finished": len(finished), "percent": percent, "target": target,
                "already_checked": already, "opened": opened}  # fmt: skip

    def verification_counts(self, start: date, end: date, unit: str | None = None) -> list[dict[str, Any]]:
        """Verification tasks answered from `start` to `end` (both days included, Beijing time), per unit and
        department: the basis of the Center's fee statement (seed 001 art. 7, 9)."""
        if end < start:
            raise InvalidPayload("字段 to（截止日期）：不能早于起始日期", field="to", rule="date_order")
        with self.db.connect() as conn:
            return units.verification_counts(conn, to_utc(datetime.combine(start, time(), SHANGHAI)),
                                             to_utc(datetime.combine(end + timedelta(days=1), time(), SHANGHAI)),
                                             unit)  # fmt: skip

    def list_users(self, org: str | None = None) -> list[dict[str, Any]]:
        query = (
            select(
                USERS.c.id,
                USERS.c.username,
                USERS.c.name,
                USERS.c.role,
                ORGS.c.code.label("org"),
                USERS.c.email,
                USERS.c.active,
            )
            .join(ORGS, USERS.c.org_id == ORGS.c.id)
            .order_by(ORGS.c.code, USERS.c.username)
        )
        if org:
            query = query.where(ORGS.c.code == org)
        with self.db.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # -- cases ----------------------------------------------------------------------------------------
    def open_case(
        self, case_type: str, org: str, as_user: str, payload: Mapping[str, Any] | None = None, note: str = ""
    ) -> FireResult:
        return self.engine.open(case_type, org, as_user, payload, note)

    def fire(
        self,
        case_id: int,
        trigger: str,
        as_user: str,
        note: str = "",
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> FireResult:
        try:
            result = self.engine.fire(
                case_id, trigger, as_user, note, payload, expected_version=expected_version
            )
        except InvalidPayload as exc:
            if exc.rule == "authorization_code_wrong":  # counted outside the failed step's transaction
                with transaction(self.db) as conn:
                    accounts.count_wrong_code(conn, load_actor(conn, as_user), case_id, trigger)
            raise
        if result.to_state == filing.SUPPLEMENTED and result.from_state != filing.SUPPLEMENTED:
            self._supplement_from_filing(case_id, as_user)  # the same from the CLI, the web and the API
        return result

    def filing_to_supplement(
        self, case_id: int, as_user: str, omission_reason: str = "", note: str = ""
    ) -> dict[str, int]:
        """A filing batch past its reporting limit goes as a supplement (seed 003 annex "数据报送" (1); seed 002
        art. 12(6)): the filing case closes as `supplemented` and a supplement case opens for the same unit with
        Form 1 and the data rows of the batch (`filing_case_id` links it back).

        `fire(case_id, "to_supplement", ...)` does the same (the CLI, web pages and API go through it).
        Two transactions: the filing step first (its guards decide: only a late batch), then the opening, which
        needs nothing the step did not check (a unit user of the same unit); the supplement's own steps follow."""
        data = {"omission_reason": omission_reason} if omission_reason else {}
        self.engine.fire(case_id, "to_supplement", as_user, note, data)
        return {"filing": case_id, "supplement": self._supplement_from_filing(case_id, as_user)}

    def _supplement_from_filing(self, case_id: int, as_user: str) -> int:
        with self.db.connect() as conn:
            case = load_case(conn, case_id)
        opened = self.engine.open(
            "supplement",
            case.org_code,
            as_user,
            note=f"由报送案件 #{case_id} 逾期转入",
            internal=filing.supplement_payload(case),
        )
        return opened.case_id

    # -- accounts ---------------------------------------------------------------------------------------
    def actor(self, who: str | int) -> Actor:
        with self.db.connect() as conn:
            return load_actor(conn, who)

    def set_password(self, username: str, password: str) -> None:
        with transaction(self.db) as conn:
            accounts.set_password(conn, username, password)

    def sign_in(self, username: str, password: str, address: str) -> Actor:
        """Check the password (throttled per account and address); every attempt is recorded."""
        with transaction(self.db) as conn:
            try:
                signed = accounts.authenticate(conn, username, password, address, self.clock.now())
            except accounts.SignInRefused as refused:
                failure = refused
            else:
                return load_actor(conn, signed.user_id)
        # The failed attempt is committed above (the transaction ends normally), then refused.
        raise failure

    def _authorize(self, conn: Any, actor: Actor, case: Any, step: Any, code: str | None, now: Any) -> None:
        accounts.use_code(conn, actor, case.id, step.trigger, code, now)

    def request_authorization(self, case_id: int, trigger: str, as_user: str) -> dict[str, str]:
        """Send the supervising leader a one-time code for this case's step (it lands in the leader's inbox)."""
        with transaction(self.db) as conn:
            actor = load_actor(conn, as_user)
            case = load_case(conn, case_id)
            if scope(actor, case) is not None:
                raise NotFound(f"案件 #{case_id} 不存在", rule="case_exists", field="case_id")
            defn = self.engine.definition(case.type)
            step = next((s for s in defn.manual_steps_from(case.state) if s.trigger == trigger), None)
            if step is None or not step.needs_authorization(case.rule_set):
                raise InvalidPayload(
                    f"案件 #{case_id} 当前的操作 {trigger} 不需要授权码",
                    field="trigger",
                    rule="authorization_not_needed",
                )
            problem = self.engine.permission_problem(step, case, actor, conn)
            if problem:
                raise problem
            if case.type == "filing":  # no code for a formal submission that would be refused anyway
                refusal = filing.formal_submission_problem(conn, case, self.clock.now(), self.clock.today())
                if refusal is not None:
                    raise refusal
            return accounts.request_code(
                conn, actor, case_id, trigger, step.label or trigger, self.clock.now()
            )

    # -- what one person sees -----------------------------------------------------------------------------
    def queue(
        self, as_user: str | int | Actor, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """The person's work queue (`as_user` may be the Actor a web request has just loaded: no second lookup)."""
        with self.db.connect() as conn:
            rows, total = worklist.queue(conn, load_actor(conn, as_user), limit=limit, offset=offset)
        return self._listed_rows(rows), total

    def search_cases(self, as_user: str | int, **filters: Any) -> tuple[list[dict[str, Any]], int]:
        if filters.get("case_type"):
            self.engine.definition(filters["case_type"])
        with self.db.connect() as conn:
            rows, total = worklist.search(conn, load_actor(conn, as_user), **filters)
        return self._listed_rows(rows), total

    def _listed_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """List rows with their next deadline in the user's terms (date, overdue, working days left)."""
        now, today = self.clock.now(), self.clock.today()
        cal = self.calendar.get()
        left_by_date: dict[date, int] = {}  # many rows share a due date: count its working days once
        for row in rows:
            due = row.pop("next_due_at")
            row["due"] = None
            if due is not None:
                due_date = beijing_date(due)
                overdue = to_utc(due) < now
                if due_date not in left_by_date:
                    left_by_date[due_date] = cal.remaining(today, due_date, True)
                left = left_by_date[due_date]
                row["due"] = {"date": due_date.isoformat(), "overdue": overdue, "remaining_working_days": left,
                              "soon": not overdue and left <= self.sweeper.reminder_days,
                              # the year's holiday schedule is not loaded yet: the date may still move
                              "provisional": not cal.covers(due_date)}  # fmt: skip
            for key in ("opened_at", "updated_at", "closed_at"):
                row[key] = beijing_iso(row[key])
        return rows

    def ensure_visible(self, case_id: int, as_user: str | int) -> Actor:
        """The person, if they may see the case; otherwise "not found" (never "forbidden": a case of another
        organisation is not revealed). One indexed query, no case data read."""
        with self.db.connect() as conn:
            actor = load_actor(conn, as_user)
            if not worklist.visible(conn, actor, case_id):
                raise NotFound(f"案件 #{case_id} 不存在", rule="case_exists", field="case_id")
        return actor

    def case_for(self, case_id: int, as_user: str | int) -> dict[str, Any]:
        """A case as `show` gives it, if this person may see it; otherwise "not found" (never "forbidden")."""
        data = self.show(case_id, self.ensure_visible(case_id, as_user))
        defn = self.engine.definition(data["type"])
        have: dict[str, int] | None = None
        for item in data["allowed"] or []:
            step = next(s for s in defn.manual_steps_from(data["state"]) if s.trigger == item["trigger"])
            item["authorization"] = step.needs_authorization(data["rule_set"])
            item["attachments"] = attachments.needs_of(step, data["rule_set"])
            if item["attachments"] and have is None:
                with self.db.connect() as conn:
                    have = attachments.counts(conn, case_id)
            for need in item["attachments"]:
                need["uploaded"] = (have or {}).get(need["purpose"], 0)
        return data

    # -- attachments ------------------------------------------------------------------------------------
    def add_attachment(
        self,
        case_id: int,
        as_user: str | int,
        filename: str,
        content: bytes,
        max_bytes: int,
        purpose: str = attachments.DEFAULT_PURPOSE,
    ) -> dict[str, Any]:
        """Store a file for a case (outside any web root, named by its hash) with what it is for (`purpose`, one of
        `attachments.PURPOSES`) and record who added it."""
        if self.attachments_dir is None:
            raise Forbidden("未配置附件目录", rule="attachments_unavailable")
        clean, ext, content_type = attachments.check(filename, content, max_bytes)
        purpose = attachments.check_purpose(purpose, ext)
        digest = hashlib.sha256(content).hexdigest()
        stored = f"{digest}.{ext}"
        with transaction(self.db) as conn:
            actor = load_actor(conn, as_user)
            case = load_case(conn, case_id)
            if scope(actor, case) is not None:
                raise NotFound(f"案件 #{case_id} 不存在", rule="case_exists", field="case_id")
            self.attachments_dir.mkdir(parents=True, exist_ok=True)
            target = self.attachments_dir / stored
            if not target.exists():
                partial = target.with_suffix(".part")
                partial.write_bytes(content)
                partial.replace(target)
            new_id = conn.execute(
                insert(ATTACHMENTS).values(case_id=case_id, filename=clean, stored_name=stored,
                                           content_type=content_type, size=len(content), sha256=digest,
                                           uploaded_by=actor.id, uploaded_at=self.clock.now(), purpose=purpose)
            ).inserted_primary_key[0]  # fmt: skip
        return {"id": new_id, "filename": clean, "size": len(content), "sha256": digest, "purpose": purpose,
                "purpose_label": attachments.purpose_of(purpose).label}  # fmt: skip

    def attachments(self, case_id: int) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(ATTACHMENTS, USERS.c.name.label("uploader"))
                .join(USERS, USERS.c.id == ATTACHMENTS.c.uploaded_by)
                .where(ATTACHMENTS.c.case_id == case_id)
                .order_by(ATTACHMENTS.c.id)
            ).all()
        return [{"id": r.id, "filename": r.filename, "size": r.size, "sha256": r.sha256, "uploader": r.uploader,
                 "content_type": r.content_type, "uploaded_at": beijing_iso(r.uploaded_at), "purpose": r.purpose,
                 "purpose_label": attachments.purpose_of(r.purpose).label} for r in rows]  # fmt: skip

    def attachment_needs(self, case_id: int, rule_set: str, case_type: str) -> list[dict[str, Any]]:
        """Every attachment a step of this case needs (under its rule set), the step, and how many are uploaded."""
        with self.db.connect() as conn:
            have = attachments.counts(conn, case_id)
        needs: dict[str, dict[str, Any]] = {}
        for step in self.engine.definition(case_type).steps:
            for need in attachments.needs_of(step, rule_set):
                entry = needs.setdefault(need["purpose"], {**need, "uploaded": have.get(need["purpose"], 0),
                                                           "steps": []})  # fmt: skip
                if (step.label or step.trigger) not in entry["steps"]:
                    entry["steps"].append(step.label or step.trigger)
        return list(needs.values())

    def attachment_file(
        self, case_id: int, attachment_id: int, as_user: str | int
    ) -> tuple[dict[str, Any], Path]:
        self.ensure_visible(case_id, as_user)
        with self.db.connect() as conn:
            row = conn.execute(
                select(ATTACHMENTS).where(ATTACHMENTS.c.id == attachment_id, ATTACHMENTS.c.case_id == case_id)
            ).first()
        if row is None or self.attachments_dir is None:
            raise NotFound(f"附件 #{attachment_id} 不存在", rule="attachment_exists", field="attachment")
        return dict(row._mapping), self.attachments_dir / row.stored_name

    def overview(self, as_user: str | int) -> dict[str, Any]:
        with self.db.connect() as conn:
            return worklist.overview(conn, load_actor(conn, as_user), self.clock.now())

    def show(self, case_id: int, as_user: str | Actor | None = None) -> dict[str, Any]:
        with self.db.connect() as conn:
            case = load_case(conn, case_id)
            defn = self.engine.definition(case.type)
            history = [
                {
                    "seq": e.seq,
                    "at": beijing_iso(e.at),
                    "actor": e.actor_name,
                    "actor_id": e.actor_id,
                    "trigger": e.trigger,
                    "from": e.from_state,
                    "to": e.to_state,
                    "note": e.note,
                    "payload": e.payload,
                    "hash": e.hash,
                }
                for e in conn.execute(
                    select(EVENTS).where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq)
                )
            ]
            deadlines = [self._deadline_dict(d) for d in conn.execute(
                select(DEADLINES).where(DEADLINES.c.case_id == case_id).order_by(DEADLINES.c.id)
            )]  # fmt: skip
            allowed = blocked = None
            if as_user:
                actor = load_actor(conn, as_user)
                permissions = self.engine.step_permissions(case, actor, conn)
                allowed = [{"trigger": s.trigger, "label": s.label} for s, problem in permissions if problem is None]
                # Steps of this person's level and role refused by the two-person rule: shown with the reason.
                blocked = [
                    {"trigger": s.trigger, "label": s.label, "reason": problem.message}
                    for s, problem in permissions
                    if isinstance(problem, SeparationOfDuties)
                ]
        return {
            "id": case.id,
            "type": case.type,
            "type_label": defn.label,
            "state": case.state,
            "state_label": defn.state_label(case.state),
            "rule_set": case.rule_set,
            "org": case.org_code,
            "org_name": case.org_name,
            "version": case.version,
            "opened_at": beijing_iso(case.opened_at),
            "closed_at": beijing_iso(case.closed_at),
            "payload": case.payload,
            "allowed": allowed,
            "blocked": blocked,
            "notice": case.notice,
            "history": history,
            "deadlines": deadlines,
        }

    def _deadline_dict(self, row: Any) -> dict[str, Any]:
        today = self.clock.today()
        cal = self.calendar.get()
        is_open = row.stopped_at is None and row.status in ("running", "paused", "breached")
        overdue = row.status == "breached" or (
            row.status == "running" and to_utc(row.due_at) < self.clock.now()
        )
        if row.status == "paused":
            left = row.remaining_days
        elif is_open:
            left = cal.remaining(today, row.due_date, True)
        else:
            left = None
        return {
            "id": row.id,
            "name": row.name,
            "label": row.label,
            "owner": row.owner,
            "days": row.days,
            "working": row.working,
            "start_date": row.start_date.isoformat(),
            "due_date": row.due_date.isoformat(),
            "provisional": row.provisional,
            "status": "breached" if overdue and is_open else row.status,
            "open": is_open,
            "remaining_working_days": left,
            "stopped_at": beijing_iso(row.stopped_at),
        }

    def list_cases(
        self, case_type: str | None = None, state: str | None = None, org: str | None = None
    ) -> list[dict[str, Any]]:
        next_due = (
            select(func.min(DEADLINES.c.due_date))
            .where(DEADLINES.c.case_id == CASES.c.id, DEADLINES.c.status == "running")
            .scalar_subquery()
        )
        query = (
            select(
                CASES.c.id,
                CASES.c.type,
                CASES.c.state,
                CASES.c.rule_set,
                ORGS.c.code.label("org"),
                ORGS.c.name.label("org_name"),
                CASES.c.version,
                CASES.c.opened_at,
                CASES.c.updated_at,
                CASES.c.closed_at,
                next_due.label("next_due"),
            )
            .join(ORGS, CASES.c.org_id == ORGS.c.id)
            .order_by(CASES.c.id)
        )
        if case_type:
            self.engine.definition(case_type)
            query = query.where(CASES.c.type == case_type)
        if state:
            query = query.where(CASES.c.state == state)
        if org:
            query = query.where(ORGS.c.code == org)
        rows = []
        with self.db.connect() as conn:
            for row in conn.execute(query):
                data = dict(row._mapping)
                defn = registry.DEFINITIONS[data["type"]]
                data["type_label"] = defn.label
                data["state_label"] = defn.state_label(data["state"])
                for key in ("opened_at", "updated_at", "closed_at"):
                    data[key] = beijing_iso(data[key])
                data["next_due"] = data["next_due"].isoformat() if data["next_due"] else None
                rows.append(data)
        return rows

    # -- deadlines, sweep, inbox ------------------------------------------------------------------------
    def deadlines(
        self, org: str | None = None, overdue: bool = False, due_within: int | None = None
    ) -> list[dict[str, Any]]:
        """Open deadlines, most urgent first. `due_within`: due within N working days (overdue included)."""
        now = self.clock.now()
        query = (
            select(
                DEADLINES,
                CASES.c.type.label("case_type"),
                CASES.c.state,
                ORGS.c.code.label("org"),
                ORGS.c.name.label("org_name"),
            )  # fmt: skip
            .join(CASES, DEADLINES.c.case_id == CASES.c.id)
            .join(ORGS, CASES.c.org_id == ORGS.c.id)
            .where(
                DEADLINES.c.stopped_at.is_(None), DEADLINES.c.status.in_(("running", "paused", "breached"))
            )
            .order_by(DEADLINES.c.status == "paused", DEADLINES.c.due_at, DEADLINES.c.id)
        )
        if org:
            query = query.where(ORGS.c.code == org)
        if overdue:
            query = query.where(DEADLINES.c.status != "paused", DEADLINES.c.due_at < now)
        if due_within is not None:
            horizon, _ = self.calendar.due(self.clock.today(), due_within, True)
            query = query.where(DEADLINES.c.status != "paused", DEADLINES.c.due_at <= end_of_day(horizon))
        rows = []
        with self.db.connect() as conn:
            for row in conn.execute(query):
                data = self._deadline_dict(row)
                data.update(case_id=row.case_id, case_type=row.case_type, case_state=row.state, org=row.org,
                            org_name=row.org_name,
                            type_label=registry.DEFINITIONS[row.case_type].label)  # fmt: skip
                rows.append(data)
        return rows

    def sweep(self, on_finding: Any = None) -> tuple[SweepReport, DeliveryReport | None]:
        """Run the deadline sweep once (idempotent), then deliver e-mail if SMTP is configured."""
        report = self.sweeper.sweep(self.clock.now(), on_finding)
        delivery = deliver(self.db, self.smtp, self.clock.now()) if self.smtp else None
        return report, delivery

    def inbox(self, as_user: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            actor = load_actor(conn, as_user)
            rows = conn.execute(inbox_query(actor.id, actor.org_id).limit(limit)).all()
        return [
            {"id": r.id, "at": beijing_iso(r.created_at), "kind": r.kind, "subject": r.subject, "body": r.body,
             "case_id": r.case_id, "emailed": r.sent_at is not None and not r.last_error}
            for r in rows
        ]  # fmt: skip

    # -- letters --------------------------------------------------------------------------------------
    def documents(
        self, case_id: int | None = None, org: str | None = None, day: date | None = None
    ) -> list[dict[str, Any]]:
        query = letters.document_query().order_by(DOCS.c.id)
        if case_id is not None:
            query = query.where(DOCS.c.case_id == case_id)
        if org:
            query = query.where(ORGS.c.code == org)
        rows = []
        with self.db.connect() as conn:
            for row in conn.execute(query):
                issued = to_utc(row.issued_at).astimezone(SHANGHAI)
                if day is not None and issued.date() != day:
                    continue
                rows.append({
                    "id": row.id, "case_id": row.case_id, "kind": row.kind, "label": letters.KINDS[row.kind].label,
                    "number": row.number, "title": row.title, "org": row.org_name, "issued_at": beijing_iso(row.issued_at),
                    "sha256": row.sha256, "replaces_id": row.replaces_id, "event_id": row.event_id,
                    "template_current": row.template_sha256 == letters.template_sha256(row.kind),
                })  # fmt: skip
            # 作废: a document of a withdrawn, returned or cancelled round (None: in force).
            found = voids.voids_of(conn, [r["id"] for r in rows])
        for r in rows:
            r["void"] = found.get(r["id"])
        return rows

    def document_html(self, document_id: int, *, inline_css: bool = False) -> tuple[dict[str, Any], str]:
        with self.db.connect() as conn:
            row = conn.execute(letters.document_query().where(DOCS.c.id == document_id)).first()
            void = voids.voids_of(conn, [document_id]).get(document_id) if row is not None else None
        if row is None:
            raise NotFound(f"文书 #{document_id} 不存在", field="document", rule="document_exists")
        # A void document is shown as issued, with a visible 作废 mark (its stored content stays as it was).
        html = letters.render_html(row.kind, row.context, inline_css=inline_css)
        return {**row._mapping, "void": void}, voids.mark_void(html, void)

    def document_for(self, document_id: int, as_user: str | int) -> tuple[dict[str, Any], str]:
        """`document_html` for a person who may see the document's case; otherwise "not found"."""
        document, html = self.document_html(document_id)
        try:
            self.ensure_visible(document["case_id"], as_user)
        except NotFound:
            raise NotFound(f"文书 #{document_id} 不存在", field="document", rule="document_exists") from None
        return document, html

    def latest_document(self, case_id: int, kind: str) -> int:
        if kind not in letters.KINDS:
            known = "、".join(letters.KINDS)
            raise NotFound(f"文书类别 {kind} 不存在（可用：{known}）", field="kind", rule="document_kind")
        issued = [d for d in self.documents(case_id) if d["kind"] == kind]
        if not issued:
            case = self.show(case_id)
            raise NotFound(
                f"案件 #{case_id}（{case['type_label']}，{case['state_label']}）尚未签发“{letters.KINDS[kind].label}”",
                field="kind",
                rule="document_issued",
            )
        return int(issued[-1]["id"])

    def reissue(self, document_id: int, as_user: str) -> dict[str, Any]:
        """A new numbered document with the case's current data, pointing to the one it replaces."""
        original, _ = self.document_html(document_id)
        with transaction(self.db) as conn:
            actor = load_actor(conn, as_user)
            case = load_case(conn, original["case_id"])
            issuer_level = letters.KINDS[original["kind"]].issuer
            allowed = {"unit": actor.org_id == case.org_id, "province": actor.org_id == case.org_parent_id,
                       "center": actor.org_kind == "center"}[issuer_level]  # fmt: skip
            if not allowed or not actor.active:
                raise Forbidden(
                    f"只有签发机关（{original['org_name']}）的人员可以重新签发文书 {original['number']}",
                    rule="document_issuer",
                )
            if original["void"]:
                raise NotAllowedInState(
                    f"文书 {original['number']} 已作废（{original['void']['reason']}），不能重新签发；"
                    "请重新办理相应步骤，新的文书将另行编号",
                    field="document",
                    rule="document_void",
                )
            issued = letters.issue(
                conn, original["kind"], case_id=case.id, case_type=case.type, rule_set=case.rule_set,
                unit_id=case.org_id, payload=case.payload, event_id=None, issued_by=actor.id, now=self.clock.now(),
                replaces_id=document_id,
            )  # fmt: skip
        return {"id": issued["id"], "number": issued["number"], "replaces": original["number"]}

    # -- registry of degree records ---------------------------------------------------------------------
    def records_validate(self, path: Path, org: str | None = None) -> dict[str, Any]:
        """Check a CSV/XLSX file without storing it; writes an error report workbook next to it. Numbers the
        registry holds in any form (filed, or a unit's imported copy) are refused, as the import refuses them."""
        rows = 0

        def counted() -> Any:
            nonlocal rows
            for row in record_files.iter_rows(path):
                rows += 1
                yield row

        with self.db.connect() as conn:
            problems = records.check_for_import(conn, counted(), org, copies=True)
        report = record_files.write_error_report(path, problems) if problems else None
        return {"rows": rows, "problems": [p.to_dict() for p in problems],
                "invalid_rows": len({p.row for p in problems if p.row}),
                "report": str(report) if report else None}  # fmt: skip

    def records_import(
        self,
        path: Path,
        org: str | None = None,
        skip_invalid: bool = False,
        progress: Any = None,
        *,
        as_user: str | int | None = None,
        filed: bool = False,
    ) -> dict[str, Any]:
        """Store the valid rows of a file in one transaction; any invalid row refuses the file unless skipped.

        What the records become follows who imports them (`records.import_kind`): the Degree Center's or the
        national office's import is the national database, public at once; a unit's import is a working copy
        (not public), and a unit's import of its filed data (`filed`) stays pending until a second person of the
        unit confirms it (`records_confirm`). Every import, taken or refused, leaves an audit row: who, when, the
        organisation, the file's name, SHA-256 and size, rows accepted and refused, its status.

        The file is read once for the import, as a stream, so its size does not bound memory."""
        with self.db.connect() as conn:
            actor = self._importer(conn, as_user)
            kind = records.import_kind(actor, filed)
            if actor.org_kind == UNIT:
                if org and org != actor.org_code:
                    raise Forbidden(
                        f"学位授予单位：{actor.name} 只能导入本单位（{actor.org_code}）的学位授予信息，收到“{org}”",
                        field="org",
                        rule="records_import_own_unit",
                    )
                org = actor.org_code
            if not org:
                raise InvalidPayload("学位授予单位：请指定导入哪个单位的学位授予信息（--org 单位代码）", field="org",
                                     rule="required_field")  # fmt: skip
            if (
                conn.execute(select(ORGS.c.id).where(ORGS.c.code == org, ORGS.c.kind == "unit")).first()
                is None
            ):
                raise NotFound(f"学位授予单位 {org} 不存在", field="org", rule="organisation_exists")
        sha256, size = _file_digest(path)
        _, record_status, publishable = records.STANDING[kind]
        bad_rows: set[int] = set()
        problems: list[Any] = []
        try:
            with transaction(self.db) as conn:
                now = self.clock.now()
                import_id = records.begin_import(conn, actor, org, path.name, kind, now)
                stats: dict[str, int] = {}
                # One read of the file: check and store block by block (a large CSV is checked in worker
                # processes); any refusal below raises, and the transaction takes back what was stored.
                stored, problems = records.import_file(
                    conn, record_files.iter_rows(path), org, now, f"import:{path.name}",
                    skip_invalid=skip_invalid, progress=progress, status=record_status, publishable=publishable,
                    import_id=import_id, stats=stats,
                )  # fmt: skip
                bad_rows = {p.row for p in problems if p.row}
                batch_problems = [p for p in problems if not p.row]
                if (problems and not skip_invalid) or batch_problems:
                    report = record_files.write_error_report(path, problems)
                    first = problems[0]
                    where = f"第 {first.row} 行 " if first.row else ""
                    raise InvalidPayload(
                        f"{path.name}：{len(bad_rows) or len(problems)} 行有错误，未导入任何记录。"
                        f"{where}{first.message}（全部错误见 {report.name}）",
                        field=first.field,
                        rule=first.code,
                    )
                status = records.finish_import(conn, import_id, sha256=sha256, size=size, accepted=stored,
                                               refused=len(bad_rows))  # fmt: skip
        except Exception as refused:
            # The file's transaction is taken back; the refusal is on the record all the same.
            message = (
                refused.message
                if isinstance(refused, WorkflowError)
                else f"文件无法导入（{type(refused).__name__}）"
            )
            with transaction(self.db) as conn:
                records.log_refused_import(conn, actor, org, path.name, kind, self.clock.now(), sha256=sha256,
                                           size=size, refused=len(bad_rows), message=message)  # fmt: skip
            raise
        report = record_files.write_error_report(path, problems) if problems else None
        return {"stored": stored, "skipped": len(bad_rows), "report": str(report) if report else None,
                "import_id": import_id, "status": status, "status_label": records.STATUS_LABELS[status],
                "sha256": sha256}  # fmt: skip

    @staticmethod
    def _importer(conn: Any, as_user: str | int | None) -> Actor:
        if as_user is None or as_user == "":
            raise InvalidPayload(
                "导入人：须注明导入人（--as 用户名）——每次导入都记录导入人、文件的 SHA-256 和行数",
                field="as_user",
                rule="importer_required",
            )
        return load_actor(conn, as_user)

    def records_confirm(self, import_id: int, as_user: str | int) -> dict[str, Any]:
        """A second person of the unit confirms the unit's import of its filed data (never the importer)."""
        with transaction(self.db) as conn:
            actor = load_actor(conn, as_user)
            found = records.confirm_import(conn, import_id, actor, self.clock.now())
        return _import_view(found)

    def records_imports(
        self, as_user: str | int | None = None, org: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The imports, newest first: a unit sees its own, a province its units', the Degree Center and the national
        office all (without `as_user`, at the console: all, or `org`'s)."""
        with self.db.connect() as conn:
            units: list[str] | None = None
            if as_user is not None:
                actor = load_actor(conn, as_user)
                if actor.org_kind == UNIT:
                    units = [actor.org_code]
                elif actor.org_kind == PROVINCE:
                    units = list(
                        conn.execute(select(ORGS.c.code).where(ORGS.c.parent_id == actor.org_id)).scalars()
                    )
            if org:
                units = [org] if units is None or org in units else []
            found = records.list_imports(conn, units=units, limit=limit)
        return [_import_view(row) for row in found]

    def records_export(self, path: Path, org: str | None = None) -> int:
        query = select(records.RECORDS).order_by(records.RECORDS.c.id)
        if org:
            query = query.where(records.RECORDS.c.unit_code == org)
        with self.db.connect() as conn:
            return record_files.write_rows(path, (dict(row._mapping) for row in conn.execute(query)))

    def record_history(self, cert_no: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            found = records.history(conn, cert_no)
        if found is None:
            raise NotFound(f"学位证书编号 {cert_no} 没有备案记录", field="cert_no", rule="record_exists")
        found["filed_at"] = beijing_iso(found["filed_at"])
        for change in found["changes"]:
            change["at"] = beijing_iso(change["at"])
        return found

    def record_history_for(self, cert_no: str, as_user: str | int) -> dict[str, Any]:
        """A record's history if the person's organisation may see it (its unit, the unit's province, national)."""
        found = self.record_history(cert_no)
        unit = str((found.get("data") or {}).get("unit_code") or cert_no[:5])
        with self.db.connect() as conn:
            actor = load_actor(conn, as_user)
            owner = conn.execute(select(ORGS.c.code, ORGS.c.parent_id).where(ORGS.c.code == unit)).first()
        allowed = actor.org_kind in (NATIONAL, CENTER) or (
            owner is not None
            and (
                (actor.org_kind == UNIT and owner.code == actor.org_code)
                or (actor.org_kind == PROVINCE and owner.parent_id == actor.org_id)
            )
        )
        if not allowed:
            raise NotFound(f"学位证书编号 {cert_no} 没有备案记录", field="cert_no", rule="record_exists")
        return found

    def query_certificate(
        self, cert_no: str, name: str, client: str = "local", member: bool = False
    ) -> dict[str, Any]:
        with transaction(self.db) as conn:
            return records.query(conn, cert_no, name, client=client, member=member, now=self.clock.now(),
                                 per_minute=self.query_limit)  # fmt: skip

    def verify_audit(self, case_id: int | None = None) -> VerifyReport:
        with self.db.connect() as conn:
            return verify_chain(conn, case_id)

    @staticmethod
    def definitions_check() -> list[str]:
        return registry.check_all()


def _file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, for the import's audit row (a file that cannot be read: empty, 0)."""
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return "", 0
    return digest.hexdigest(), size


def _import_view(row: Mapping[str, Any]) -> dict[str, Any]:
    view = dict(row)
    for key in ("at", "confirmed_at"):
        view[key] = beijing_iso(view[key]) if view.get(key) else None
    return view
