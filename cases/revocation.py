"""Revocation (撤销学位 → 撤销备案): rule sets 2013 / 2020 / 2024 chosen by dates.

2013 (seed 000 annex 1 §5): report within 10 working days of the decision; the Degree Center verifies within
3 working days. 2020 (seed 002 art. 19): written report within 10 days. 2024 platform (seed 003 item 13):
revoke the filed record within 7 days of the decision. The case keeps the rule set it was opened with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cases.common import REASON
from cases.record import PLATFORM_2024, RULES_2020, cert_no_of_unit, id_number_problem
from cases.vocabulary import CENTER, NATIONAL, PROVINCE, UNIT, VERIFY_ROLES
from workflow import DeadlineEffect, FieldRule, FireContext, ProcessDefinition, Step, parse_date


def choose_rule_set(payload: Mapping[str, Any]) -> str:
    conferred = parse_date(payload["conferral_date"])
    decided = parse_date(payload["decision_date"])
    assert conferred is not None and decided is not None  # validated before
    if conferred >= PLATFORM_2024:
        return "2024"
    if decided >= RULES_2020:
        return "2020"
    return "2013"


def _cert_no(ctx: FireContext) -> None:
    cert_no_of_unit(ctx.case.org_code, ctx.payload["cert_no"], "cert_no")


DECISION_DATE = FieldRule("decision_date", "撤销决定日期", kind="date")
REPORT_DUE = (
    DeadlineEffect(
        "start",
        "report",
        10,
        working=True,
        anchor="decision_date",
        rule_sets=("2013",),
        label="报告撤销学位",
        owner=UNIT,
    ),
    DeadlineEffect(
        "start", "report", 10, anchor="decision_date", rule_sets=("2020",), label="报告撤销学位", owner=UNIT
    ),
    DeadlineEffect(
        "start", "report", 7, anchor="decision_date", rule_sets=("2024",), label="撤销学位备案", owner=UNIT
    ),
)

DEFINITION = ProcessDefinition(
    name="revocation",
    label="撤销",
    states={
        "draft": "草稿",
        "unit_check": "待本单位校核",
        "reported": "已报告（待省级确认）",
        "confirmed": "省级已确认",
        "revoked": "已撤销备案",
    },
    reference_field="cert_no",
    initial="draft",
    terminal=frozenset({"revoked"}),
    open_actors=(UNIT,),
    open_requires=(
        FieldRule("cert_no", "学位证书编号"),
        FieldRule("name", "姓名"),
        FieldRule("conferral_date", "获学位日期", kind="date"),
        DECISION_DATE,
        FieldRule("id_number", "身份证件号码", required=False, check=id_number_problem),
    ),
    open_guards=(_cert_no,),
    open_deadlines=REPORT_DUE,
    rule_sets=("2013", "2020", "2024"),
    choose_rule_set=choose_rule_set,
    steps=(
        # Collection and verification by different staff (seed 002 art. 12(2)): the collector prepares the
        # report, a second person of the unit checks it and sends it; under the 2024 platform rules that
        # step also needs the supervising leader's one-time code (seed 003 item 7).
        Step("submit", "draft", "unit_check", (UNIT,), label="提交撤销报告（待校核）",
             requires=(DECISION_DATE, FieldRule("resolution_no", "撤销决议文号"))),
        Step("send_back", "unit_check", "draft", (UNIT,), label="退回修改", roles=VERIFY_ROLES, requires=(REASON,)),
        Step("verify", "unit_check", "reported", (UNIT,), label="校核并报送撤销报告", roles=VERIFY_ROLES,
             second_person=True, authorization=("2024",), deadlines=(DeadlineEffect("stop", "report"),)),
        Step("confirm", "reported", "confirmed", (PROVINCE,), label="省级确认",
             deadlines=(DeadlineEffect("start", "center_verify", 3, working=True, rule_sets=("2013",),
                                       label="学位中心核实并删除", owner=CENTER),)),
        Step("revoke", "confirmed", "revoked", (NATIONAL, CENTER), label="撤销备案（从网上查询中删除）",
             deadlines=(DeadlineEffect("stop", "center_verify"),)),
    ),
)  # fmt: skip
