"""Revocation (撤销学位 → 撤销备案): rule sets 2013 / 2020 / 2024 chosen by dates.

2013 (seed 000 annex 1 §5): report within 10 working days of the decision; the Degree Center verifies within
3 working days. 2020 (seed 002 art. 19): written report within 10 days. 2024 platform (seed 003 item 13):
revoke the filed record within 7 days of the decision. The case keeps the rule set it was opened with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cases import attachments, registry_checks
from cases.common import REASON, RETURN_REASON, cancel, withdraw
from cases.record import PLATFORM_2024, RULES_2020, id_number_problem, own_certificate
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


def choose_rule_set(payload: Mapping[str, Any]) -> str:
    conferred = parse_date(payload["conferral_date"])
    decided = parse_date(payload["decision_date"])
    assert conferred is not None and decided is not None  # validated before
    if conferred >= PLATFORM_2024:
        return "2024"
    if decided >= RULES_2020:
        return "2020"
    return "2013"


def _decision_after_conferral(ctx: FireContext) -> None:
    """A degree is revoked after it was conferred: the decision is not dated before the conferral."""
    conferred = parse_date(ctx.payload.get("conferral_date"))
    decided = parse_date(ctx.payload.get("decision_date"))
    if conferred and decided and decided < conferred:
        raise InvalidPayload(
            f"字段 decision_date（撤销决定日期）：不能早于获学位日期 {conferred.isoformat()}，"
            f"收到“{decided.isoformat()}”",
            field="decision_date",
            rule="decision_before_conferral",
        )


DECISION_DATE = FieldRule("decision_date", "撤销决定日期", kind="date", past=True)
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
        "cancelled": "已作废",
    },
    reference_field="cert_no",
    initial="draft",
    terminal=frozenset({"revoked", "cancelled"}),
    open_actors=(UNIT,),
    open_requires=(
        FieldRule("cert_no", "学位证书编号"),
        FieldRule("name", "姓名"),
        FieldRule("conferral_date", "获学位日期", kind="date", past=True),
        DECISION_DATE,
        FieldRule("id_number", "身份证件号码", required=False, check=id_number_problem),
    ),
    open_guards=(own_certificate, _decision_after_conferral, registry_checks.revocation_against_registry),
    notice_of=registry_checks.notice_of,
    open_deadlines=REPORT_DUE,
    rule_sets=("2013", "2020", "2024"),
    choose_rule_set=choose_rule_set,
    steps=(
        # Collection and verification by different staff (seed 002 art. 12(2)): the collector prepares the
        # report, a second person of the unit checks it and sends it; under the 2024 platform rules that
        # step also needs the supervising leader's one-time code (seed 003 item 7).
        Step("submit", "draft", "unit_check", (UNIT,), label="提交撤销报告（待校核）", collects=True,
             requires=(DECISION_DATE, FieldRule("resolution_no", "撤销决议文号"),
                       # Seed 002 art. 19: the report 说明撤销学位原因 (its own key: `reason` is a send-back's).
                       FieldRule("revocation_reason", "撤销学位原因", required=False, max_length=2000))),
        Step("send_back", "unit_check", "draft", (UNIT,), label="退回修改", roles=VERIFY_ROLES, sends_back=True, requires=(REASON,)),
        # The report encloses the committee's revocation resolution (seed 002 art. 19; seed 000 annex 2 §3);
        # Form 3 is part of the report itself.
        Step("verify", "unit_check", "reported", (UNIT,), label="校核并报送撤销报告", roles=VERIFY_ROLES,
             attachments=("revocation_resolution",), guards=(attachments.required,),
             second_person=True, authorization=("2024",), deadlines=(DeadlineEffect("stop", "report"),)),
        # Before the province confirms, the unit may take its report back, and the province may send it back
        # with its reasons (our design: the seeds have the province confirm; a report it cannot confirm goes
        # back to the unit for correction). Either way the report issued is void and a new round begins.
        withdraw("reported", UNIT),
        Step("return", "reported", "draft", (PROVINCE,), label="退回撤销报告（附理由）", requires=(RETURN_REASON,),
             sends_back=True, voids_letters=True),
        cancel("draft", UNIT, deadlines=("report",)),
        cancel("unit_check", UNIT, deadlines=("report",)),
        Step("confirm", "reported", "confirmed", (PROVINCE,), label="省级确认",
             deadlines=(DeadlineEffect("start", "center_verify", 3, working=True, rule_sets=("2013",),
                                       label="学位中心核实并删除", owner=CENTER),)),
        Step("revoke", "confirmed", "revoked", (NATIONAL, CENTER), label="撤销备案（从网上查询中删除）",
             guards=(registry_checks.still_revocable,),
             deadlines=(DeadlineEffect("stop", "center_verify"),)),
    ),
)  # fmt: skip
