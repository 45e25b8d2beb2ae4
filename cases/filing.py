"""Filing (学位授予信息报送): a batch of newly conferred degrees, one conferral date per batch.

Rule sets, chosen by the batch's conferral date (`conferral_date`):

* **2020** (conferred before 2024-06-01; seed 002 art. 12-13, seed 004 art. 10-11): the colleges collect the
  data (the collector who opens the case), a different person of the managing department checks it, and the
  unit reports it with the scan of the committee's resolution (an attachment of the case) to the province
  **within 30 days of the resolution taking effect** (`resolution_date`); the province reviews **within 30
  days**, returns the batch for correction (the review limit pauses; the corrected batch starts a fresh one)
  or accepts it, which files it.
* **2024** (conferred on or after 2024-06-01; seed 003 items 7, 9-11 and its annex "数据报送" (1)-(6)): the
  batch may be pre-validated at any time, even before the committee meets; the formal submission ("正式报送")
  is refused before the conferral date, needs the supervising leader's one-time authorization code and files
  the batch at once; it must happen **within 7 days of the conferral date** — later, the platform counts the
  batch as a supplement: the step is refused with that message and `to_supplement` (or
  `DegreeFlow.filing_to_supplement`, which also opens the supplement case with the same rows) takes it there.

States and triggers (names follow DOMAIN.md §7):

    draft      -prevalidate->  draft          unit (2024 only): every record checked, nothing filed
    draft      -submit->       unit_check     unit (the collector hands the batch to the managing department)
    unit_check -send_back->    draft          unit verifier/admin, with the reason
    unit_check -verify->       province_review  2020: a second person checks and reports to the province
    unit_check -verify->       recorded         2024: a second person checks; with the leader's code: filed
    province_review -return->  draft          province, with the reason (review limit paused)
    province_review -accept->  recorded       province: filed
    draft | unit_check -to_supplement-> supplemented   unit, only once the reporting limit has passed

Once a unit has registered colleges (二级学院) and managing departments (管理部门, e.g. 教务处) as departments
(`cases.units`), `submit` is done by a member of a college and `verify` by a member of a managing department
(or the unit administrator); the departments are kept in the case (`collected_by`, `checked_by`).

`recorded` (已备案入库) and `supplemented` (已转补报) are terminal. At `recorded` the rows enter the registry as
filed and publishable records (`cases.records.apply_for_step`).

The rows (`data`) are degree records with the supplement's keys (`cases.degree_record.FIELDS`, Chinese column
names accepted). Every submission checks them all (`BatchChecker` via `records.check_for_import`, plus the rules
below) and a refusal lists every problem per record (`details["problems"]`: index, row, cert_no, field, code,
message). Special bachelor's degrees (seed 003 annex "数据报送" (4)-(6)):

* double bachelor's (双学士): two rows of the same person differing only in degree type (code and name), the
  major code left empty; they are filed together (one batch, one transaction) and each record names the other
  in `paired_cert_no`;
* minor bachelor's (辅修学士): a row with `major_cert_no`, the certificate number of the person's major
  bachelor's degree, filed already or in the same batch;
* joint bachelor's (联合学士): `joint_unit_code` and `joint_unit` given once for the batch are added to every
  record (the platform's bulk marking).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from cases import attachments, units
from cases.common import REASON, cancel, withdraw
from cases.degree_record import COLUMN, Problem, degree_level, normalise
from cases.record import PLATFORM_2024
from cases.vocabulary import PROVINCE, UNIT, VERIFY_ROLES
from db.clock import to_utc
from db.models import Deadline, DegreeRecord
from workflow import (
    AttachmentNeed,
    CaseView,
    DeadlineEffect,
    FieldRule,
    FireContext,
    InvalidPayload,
    NotAllowedInState,
    ProcessDefinition,
    Step,
    parse_date,
)

RULES_2020, RULES_2024 = "2020", "2024"
SUPPLEMENTED = "supplemented"  # the terminal state of a late batch sent on as a supplement
REPORT_DAYS = {RULES_2020: 30, RULES_2024: 7}
# Link and batch fields a filing adds to a record's data (not columns of the record files).
EXTRA_FIELDS = ("major_cert_no", "paired_cert_no", "joint_unit_code", "joint_unit")
EXTRA_LABELS = {
    "major_cert_no": "主修学位证书编号",
    "paired_cert_no": "双学士另一学位证书编号",
    "joint_unit_code": "联合培养单位码",
    "joint_unit": "联合培养单位",
}
SOURCE_2024 = "教学服〔2024〕5号附件“数据报送”"
MAX_LISTED = 20

DEADLINES = Deadline.__table__
RECORDS = DegreeRecord.__table__


def choose_rule_set(payload: Mapping[str, Any]) -> str:
    conferred = parse_date(payload["conferral_date"])
    assert conferred is not None  # validated before
    return RULES_2024 if conferred >= PLATFORM_2024 else RULES_2020


def _rule_set(ctx: FireContext) -> str:
    return ctx.case.rule_set or choose_rule_set(ctx.payload)


def _normalise_data(payload: dict[str, Any]) -> None:
    """Rows are degree records: accept the file's Chinese column names as well as keys."""
    if isinstance(payload.get("data"), list):
        payload["data"] = [normalise(row) if isinstance(row, Mapping) else row for row in payload["data"]]


# -- the batch ----------------------------------------------------------------------------------------------
def _bachelor_pairs(rows: list[dict[str, str]]) -> dict[int, int]:
    """Index -> index of the other record of a double bachelor's degree (minor rows are not pairs)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(rows):
        if row.get("major_cert_no") or degree_level(row.get("degree_type", "")) != "bachelor":
            continue
        groups.setdefault((row.get("id_type", ""), row.get("id_number", "")), []).append(index)
    pairs: dict[int, int] = {}
    for (_, id_number), members in groups.items():
        if id_number and len(members) == 2:
            first, second = members
            pairs[first], pairs[second] = second, first
    return pairs


def batch_rows(payload: Mapping[str, Any]) -> list[dict[str, str]]:
    """The records the batch files: each row keyed by field, with the batch's joint training unit added and
    the two records of a double bachelor's degree naming each other."""
    rows = [normalise(row) for row in payload.get("data") or [] if isinstance(row, Mapping)]
    joint_code = str(payload.get("joint_unit_code") or "").strip()
    joint_name = str(payload.get("joint_unit") or "").strip()
    for row in rows:
        if joint_code:
            row["joint_unit_code"], row["joint_unit"] = joint_code, joint_name
        row.pop("paired_cert_no", None)
    for index, other in _bachelor_pairs(rows).items():
        rows[index]["paired_cert_no"] = rows[other].get("cert_no", "")
    return rows


def batch_problems(conn: Connection, payload: Mapping[str, Any], org_code: str) -> list[Problem]:
    """Every problem of the batch, rows numbered as in a file with one header line (the first record is row 2):
    the record and batch checks of the registry, the unit, the batch's conferral date, minor and double
    bachelor's links."""
    from cases.records import check_for_import  # the registry imports this module for its filing branch

    raw = payload.get("data") or []
    problems = [
        Problem("row_not_record", "data", "每条记录应为“字段: 值”形式的对象", index + 2)
        for index, row in enumerate(raw)
        if not isinstance(row, Mapping)
    ]
    if problems:
        return problems
    rows = batch_rows(payload)
    plain = [{k: v for k, v in row.items() if k in COLUMN} for row in rows]
    problems = check_for_import(conn, plain, org_code)
    conferral = parse_date(payload.get("conferral_date"))
    expected = f"{conferral:%Y%m%d}" if conferral else ""
    by_cert = {row.get("cert_no"): (index, row) for index, row in enumerate(rows) if row.get("cert_no")}
    pairs = _bachelor_pairs(rows)
    for index, row in enumerate(rows):
        line = index + 2

        def bad(code: str, field: str, message: str, line: int = line) -> None:
            label = COLUMN.get(field) or EXTRA_LABELS.get(field, field)
            problems.append(Problem(code, field, f"{label}：{message}", line))

        if expected and row.get("conferral_date") and row["conferral_date"] != expected:
            bad("batch_conferral_date", "conferral_date",
                f"应为本批次的获学位日期 {expected}（同一批次获学位日期一致），收到“{row['conferral_date']}”")  # fmt: skip
        major = row.get("major_cert_no", "")
        if major:
            if degree_level(row.get("degree_type", "")) != "bachelor":
                bad("minor_not_bachelor", "degree_type", "辅修学位应为学士学位")
            found = by_cert.get(major)
            if found is not None:
                other_id = found[1].get("id_number", "")
            else:
                filed = conn.execute(
                    select(RECORDS.c.id_number, RECORDS.c.status).where(RECORDS.c.cert_no == major)
                ).first()
                other_id = filed.id_number if filed is not None and filed.status == "filed" else None
            if other_id is None:
                bad("minor_major_missing", "major_cert_no",
                    f"{major} 既不在本批次中，也不是已备案的学位（辅修学士学位须先报送主修学位，{SOURCE_2024}(4)）")  # fmt: skip
            elif other_id != row.get("id_number", ""):
                bad(
                    "minor_other_person",
                    "major_cert_no",
                    f"{major} 的身份证件号码与本条记录不同（应为同一人的主修学位）",
                )
        if index in pairs and row.get("major_code"):
            bad("double_bachelor_major_code", "major_code",
                f"双学士学位不填学科/专业代码（{SOURCE_2024}(5)），收到“{row['major_code']}”")  # fmt: skip
    return sorted(problems, key=lambda p: (p.row or 0, p.field))


def _problem_list(problems: list[Problem], rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    listed = []
    for problem in problems:
        index = problem.row - 2 if problem.row else None
        cert = rows[index].get("cert_no", "") if index is not None and 0 <= index < len(rows) else ""
        listed.append(
            {**problem.to_dict(), "index": index + 1 if index is not None else None, "cert_no": cert}
        )
    return listed


def refuse_problems(problems: list[Problem], payload: Mapping[str, Any], what: str) -> None:
    """Raise InvalidPayload listing every problem per record (the first ones in the message, all in details)."""
    if not problems:
        return
    rows = batch_rows(payload)
    listed = _problem_list(problems, rows)
    lines = []
    for item in listed[:MAX_LISTED]:
        where = (
            f"第 {item['index']} 条" + (f"（{item['cert_no']}）" if item["cert_no"] else "")
            if item["index"]
            else "本批次"
        )
        lines.append(f"{where}{item['message']}")
    more = f"；另有 {len(listed) - MAX_LISTED} 处未列出" if len(listed) > MAX_LISTED else ""
    bad_rows = len({item["index"] for item in listed if item["index"]})
    first = listed[0]
    raise InvalidPayload(
        f"字段 data（{what}）：{bad_rows} 条记录、共 {len(listed)} 处错误，请更正后重新报送："
        + "；".join(lines)
        + more,
        field=f"data[{first['index'] - 1}].{first['field']}" if first["index"] else "data",
        rule=first["code"],
        problems=listed,
    )


def _records_are_valid(ctx: FireContext) -> None:
    refuse_problems(batch_problems(ctx.conn, ctx.payload, ctx.case.org_code), ctx.payload, "学位授予信息")


def _prevalidate(ctx: FireContext) -> None:
    if _rule_set(ctx) != RULES_2024:
        raise NotAllowedInState(
            "预校验适用于2024年6月1日及以后授予的学位（学位平台，教学服〔2024〕5号第11项）；本批次按2020年规则报送",
            rule="prevalidate_2024_only",
            field="conferral_date",
        )
    refuse_problems(batch_problems(ctx.conn, ctx.payload, ctx.case.org_code), ctx.payload, "预校验")


# -- limits -------------------------------------------------------------------------------------------------
def report_deadline(conn: Connection, case_id: int) -> Any:
    return conn.execute(
        select(DEADLINES)
        .where(DEADLINES.c.case_id == case_id, DEADLINES.c.name == "report")
        .order_by(DEADLINES.c.id.desc())
    ).first()


def is_late(conn: Connection, case: CaseView, now: datetime) -> date | None:
    """The last day of the reporting limit when it has passed without the report, else None."""
    row = report_deadline(conn, case.id)
    if row is None or row.status not in ("running", "breached"):
        return None
    return row.due_date if row.status == "breached" or to_utc(row.due_at) < to_utc(now) else None


def late_message(case: CaseView, due: date) -> str:
    return (
        f"字段 conferral_date（获学位日期）：本批次获学位日期为 {case.payload.get('conferral_date')}，"
        f"授位后7日内（截止 {due.isoformat()}）未正式报送；超过7日的视为补报（{SOURCE_2024}(1)），"
        "不能再正式报送，请转为补报（操作 to_supplement）"
    )


def formal_submission_problem(
    conn: Connection, case: CaseView, now: datetime, today: date
) -> InvalidPayload | None:
    """Why a 2024 batch may not be formally submitted now: before its conferral date, or more than 7 days after."""
    if case.rule_set != RULES_2024:
        return None
    conferral = parse_date(case.payload.get("conferral_date"))
    if conferral is not None and today < conferral:
        return InvalidPayload(
            f"字段 conferral_date（获学位日期）：“正式报送”不能早于获学位日期 {conferral.isoformat()}"
            f"（{SOURCE_2024}(3)）；今天是 {today.isoformat()}，在此之前只能预校验（prevalidate）",
            field="conferral_date",
            rule="formal_submission_before_conferral",
        )
    due = is_late(conn, case, now)
    if due is not None:
        return InvalidPayload(
            late_message(case, due), field="conferral_date", rule="filing_late_is_supplement"
        )
    return None


def _not_late_2024(ctx: FireContext) -> None:
    if ctx.case.rule_set == RULES_2024:
        due = is_late(ctx.conn, ctx.case, ctx.now)
        if due is not None:
            raise InvalidPayload(
                late_message(ctx.case, due), field="conferral_date", rule="filing_late_is_supplement"
            )


def _formal_submission(ctx: FireContext) -> None:
    problem = formal_submission_problem(ctx.conn, ctx.case, ctx.now, ctx.today)
    if problem is not None:
        raise problem


def _report_2020(ctx: FireContext) -> None:
    """The 2020 report carries the committee's resolution: its number here, its scan by `attachments.required`
    (the verify steps declare the `conferral_resolution` attachment under the 2020 rules; seed 002 art. 12(4))."""
    if ctx.case.rule_set != RULES_2020:
        return
    if not str(ctx.payload.get("resolution_no") or "").strip():
        raise InvalidPayload(
            "字段 resolution_no（学位评定委员会授予学位决议文号）：必须填写（2020年规则：报送须附授予学位决议）",
            field="resolution_no",
            rule="required_field",
        )


def _resolution_date_2020(ctx: FireContext) -> None:
    if choose_rule_set(ctx.payload) == RULES_2020 and not ctx.payload.get("resolution_date"):
        raise InvalidPayload(
            "字段 resolution_date（授予学位决议生效日期）：2024年6月1日前授予的学位须填写（报送期限自决议生效起30日）",
            field="resolution_date",
            rule="required_field",
        )


def _conferral_not_far_off(ctx: FireContext) -> None:
    conferral = parse_date(ctx.payload.get("conferral_date"))
    if conferral is not None and conferral > ctx.today + timedelta(days=366):
        raise InvalidPayload(
            f"字段 conferral_date（获学位日期）：{conferral.isoformat()} 在一年以后，请核对",
            field="conferral_date",
            rule="conferral_date_far_future",
        )


def _to_supplement(ctx: FireContext) -> None:
    if is_late(ctx.conn, ctx.case, ctx.now) is None:
        days = REPORT_DAYS.get(ctx.case.rule_set, 0)
        raise NotAllowedInState(
            f"本批次尚在报送期限（{days}日）内，应按期报送，不需转为补报",
            rule="filing_not_late",
            field="conferral_date",
        )


def _joint_unit_code(value: Any) -> str | None:
    return None if len(str(value)) == 5 and str(value).isdigit() else f"应为5位数字的单位代码，收到“{value}”"


def _joint_unit(ctx: FireContext) -> None:
    code = str(ctx.payload.get("joint_unit_code") or "")
    if code and code == ctx.case.org_code:
        raise InvalidPayload(
            f"字段 joint_unit_code（联合培养单位码）：应为另一单位的代码，收到本单位代码 {code}",
            field="joint_unit_code",
            rule="joint_unit_other",
        )
    if code and not str(ctx.payload.get("joint_unit") or "").strip():
        raise InvalidPayload(
            "字段 joint_unit（联合培养单位）：填写联合培养单位码时必须填写",
            field="joint_unit",
            rule="required_field",
        )


DATA = FieldRule(
    "data", "学位授予信息（本批次记录）", kind="list", hint="每条为一条学位授予信息", file_rows=True
)
BATCH_FIELDS = (
    DATA,
    FieldRule(
        "joint_unit_code", "联合培养单位码（联合学士学位，批量标注）", required=False, check=_joint_unit_code
    ),
    FieldRule("joint_unit", "联合培养单位", required=False),
)
# The 2020 report names the committee's resolution (`_report_2020` requires it under those rules).
VERIFY_FIELDS = (
    FieldRule("resolution_no", "学位评定委员会授予学位决议文号", required=False,
              hint="2024年6月1日前授予的学位须填写"),
)
VERIFY_GUARDS = (
    units.CHECKED_BY_MANAGING_DEPARTMENT,
    _report_2020,
    attachments.required,
    _formal_submission,
    _joint_unit,
    _records_are_valid,
)
# Under the 2020 rules the report goes with the scan of the committee's resolution (seed 002 art. 12(4)).
RESOLUTION_SCAN_2020 = (AttachmentNeed("conferral_resolution", rule_sets=(RULES_2020,)),)
STOP_REPORT = DeadlineEffect("stop", "report")
PROVINCE_REVIEW = DeadlineEffect(
    "start", "province_review", 30, rule_sets=(RULES_2020,), label="省级审核学位授予信息", owner=PROVINCE
)


def _is_2024(ctx: FireContext) -> bool:
    return ctx.case.rule_set == RULES_2024


DEFINITION = ProcessDefinition(
    name="filing",
    label="学位授予信息报送",
    states={
        "draft": "采集中（草稿）",
        "unit_check": "待管理部门校核",
        "province_review": "省级审核中",
        "recorded": "已备案入库",
        "supplemented": "已转补报",
        "cancelled": "已作废",
    },
    initial="draft",
    prepare_payload=_normalise_data,
    terminal=frozenset({"recorded", "supplemented", "cancelled"}),
    open_actors=(UNIT,),
    open_requires=(
        FieldRule("conferral_date", "获学位日期（本批次）", kind="date"),
        FieldRule("resolution_date", "授予学位决议生效日期", kind="date", required=False, past=True,
                  hint="2024年6月1日前授予的学位须填写"),
        FieldRule("batch_name", "批次名称", required=False),
    ),
    open_guards=(_resolution_date_2020, _conferral_not_far_off),
    open_deadlines=(
        DeadlineEffect("start", "report", 30, anchor="resolution_date", rule_sets=(RULES_2020,),
                       label="报送省级（决议生效后30日）", owner=UNIT),
        DeadlineEffect("start", "report", 7, anchor="conferral_date", rule_sets=(RULES_2024,),
                       label="正式报送（授位后7日）", owner=UNIT),
    ),
    rule_sets=(RULES_2020, RULES_2024),
    choose_rule_set=choose_rule_set,
    steps=(
        Step("prevalidate", "draft", "draft", (UNIT,), label="预校验（不报送）", collects=True,
             requires=BATCH_FIELDS, guards=(_joint_unit, _prevalidate)),
        Step("submit", "draft", "unit_check", (UNIT,), label="提交管理部门校核", collects=True,
             requires=BATCH_FIELDS, guards=(units.COLLECTED_BY_COLLEGE, _not_late_2024, _joint_unit, _records_are_valid)),
        Step("send_back", "unit_check", "draft", (UNIT,), label="退回修改", roles=VERIFY_ROLES, requires=(REASON,),
             sends_back=True),
        # A second person checks; under the 2024 rules, with the leader's code, the formal submission files
        # the batch at once; under the 2020 rules the report goes to the province.
        Step("verify", "unit_check", "recorded", (UNIT,), label="校核并正式报送（即时备案）", roles=VERIFY_ROLES,
             second_person=True, authorization=(RULES_2024,), requires=VERIFY_FIELDS, guards=VERIFY_GUARDS,
             when=_is_2024,
             attachments=RESOLUTION_SCAN_2020,
             deadlines=(STOP_REPORT,)),
        Step("verify", "unit_check", "province_review", (UNIT,), label="校核并报送省级", roles=VERIFY_ROLES,
             second_person=True, authorization=(RULES_2024,), requires=VERIFY_FIELDS, guards=VERIFY_GUARDS,
             attachments=RESOLUTION_SCAN_2020,
             deadlines=(STOP_REPORT, PROVINCE_REVIEW)),
        Step("return", "province_review", "draft", (PROVINCE,), label="退回修改后重新报送", requires=(REASON,), sends_back=True,
             deadlines=(DeadlineEffect("pause", "province_review"),)),
        withdraw("province_review", UNIT, deadlines=("province_review",)),
        cancel("draft", UNIT, deadlines=("report",)),
        cancel("unit_check", UNIT, deadlines=("report",)),
        Step("accept", "province_review", "recorded", (PROVINCE,), label="审核通过并备案",
             deadlines=(DeadlineEffect("stop", "province_review"),)),
        Step("to_supplement", "draft", "supplemented", (UNIT,), label="逾期转为补报",
             requires=(FieldRule("omission_reason", "未按期报送原因", from_note=True, hint="可用 --note 填写"),),
             guards=(_to_supplement,)),
        Step("to_supplement", "unit_check", "supplemented", (UNIT,), label="逾期转为补报",
             requires=(FieldRule("omission_reason", "未按期报送原因", from_note=True, hint="可用 --note 填写"),),
             guards=(_to_supplement,)),
    ),
)  # fmt: skip


def supplement_payload(case: CaseView) -> dict[str, Any]:
    """What a supplement case opened from a late batch starts with: Form 1 and the data rows of the batch."""
    rows = batch_rows(case.payload)
    form1 = [
        {"name": r.get("name", ""), "cert_no": r.get("cert_no", ""), "degree_type": r.get("degree_type", ""),
         "major": r.get("major", ""), "conferral_date": r.get("conferral_date", "")}
        for r in rows
    ]  # fmt: skip
    # The pair link is the filing's own: the supplement checks the rows as the record files have them.
    data = [{k: v for k, v in r.items() if k != "paired_cert_no"} for r in rows]
    payload: dict[str, Any] = {"filing_case_id": case.id, "records": form1, "data": data}
    for key in ("omission_reason", "resolution_no"):
        if case.payload.get(key):
            payload[key] = case.payload[key]
    return payload
