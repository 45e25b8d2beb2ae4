"""Spot check of a finished authentication report (认证报告抽查), seed 001 art. 15.

The Degree Center samples finished reports each month (`DegreeFlow.spot_check`, a configurable share, drawn
reproducibly from the month) and reviews each in a small case: `confirm` (the report stands) or `correct` (the
result was wrong: the corrected result and the reason are recorded and a corrected electronic report is issued,
numbered like every document). Where the review needs the unit's help, `ask_unit` sends it to the unit, which
answers from its archives (`answer`) within 10 working days, as for a verification task. Our design: the case
belongs to the unit that granted the degree, like the authentication case it reviews (`authentication_case`).
"""

from __future__ import annotations

from sqlalchemy import select

from cases.authentication import RESULTS
from cases.common import REASON
from cases.vocabulary import CENTER, UNIT
from db.models import Case
from workflow import DeadlineEffect, FieldRule, FireContext, InvalidPayload, ProcessDefinition, Step

CASES = Case.__table__


def _reviews_a_finished_report(ctx: FireContext) -> None:
    """The case under review is an authentication case of the same unit with its report issued."""
    reviewed = ctx.payload["authentication_case"]
    row = ctx.conn.execute(
        select(CASES.c.type, CASES.c.state, CASES.c.org_id, CASES.c.reference).where(CASES.c.id == reviewed)
    ).first()
    if row is None or row.type != "authentication" or row.org_id != ctx.case.org_id:
        raise InvalidPayload(
            f"字段 authentication_case（被抽查的认证案件）：本单位没有认证案件 #{reviewed}",
            field="authentication_case",
            rule="authentication_case_exists",
        )
    if row.state != "reported":
        raise InvalidPayload(
            f"字段 authentication_case（被抽查的认证案件）：#{reviewed} 尚未出具认证报告，不能抽查",
            field="authentication_case",
            rule="report_issued",
        )
    if row.reference and row.reference != ctx.payload.get("cert_no"):
        raise InvalidPayload(
            f"字段 cert_no（学位证书编号）：应与认证案件 #{reviewed} 的证书编号 {row.reference} 一致",
            field="cert_no",
            rule="same_certificate",
        )


UNIT_HELP = DeadlineEffect("start", "unit_help", 10, working=True, label="单位配合复核", owner=UNIT)

DEFINITION = ProcessDefinition(
    name="spot_check",
    label="认证报告抽查",
    states={
        "reviewing": "抽查复核中",
        "unit_review": "请单位配合核查",
        "upheld": "复核无误",
        "corrected": "报告已纠正",
    },
    reference_field="cert_no",
    initial="reviewing",
    terminal=frozenset({"upheld", "corrected"}),
    open_actors=(CENTER,),
    open_requires=(
        FieldRule("authentication_case", "被抽查的认证案件", kind="int"),
        FieldRule("cert_no", "学位证书编号"),
        FieldRule("applicant_name", "申请人姓名"),
        FieldRule("id_number", "身份证件号码", required=False),
        FieldRule("conferral_date", "获学位日期", kind="date", required=False, past=True),
        FieldRule("original_result", "原认证结论", required=False),
    ),
    open_guards=(_reviews_a_finished_report,),
    rule_sets=("2020",),
    choose_rule_set=lambda payload: "2020",
    steps=(
        Step("confirm", "reviewing", "upheld", (CENTER,), label="复核无误"),
        Step("ask_unit", "reviewing", "unit_review", (CENTER,), label="请学位授予单位配合核查",
             requires=(REASON,), deadlines=(UNIT_HELP,)),
        Step("answer", "unit_review", "reviewing", (UNIT,), label="反馈核查情况",
             requires=(FieldRule("unit_finding", "单位核查情况", from_note=True, hint="可用 --note 填写"),),
             deadlines=(DeadlineEffect("stop", "unit_help"),)),
        Step("correct", "reviewing", "corrected", (CENTER,), label="纠正认证报告",
             requires=(FieldRule("result", "更正后的核查结论", kind="choice", choices=RESULTS), REASON)),
    ),
)  # fmt: skip
