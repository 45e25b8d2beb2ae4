"""Authentication (学位认证), seed 001 annex 1 (学位中心〔2020〕18号).

After `check` the engine calls one comparison function; a match gives the electronic report at once. Until the
registry provides records to compare against, nothing matches and every request waits in `comparing` for the
Center's `send_to_unit`. The Center's clock (8 working days, cumulative) pauses while the unit verifies
(10 working days); the whole request is promised within 18 working days.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Connection

from cases import registry_checks
from cases.common import REASON
from cases.record import own_certificate
from cases.units import CHECKER_ROLE, LEAD_ROLE, complex_notice, reassign_task, route_task
from cases.vocabulary import CENTER, UNIT
from workflow import DeadlineEffect, FieldRule, FireContext, ProcessDefinition, Step

# A comparator answers True/False, or (match, the fields that differ) to show on the verification form.
Comparator = Callable[[Connection, Mapping[str, Any]], bool | tuple[bool, list[str]]]


def _no_records(conn: Connection, request: Mapping[str, Any]) -> bool:
    return False


_comparator: Comparator = _no_records


def set_comparator(comparator: Comparator | None) -> Comparator:
    """Install the function that compares a request with the record database; returns the previous one."""
    global _comparator
    previous = _comparator
    _comparator = comparator or _no_records
    return previous


def matches_record(ctx: FireContext) -> bool:
    result = _comparator(ctx.conn, ctx.payload)
    if isinstance(result, tuple):
        match, differing = result
        # Kept with the case (the payload is saved with the step) for the unit's verification form.
        ctx.payload["comparison"] = list(differing)
        return bool(match)
    return bool(result)


RESULTS = ("信息一致", "信息有误已更正", "查无此人")
UNIT_ANSWER = DeadlineEffect("start", "unit_answer", 10, working=True, label="单位核查反馈", owner=UNIT)

DEFINITION = ProcessDefinition(
    name="authentication",
    label="认证",
    states={
        "received": "已受理",
        "comparing": "比对中",
        "verification": "单位核查中",
        "reviewing": "学位中心复核",
        "reported": "已出具认证报告",
        "refused": "不予认证",
    },
    reference_field="cert_no",
    initial="received",
    terminal=frozenset({"reported", "refused"}),
    open_actors=(CENTER,),
    open_requires=(
        FieldRule("applicant_name", "申请人姓名"),
        FieldRule("cert_no", "学位证书编号"),
        FieldRule("id_number", "身份证件号码", required=False),
        FieldRule("conferral_date", "获学位日期", kind="date", required=False, past=True),
    ),
    open_guards=(own_certificate, registry_checks.authentication_against_registry),
    notice_of=registry_checks.notice_of,
    open_deadlines=(
        DeadlineEffect("start", "center_total", 8, working=True, label="学位中心办理（累计）", owner=CENTER),
        DeadlineEffect("start", "total", 18, working=True, label="认证总时限", owner=CENTER),
    ),
    rule_sets=("2020",),
    choose_rule_set=lambda payload: "2020",
    steps=(
        Step("check", "received", "comparing", (CENTER,), label="资格与信息审查"),
        Step("refuse", "received", "refused", (CENTER,), label="不予受理", requires=(REASON,)),
        Step("match", "comparing", "reported", (CENTER,), label="比对一致，出具电子认证报告",
             automatic=True, when=matches_record),
        Step("send_to_unit", "comparing", "verification", (CENTER,), label="发送《学位信息核查反馈表》",
             guards=(route_task,), deadlines=(DeadlineEffect("pause", "center_total"), UNIT_ANSWER)),
        # Inside the unit (seed 001 art. 9, 12): the lead department reassigns; a complex task is announced
        # before the 10 working days end (the limit is kept, the case flagged for the Center).
        Step("reassign", "verification", "verification", (UNIT,), label="重新分配核查部门",
             roles=(LEAD_ROLE, "admin"), guards=(reassign_task,),
             requires=(FieldRule("department", "核查部门"),)),
        Step("notify_complex", "verification", "verification", (UNIT,), label="告知学位中心：情况复杂",
             roles=(CHECKER_ROLE, LEAD_ROLE, "admin"), guards=(complex_notice,), requires=(REASON,)),
        Step("answer", "verification", "reviewing", (UNIT,), label="反馈核查结果",
             requires=(FieldRule("result", "核查结果", kind="choice", choices=RESULTS),),
             deadlines=(DeadlineEffect("stop", "unit_answer"), DeadlineEffect("resume", "center_total"))),
        Step("issue_report", "reviewing", "reported", (CENTER,), label="出具电子认证报告"),
        Step("dispute", "reported", "verification", (CENTER,), label="申请人提出异议，再次核查",
             requires=(REASON,), guards=(route_task,), deadlines=(UNIT_ANSWER,)),
    ),
)  # fmt: skip
