"""Photo supplement (电子照片补报), seed 000 annex 2 §4, with Form 4 补报电子照片的学位获得者名单."""

from __future__ import annotations

import re

from cases import registry_checks
from cases.common import cancel, withdraw
from cases.record import cert_no_of_unit
from cases.vocabulary import PROVINCE, UNIT
from workflow import FieldRule, FireContext, ProcessDefinition, Step

# The ten values listed under Form 4 in seed 000.
CATEGORIES = (
    "学历教育博士",
    "同等学力博士",
    "专业学位博士",
    "学历教育硕士",
    "同等学力硕士",
    "专业学位硕士",
    "普通高校本科毕业生学士",
    "成人高校本科毕业生学士",
    "来华留学本科毕业生学士",
    "建筑学专业学位学士",
)


def _academic_year(value: str) -> str | None:
    match = re.fullmatch(r"(\d{4})\s*[-—–至]\s*(\d{4})", value)
    if not match or int(match[2]) != int(match[1]) + 1:
        return "格式应为“2025-2026”（相邻两年）"
    return None


def _cert_numbers(ctx: FireContext) -> None:
    for index, row in enumerate(ctx.payload["people"]):
        cert_no_of_unit(ctx.case.org_code, row["cert_no"], f"people[{index}].cert_no")


FORM4_CELL = (
    FieldRule("name", "姓名"),
    FieldRule("major", "专业"),
    FieldRule("cert_no", "证书号"),
    FieldRule("serial_no", "流水号"),
)

DEFINITION = ProcessDefinition(
    name="photo",
    label="照片补报",
    states={"draft": "草稿", "filed": "已报省级（待确认）", "recorded": "已办结", "cancelled": "已作废"},
    initial="draft",
    notice_of=registry_checks.notice_of,
    terminal=frozenset({"recorded", "cancelled"}),
    open_actors=(UNIT,),
    rule_sets=("2013",),
    choose_rule_set=lambda payload: "2013",
    steps=(
        Step("submit", "draft", "filed", (UNIT,), label="报送照片补报函及表4",
             requires=(
                 FieldRule("academic_year", "学年度", check=_academic_year),
                 FieldRule("category", "类别", kind="choice", choices=CATEGORIES),
                 FieldRule("people", "表4 补报电子照片的学位获得者名单", kind="list", items=FORM4_CELL),
             ),
             guards=(_cert_numbers, registry_checks.people_against_registry)),
        Step("acknowledge", "filed", "recorded", (PROVINCE,), label="省级确认收到",
             guards=(registry_checks.record_changes,)),
        withdraw("filed", UNIT),
        cancel("draft", UNIT),
    ),
)  # fmt: skip
