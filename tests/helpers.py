"""Valid payloads per step, and a snapshot of everything a step may change."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cases.service import DegreeFlow
from db import Case, CaseEvent, Deadline
from degreeflow.demo import degree_record
from workflow import load_case

SUPPLEMENT_DATA = [
    degree_record("覃秋月", "1059342023001101", "工学学士", "土木工程", "20230630", unit_name="广西大学", sequence=1),
    degree_record("莫文杰", "1059342023001102", "理学学士", "数学与应用数学", "20230630", gender="男",
                  unit_name="广西大学", sequence=2),
]  # fmt: skip
# A 2024 batch of 西南大学 conferred on 2026-11-18 (the tests' clock starts on 2026-11-20).
FILING_DATA = [
    degree_record("何静", "1063542026000001", "工学学士", "土木工程", "20261118", unit_name="西南大学", sequence=1),
    degree_record("罗成", "1063542026000002", "理学学士", "数学与应用数学", "20261118", gender="男",
                  unit_name="西南大学", sequence=2),
]  # fmt: skip
SUPPLEMENT_ROWS = [
    {"name": "覃秋月", "cert_no": "1059342023001101"},
    {"name": "莫文杰", "cert_no": "1059342023001102"},
]
PHOTO = {
    "academic_year": "2025-2026",
    "category": "普通高校本科毕业生学士",
    "people": [
        {"name": "韦小宝", "major": "汉语言文学", "cert_no": "1059342025000031", "serial_no": "A0031"}
    ],
}
NAME_CHANGE = {
    "field": "name",
    "old_value": "刘洋",
    "new_value": "刘阳",
    "reason": "错字",
    "proofs": ["身份证复印件"],
}
MAJOR_CHANGE = {"field": "major", "old_value": "计算机", "new_value": "计算机科学与技术", "reason": "不全",
                "proofs": ["学位证书复印件"]}  # fmt: skip

# Unit used for each type in these tests, and the data needed to open a case there.
UNIT = {
    "supplement": "10593",
    "amendment": "10611",
    "errata": "10635",
    "revocation": "10635",
    "photo": "10593",
    "authentication": "10611",
    "filing": "10635",
    "spot_check": "10611",
}
OPEN_DATA: dict[str, dict[str, Any]] = {
    "supplement": {},
    "amendment": {"cert_no": "1061142019000123", "conferral_date": "2019-06-30", "name": "刘洋"},
    "errata": {"cert_no": "1063542025000789", "conferral_date": "2025-06-20"},
    "revocation": {
        "cert_no": "1063542021000321",
        "name": "钱某某",
        "conferral_date": "2021-06-25",
        "decision_date": "2026-11-18",
    },
    "photo": {},
    "authentication": {"applicant_name": "孙小明", "cert_no": "1061142020000555"},
    "filing": {"conferral_date": "2026-11-18", "batch_name": "2026年11月学士学位"},
    # Opens only for a finished authentication case (tests/test_units.py opens real ones).
    "spot_check": {"authentication_case": 1, "cert_no": "1061142020000555", "applicant_name": "孙小明"},
}
# Who opens each type.
OPENER = {t: f"{UNIT[t]}XW01" for t in UNIT} | {"authentication": "xwzx01", "spot_check": "xwzx01"}

STEP_DATA: dict[tuple[str, str], dict[str, Any]] = {
    ("supplement", "submit"): {
        "omission_reason": "漏报",
        "resolution_no": "学位〔2023〕15号",
        "records": SUPPLEMENT_ROWS,
    },
    ("supplement", "submit_data"): {"data": SUPPLEMENT_DATA},
    ("supplement", "reject"): {"reason": "材料不全"},
    ("supplement", "return"): {"reason": "数据有误"},
    ("amendment", "submit"): NAME_CHANGE,
    ("amendment", "reject"): {"reason": "证明不足"},
    ("errata", "submit"): MAJOR_CHANGE,
    ("errata", "reject"): {"reason": "不同意"},
    ("revocation", "submit"): {"resolution_no": "西南大学学位〔2026〕3号"},
    ("photo", "submit"): PHOTO,
    ("authentication", "refuse"): {"reason": "非学位证书"},
    ("authentication", "answer"): {"result": "信息一致"},
    ("authentication", "dispute"): {"reason": "申请人有异议"},
    ("filing", "prevalidate"): {"data": FILING_DATA},
    ("filing", "submit"): {"data": FILING_DATA},
    ("filing", "send_back"): {"reason": "数据有误"},
    ("filing", "return"): {"reason": "数据有误"},
    ("filing", "to_supplement"): {"omission_reason": "逾期"},
    ("spot_check", "ask_unit"): {"reason": "请调阅档案"},
    ("spot_check", "answer"): {"unit_finding": "档案记载与报告一致"},
    ("spot_check", "correct"): {"result": "信息有误已更正", "reason": "档案记载的姓名与报告不一致"},
}


def users_for(unit: str) -> dict[str, str]:
    province = {"10593": "45", "10611": "50", "10635": "50", "10001": "11"}[unit]
    return {
        "collector": f"{unit}XW01",
        "verifier": f"{unit}XW02",
        "province": f"prov{province}",
        "national": "xwb01",
        "center": "xwzx01",
    }


def snapshot(flow: DegreeFlow, case_id: int) -> tuple[Any, ...]:
    """Everything a transition may write for a case."""
    with flow.db.connect() as conn:
        case = conn.execute(select(Case.__table__).where(Case.__table__.c.id == case_id)).first()
        events = conn.execute(
            select(CaseEvent.__table__).where(CaseEvent.__table__.c.case_id == case_id).order_by("seq")
        ).all()
        deadlines = conn.execute(
            select(Deadline.__table__).where(Deadline.__table__.c.case_id == case_id).order_by("id")
        ).all()
    return (tuple(case) if case else None, [tuple(e) for e in events], [tuple(d) for d in deadlines])


def unique_cert_no(cert_no: str) -> str:
    """`cert_no` with a sequence (its last 6 digits) no case of this run used: one open case of a type per
    certificate is the rule, and tests open many."""
    global _SEQUENCE
    _SEQUENCE += 1
    return f"{cert_no[:10]}{_SEQUENCE % 1_000_000:06d}"


_SEQUENCE = 500_000


def open_case(flow: DegreeFlow, case_type: str, **extra: Any) -> int:
    """Open a case of `case_type` with OPEN_DATA (and `extra`); when a case of the type is open for OPEN_DATA's
    certificate already, another number is taken (`unique_cert_no`): one open case per certificate is the rule."""
    data = {**OPEN_DATA[case_type], **extra}
    if "cert_no" in OPEN_DATA[case_type] and "cert_no" not in extra and case_type != "spot_check":
        cases = Case.__table__
        with flow.db.connect() as conn:
            taken = conn.execute(
                select(cases.c.id).where(cases.c.type == case_type, cases.c.reference == data["cert_no"],
                                         cases.c.closed_at.is_(None))  # fmt: skip
            ).first()
        if taken is not None:
            data["cert_no"] = unique_cert_no(data["cert_no"])
    return flow.open_case(case_type, UNIT[case_type], OPENER[case_type], data).case_id


def fire(flow: DegreeFlow, case_id: int, case_type: str, trigger: str, part: str, **extra: Any):  # type: ignore[no-untyped-def]
    data = {**STEP_DATA.get((case_type, trigger), {}), **extra}
    attach_required(flow, case_id, trigger)
    return flow.fire(case_id, trigger, users_for(UNIT[case_type])[part], payload=data)


# The smallest files each accepted type's check lets through (cases.attachments.ALLOWED).
PDF = b"%PDF-1.4\n% test attachment\n"
ATTACHMENT_NAMES = {"revocation_resolution": "撤销学位决议.pdf", "conferral_resolution": "授予学位决议.pdf",
                    "proof": "身份证件复印件.pdf"}  # fmt: skip


@functools.cache
def _shared_attachments_dir() -> Path:
    """One folder per test process for flows set up without one (files are stored by their hash)."""
    return Path(tempfile.mkdtemp(prefix="degreeflow-test-attachments-"))


def attach_required(flow: DegreeFlow, case_id: int, trigger: str, as_user: str | int | None = None) -> list[str]:
    """Upload (as the case's opener, unless `as_user`) the attachments the step `trigger` needs from the case's
    state that the case does not hold yet, as a unit would before pressing the button; their purposes."""
    with flow.db.connect() as conn:
        case = load_case(conn, case_id)
    candidates = flow.engine.definition(case.type).candidates(case.state, trigger)
    needed = candidates[0].attachments_needed(case.rule_set) if candidates else ()
    have = {a["purpose"] for a in flow.attachments(case_id)} if needed else set()
    missing = [purpose for purpose in needed if purpose not in have]
    if missing and flow.attachments_dir is None:
        flow.attachments_dir = _shared_attachments_dir()
    for purpose in missing:
        flow.add_attachment(case_id, as_user or case.opened_by, ATTACHMENT_NAMES[purpose], PDF + purpose.encode(),
                            1 << 20, purpose=purpose)  # fmt: skip
    return missing


def leader_code(flow: DegreeFlow, case_id: int, trigger: str, as_user: str, leader: str = "10635XW04") -> str:
    """Ask for the supervising leader's one-time code and read it from the leader's inbox, as the leader would."""
    import re

    flow.request_authorization(case_id, trigger, as_user)
    latest = next(m for m in flow.inbox(leader) if m["kind"] == "authorization" and m["case_id"] == case_id)
    found = re.search(r"授权码 (\d{6})", latest["body"])
    assert found, latest
    return found[1]
