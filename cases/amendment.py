"""Amendment (修改) of filed data for degrees conferred before 2024-06-01 (seed 000 annex 2 §2; seed 002 art. 16-18).

Key fields (name, gender, ID number, degree type) need the State Council office's approval after the province's.
"""

from __future__ import annotations

from cases import attachments, registry_checks
from cases.common import REASON, STATE_LABELS, cancel, withdraw
from cases.record import (
    AMENDMENT_KEY_FIELDS,
    PLATFORM_2024,
    changes_rule,
    date_of,
    normalise_changes,
    own_certificate,
    touches,
)
from cases.vocabulary import CENTER, NATIONAL, PROVINCE, UNIT
from workflow import DeadlineEffect, FieldRule, FireContext, InvalidPayload, ProcessDefinition, Step


def is_key_change(ctx: FireContext) -> bool:
    return touches(ctx.payload.get("changes", []), AMENDMENT_KEY_FIELDS)


def before_platform(ctx: FireContext) -> None:
    conferred = date_of(ctx.payload, "conferral_date")
    if conferred is not None and conferred >= PLATFORM_2024:
        raise InvalidPayload(
            "字段 conferral_date（获学位日期）：2024年6月1日及以后授予的学位不再受理修改，请改为申请勘误（errata）",
            field="conferral_date",
            rule="amendment_before_2024",
        )


OPEN_FIELDS = (
    FieldRule("cert_no", "学位证书编号", required=False),
    FieldRule("name", "学位获得者姓名", required=False),
    FieldRule("conferral_date", "获学位日期", kind="date", required=False, past=True),
)
STOP_OPINION = (DeadlineEffect("stop", "province_opinion"),)

DEFINITION = ProcessDefinition(
    name="amendment",
    label="修改",
    states={
        **{k: STATE_LABELS[k] for k in ("draft", "applied", "rejected", "cancelled")},
        "national_review": "待国务院学位委员会办公室审批",
        "approved": "已批准（待更新）",
        "recorded": "已更新入库",
    },
    reference_field="cert_no",
    initial="draft",
    prepare_payload=normalise_changes,
    terminal=frozenset({"rejected", "recorded", "cancelled"}),
    open_actors=(UNIT,),
    open_requires=OPEN_FIELDS,
    open_guards=(before_platform, own_certificate, registry_checks.changes_against_registry),
    notice_of=registry_checks.notice_of,
    rule_sets=("2020",),
    choose_rule_set=lambda payload: "2020",
    steps=(
        Step(
            "submit", "draft", "applied", (UNIT,), label="提交修改申请", collects=True,
            requires=(
                FieldRule("name", "学位获得者姓名"),
                FieldRule("cert_no", "学位证书编号"),
                changes_rule(),
                FieldRule("proofs", "证明材料（身份证件、学位证书复印件等）", kind="list"),
            ),
            guards=(before_platform, registry_checks.changes_against_registry, attachments.required),
            # `proofs` describes what is enclosed (Form 2's column); at least one proof must be uploaded.
            attachments=("proof",),
            deadlines=(DeadlineEffect("start", "province_opinion", 30, label="省级提出修改意见", owner=PROVINCE),),
        ),
        withdraw("applied", UNIT, deadlines=("province_opinion",)),
        cancel("draft", UNIT),
        Step("approve", "applied", "national_review", (PROVINCE,), label="省级同意（关键字段报国务院学位办）",
             when=is_key_change, deadlines=STOP_OPINION),
        Step("approve", "applied", "approved", (PROVINCE,), label="省级同意", deadlines=STOP_OPINION),
        Step("reject", "applied", "rejected", (PROVINCE,), label="省级不同意", requires=(REASON,),
             deadlines=STOP_OPINION),
        Step("approve", "national_review", "approved", (NATIONAL,), label="国务院学位办批准"),
        Step("reject", "national_review", "rejected", (NATIONAL,), label="国务院学位办不批准", requires=(REASON,)),
        Step("record", "approved", "recorded", (NATIONAL, CENTER), label="更新学位授予信息",
             guards=(registry_checks.record_changes,)),
    ),
)  # fmt: skip
