"""Errata (勘误) for degrees conferred on or after 2024-06-01 (seed 003 item 12).

Non-key fields: the unit confirms itself (collector and verifier are different people). Key fields: written
application to the province, which decides within 5 working days.
"""

from __future__ import annotations

from cases import registry_checks
from cases.common import REASON, cancel, withdraw
from cases.record import (
    ERRATA_KEY_FIELDS,
    PLATFORM_2024,
    changes_rule,
    date_of,
    normalise_changes,
    own_certificate,
    touches,
)
from cases.vocabulary import PROVINCE, UNIT, VERIFY_ROLES
from workflow import DeadlineEffect, FieldRule, FireContext, InvalidPayload, ProcessDefinition, Step


def is_key_change(ctx: FireContext) -> bool:
    return touches(ctx.payload.get("changes", []), ERRATA_KEY_FIELDS)


def on_platform(ctx: FireContext) -> None:
    conferred = date_of(ctx.payload, "conferral_date")
    if conferred is not None and conferred < PLATFORM_2024:
        raise InvalidPayload(
            "字段 conferral_date（获学位日期）：勘误适用于2024年6月1日及以后授予的学位，更早的请申请修改（amendment）",
            field="conferral_date",
            rule="errata_after_2024",
        )


SUBMIT_REQUIRES = (
    changes_rule("勘误内容（字段、原值、新值、原因）"),
    FieldRule("proofs", "证明材料", kind="list", required=False),
)

DEFINITION = ProcessDefinition(
    name="errata",
    label="勘误",
    states={
        "draft": "草稿",
        "self_check": "单位自行审核",
        "province_review": "省级审核（关键信息）",
        "recorded": "已勘误",
        "rejected": "已驳回",
        "cancelled": "已作废",
    },
    reference_field="cert_no",
    initial="draft",
    prepare_payload=normalise_changes,
    terminal=frozenset({"recorded", "rejected", "cancelled"}),
    open_actors=(UNIT,),
    open_requires=(
        FieldRule("cert_no", "学位证书编号", required=False),
        FieldRule("conferral_date", "获学位日期", kind="date", required=False, past=True),
    ),
    open_guards=(own_certificate, on_platform, registry_checks.changes_against_registry),
    notice_of=registry_checks.notice_of,
    rule_sets=("2024",),
    choose_rule_set=lambda payload: "2024",
    steps=(
        Step("submit", "draft", "province_review", (UNIT,), label="提交关键信息勘误申请", collects=True,
             requires=SUBMIT_REQUIRES, guards=(on_platform, registry_checks.changes_against_registry), when=is_key_change,
             deadlines=(DeadlineEffect("start", "province_decision", 5, working=True, label="省级审核勘误", owner=PROVINCE),)),
        Step("submit", "draft", "self_check", (UNIT,), label="提交勘误（单位自行审核）", collects=True,
             requires=SUBMIT_REQUIRES, guards=(on_platform, registry_checks.changes_against_registry)),
        Step("confirm", "self_check", "recorded", (UNIT,), label="校核确认勘误",
             roles=VERIFY_ROLES, second_person=True, guards=(registry_checks.record_changes,)),
        withdraw("province_review", UNIT, deadlines=("province_decision",)),
        cancel("draft", UNIT),
        cancel("self_check", UNIT),
        Step("approve", "province_review", "recorded", (PROVINCE,), label="省级同意勘误",
             guards=(registry_checks.record_changes,), deadlines=(DeadlineEffect("stop", "province_decision"),)),
        Step("reject", "province_review", "rejected", (PROVINCE,), label="省级不同意勘误", requires=(REASON,)),
    ),
)  # fmt: skip
