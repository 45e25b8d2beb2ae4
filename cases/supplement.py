"""Supplement (补报): late filing of degrees that were never reported (seed 000 annex 2 §1; seed 002 art. 12(6))."""

from __future__ import annotations

from cases import attachments
from cases.common import REASON, STATE_LABELS, cancel, withdraw
from cases.degree_record import normalise
from cases.record import cert_no_of_unit, check_cert_year
from cases.records import check_for_import
from cases.vocabulary import CENTER, NATIONAL, PROVINCE, UNIT, VERIFY_ROLES
from workflow import (
    DeadlineEffect,
    FieldRule,
    FireContext,
    InvalidPayload,
    ProcessDefinition,
    Step,
    parse_date,
)

FORM1_ROW = (
    FieldRule("name", "姓名"),
    FieldRule("cert_no", "学位证书编号"),
    FieldRule("degree_type", "学位类别", required=False),
    FieldRule("major", "专业", required=False),
    FieldRule("conferral_date", "获学位日期", kind="date", required=False, past=True),
)


def _form1_cert_numbers(ctx: FireContext) -> None:
    for index, row in enumerate(ctx.payload["records"]):
        cert_no_of_unit(ctx.case.org_code, row["cert_no"], f"records[{index}].cert_no")
        check_cert_year(row["cert_no"], parse_date(row.get("conferral_date")), f"records[{index}].cert_no")


def _normalise_data(payload: dict) -> None:  # type: ignore[type-arg]
    """Supplement data rows are degree records: accept the file's Chinese column names as well as keys."""
    if isinstance(payload.get("data"), list):
        payload["data"] = [normalise(row) if isinstance(row, dict) else row for row in payload["data"]]


def _data_are_valid_records(ctx: FireContext) -> None:
    """Each supplement row is a complete degree record that passes every check (DOMAIN.md §5)."""
    problems = check_for_import(ctx.conn, ctx.payload["data"], ctx.case.org_code)
    if problems:
        first = problems[0]
        where = f"第 {first.row - 1} 条 " if first.row else ""
        raise InvalidPayload(
            f"字段 data（补报数据）：{where}{first.message}（共 {len(problems)} 处错误）",
            field=f"data[{first.row - 2}].{first.field}" if first.row else "data",
            rule=first.code,
        )


# Form 1's columns, in its order; each is compared with the entered data where Form 1 fills it.
FORM1_COLUMNS = tuple((rule.name, rule.label) for rule in FORM1_ROW)
# Payload key the comparison sets: the Form 1 columns compared for every row (what the filing letter may call
# 一致). Never accepted from a user (no step declares it).
COMPARED_KEY = "form1_compared"


def _form1_value(field: str, value: object) -> str:
    text = str(value or "").strip()
    return text.replace("-", "") if field == "conferral_date" else text


def _data_matches_form1(ctx: FireContext) -> None:
    """The entered supplement data equal Form 1, row by row and column by column (seed 000 annex 2 §1 step 3:
    补报数据必须与书面的“申请补报学位获得者名单”一致). Every difference is listed, per row."""
    listed = {str(r["cert_no"]): r for r in ctx.payload.get("records", [])}
    entered: dict[str, dict] = {}  # type: ignore[type-arg]
    for row in ctx.payload["data"]:
        if str(row["cert_no"]) in entered:
            raise InvalidPayload(
                f"字段 data（补报数据）：学位证书编号 {row['cert_no']} 出现了两次", field="data", rule="form1_match"
            )
        entered[str(row["cert_no"])] = row
    problems = []
    missing = [listed[c] for c in listed if c not in entered]
    extra = [entered[c] for c in entered if c not in listed]
    if missing:
        problems.append("缺少 " + "、".join(f"{r['name']}（{r['cert_no']}）" for r in missing))
    if extra:
        problems.append("多出 " + "、".join(f"{r['name']}（{r['cert_no']}）" for r in extra))
    compared = {name for name, _label in FORM1_COLUMNS}
    for index, (cert_no, form_row) in enumerate(listed.items()):
        data_row = entered.get(cert_no)
        if data_row is None:
            continue
        for name, label in FORM1_COLUMNS:
            expected = _form1_value(name, form_row.get(name))
            if not expected:
                compared.discard(name)  # not on Form 1 for this row: not compared, never claimed equal
                continue
            found = _form1_value(name, data_row.get(name))
            if found != expected:
                problems.append(f"第 {index + 1} 行 {form_row['name']}（{cert_no}）的{label}：表1为“{expected}”，补报数据为“{found}”")
    if problems:
        raise InvalidPayload(
            "字段 data（补报数据）：须与表1《申请补报学位获得者名单》逐项一致，" + "；".join(problems),
            field="data",
            rule="form1_match",
            differences=problems,
        )
    ctx.payload[COMPARED_KEY] = [label for name, label in FORM1_COLUMNS if name in compared]


DEFINITION = ProcessDefinition(
    name="supplement",
    label="补报",
    states={
        **{k: STATE_LABELS[k] for k in ("draft", "applied", "rejected", "cancelled")},
        "data_entry": "补报数据录入",
        "data_review": "补报数据审核中",
        "province_filed": "省级已备案",
        "recorded": "已入库",
    },
    initial="draft",
    prepare_payload=_normalise_data,
    terminal=frozenset({"rejected", "recorded", "cancelled"}),
    open_actors=(UNIT,),
    rule_sets=("2020",),
    choose_rule_set=lambda payload: "2020",
    steps=(
        Step(
            "submit", "draft", "applied", (UNIT,), label="提交补报申请", collects=True,
            requires=(
                FieldRule("omission_reason", "未报原因"),
                FieldRule("resolution_no", "学位评定委员会授予决议文号"),
                FieldRule("records", "表1 申请补报学位获得者名单", kind="list", items=FORM1_ROW),
            ),
            guards=(_form1_cert_numbers, attachments.required),
            attachments=("conferral_resolution",),  # enclosed with the application (seed 000 annex 2 §1)
            deadlines=(DeadlineEffect("start", "province_decision", 30, label="省级审核补报申请", owner=PROVINCE),),
        ),
        withdraw("applied", UNIT, deadlines=("province_decision",)),
        cancel("draft", UNIT),
        Step("approve", "applied", "data_entry", (PROVINCE,), label="批准补报申请",
             deadlines=(DeadlineEffect("stop", "province_decision"),)),
        Step("reject", "applied", "rejected", (PROVINCE,), label="驳回补报申请", requires=(REASON,)),
        Step(
            "submit_data", "data_entry", "data_review", (UNIT,), label="校核并提交补报数据",
            roles=VERIFY_ROLES, second_person=True,
            requires=(FieldRule("data", "补报数据", kind="list", items=FORM1_ROW[:2], file_rows=True),),
            guards=(_data_matches_form1, _data_are_valid_records),
            deadlines=(DeadlineEffect("start", "province_data_review", 30, label="省级审核补报数据", owner=PROVINCE),),
        ),
        Step("return", "data_review", "data_entry", (PROVINCE,), label="退回修改", requires=(REASON,), sends_back=True,
             deadlines=(DeadlineEffect("pause", "province_data_review"),)),
        Step("accept", "data_review", "province_filed", (PROVINCE,), label="审核通过并备案",
             deadlines=(DeadlineEffect("stop", "province_data_review"),)),
        Step("record", "province_filed", "recorded", (NATIONAL, CENTER), label="更新全国学位授予信息库"),
    ),
)  # fmt: skip
