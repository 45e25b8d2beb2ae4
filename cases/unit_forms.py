"""The registration forms of seed 001 annexes 2 and 3 (学位中心〔2020〕18号) from the account data: the lead
department's form (level-1 account users, the verification departments) and one form per verification department
(level-2 account users, the records it may verify, as the annex's letters A-L). Printed, signed and sealed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from cases.letters import chinese_date, environment, stylesheet

LEVEL_LETTERS = {"学士": "B", "硕士": "C", "博士": "D"}
YEAR_LETTERS = {"往届": "F", "应届": "G"}
FORM_LETTERS = {"普通": "J", "成人/自考": "K", "来华留学": "L"}


def _choice(values: Sequence[str], letters: Mapping[str, str], everything: str) -> str:
    if not values:
        return f"{everything}. 全部"
    return "、".join(f"{letters[v]}. {v}" for v in values)


def context(
    unit_code: str, unit_name: str, departments: Sequence[Mapping[str, Any]], today: date
) -> dict[str, Any]:
    lead = next((d for d in departments if d["kind"] == "lead"), None)
    verification = [
        {
            **d,
            "level_choice": _choice(d["levels"], LEVEL_LETTERS, "A"),
            "year_choice": _choice(d["years"], YEAR_LETTERS, "E"),
            "form_choice": _choice(d["forms"], FORM_LETTERS, "I"),
        }  # fmt: skip
        for d in departments
        if d["kind"] == "verification"
    ]
    return {
        "unit_code": unit_code,
        "unit_name": unit_name,
        "lead": lead,
        "verification": verification,
        "verification_names": [d["name"] for d in verification][:6],
        "date_text": chinese_date(today),
    }


def render_html(ctx: Mapping[str, Any], *, inline_css: bool = False) -> str:
    return (
        environment()
        .get_template("registration_forms.html")
        .render(**ctx, css=stylesheet() if inline_css else "")
    )
