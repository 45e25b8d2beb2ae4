"""Demo organisations, users and cases, and the walk that moves the demo cases through their steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import select, update

from cases.accounts import hash_password
from cases.service import DegreeFlow
from db import Organisation, User, transaction
from workflow import WorkflowError

ORGS: list[tuple[str, str, str, str | None]] = [
    ("XWB", "国务院学位委员会办公室", "national", None),
    ("XWZX", "教育部学位与研究生教育发展中心", "center", None),
    ("11", "北京市学位委员会办公室", "province", None),
    ("45", "广西壮族自治区学位委员会办公室", "province", None),
    ("50", "重庆市学位委员会办公室", "province", None),
    ("10001", "北京大学", "unit", "11"),
    ("10593", "广西大学", "unit", "45"),
    ("10611", "重庆大学", "unit", "50"),
    ("10635", "西南大学", "unit", "50"),
]
# 机关代字 of each demo organisation (document numbers such as 渝学位办〔2026〕12号).
ORGAN_CODES = {"XWB": "学位办", "XWZX": "学位中心", "11": "京学位办", "45": "桂学位办", "50": "渝学位办",
               "10001": "北大学位", "10593": "西大学位", "10611": "重大学位", "10635": "西南大学位"}  # fmt: skip

USERS: list[tuple[str, str, str, str]] = [
    ("xwb01", "王建国", "officer", "XWB"),
    ("xwzx01", "刘瑀", "officer", "XWZX"),
    ("prov11", "赵敏", "reviewer", "11"),
    ("prov45", "韦丽华", "reviewer", "45"),
    ("prov50", "陈晓东", "reviewer", "50"),
    ("10001XW01", "李娜", "collector", "10001"),
    ("10001XW02", "张伟", "verifier", "10001"),
    ("10593XW01", "黄海燕", "collector", "10593"),
    ("10593XW02", "蒙志强", "verifier", "10593"),
    ("10611XW01", "周静", "collector", "10611"),
    ("10611XW02", "吴刚", "verifier", "10611"),
    ("10635XW01", "何莹", "collector", "10635"),
    ("10635XW02", "杨帆", "verifier", "10635"),
    ("10635XW03", "孙立", "lead", "10635"),
    ("10635XW04", "郑国华", "leader", "10635"),
    ("10635XW06", "钱敏", "checker", "10635"),
]
# Departments of 西南大学 for authentication tasks (seed 001): the lead department (level-1 account 孙立) and a
# verification department for graduate degrees (level-2 account 钱敏); the others go to the lead department.
DEPARTMENTS: list[tuple[str, str, str, dict[str, list[str]]]] = [
    ("10635", "学位评定委员会办公室", "lead", {}),
    ("10635", "研究生院", "verification", {"levels": ["硕士", "博士"]}),
]
USER_DEPARTMENTS = {"10635XW03": "学位评定委员会办公室", "10635XW06": "研究生院"}
# Every demo account signs in to the web application with this password (demo mode only).
DEMO_PASSWORD = "demo12345"

# Which demo user plays which part for a case of a given unit.
PARTS: dict[str, Callable[[str, str], str]] = {
    "collector": lambda unit, prov: f"{unit}XW01",
    "verifier": lambda unit, prov: f"{unit}XW02",
    "province": lambda unit, prov: f"prov{prov}",
    "national": lambda unit, prov: "xwb01",
    "center": lambda unit, prov: "xwzx01",
}


def _demo_cases(today: Any) -> list[tuple[str, str, str, dict[str, Any]]]:
    decided = (today - timedelta(days=2)).isoformat()
    return [
        ("supplement", "10593", "collector", {}),
        (
            "amendment",
            "10611",
            "collector",
            {"cert_no": "1061142019000123", "conferral_date": "2019-06-30", "name": "刘洋"},
        ),
        (
            "amendment",
            "10001",
            "collector",
            {"cert_no": "1000142018000456", "conferral_date": "2018-07-01", "name": "陈思远"},
        ),
        ("errata", "10635", "collector", {"cert_no": "1063542025000789", "conferral_date": "2025-06-20"}),
        (
            "revocation",
            "10635",
            "collector",
            {
                "cert_no": "1063542021000321",
                "name": "钱某某",
                "conferral_date": "2021-06-25",
                "decision_date": decided,
            },
        ),
        ("photo", "10593", "collector", {}),
        ("authentication", "10611", "center", {"applicant_name": "孙小明", "cert_no": "1061142020000555"}),
        # These two stay open, so the board shows work in progress and its deadlines.
        ("supplement", "10611", "collector", {}),
        ("authentication", "10635", "center", {"applicant_name": "周一鸣", "cert_no": "1063542022000888"}),
    ]


# Cases of this (type, unit) stop in this state: open work for the board.
HOLD = {("supplement", "10611"): "data_review", ("authentication", "10635"): "verification"}


@dataclass
class Move:
    part: str
    trigger: str
    payload: dict[str, Any] | Callable[[str], dict[str, Any]]
    note: str = ""
    attach: tuple[str, ...] = ()  # purposes of the files the same person uploads first (cases.attachments)

    def data(self, unit: str) -> dict[str, Any]:
        return self.payload(unit) if callable(self.payload) else self.payload


def degree_record(
    name: str, cert_no: str, degree_type: str, major: str, conferral: str, *, gender: str = "女",
    birth: str = "20010315", unit_name: str = "", sequence: int = 1,
) -> dict[str, str]:  # fmt: skip
    """A complete degree record that passes every check (demo and test data); the ID number is computed."""
    from stdnum.cn import ric

    parity = 1 if gender == "男" else 0
    body = f"500103{birth}{sequence % 50:02d}{parity + 2 * (sequence % 5)}"
    id_number = body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit
    level = "bachelor" if "学士" in degree_type else "postgraduate"
    return {
        "name": name, "gender": gender, "birth_date": birth, "ethnicity": "汉族", "id_type": "中华人民共和国居民身份证",
        "id_number": id_number, "country": "中国", "candidate_no": f"19{cert_no[-8:]}", "training_unit_code": cert_no[:5],
        "training_unit": unit_name, "major_code": "081401", "major": major, "unit_code": cert_no[:5], "unit_name": unit_name,
        "president": "校长", "committee_chair": "主席", "degree_type_code": "08", "degree_type": degree_type,
        "conferral_date": conferral, "cert_no": cert_no, "supervisors": "王强",
        "thesis_type": "毕业论文" if level == "bachelor" else "应用研究", "thesis_title": f"{major}若干问题研究",
        "graduation_date": conferral,
    }  # fmt: skip


_RECORDS = {
    "10593": [
        {"name": "覃秋月", "cert_no": "1059342023001101", "degree_type": "工学学士", "major": "土木工程"},
        {
            "name": "莫文杰",
            "cert_no": "1059342023001102",
            "degree_type": "理学学士",
            "major": "数学与应用数学",
        },
    ],
    "10611": [
        {"name": "邓家豪", "cert_no": "1061132024000210", "degree_type": "工学硕士", "major": "机械工程"}
    ],
}
# The data the unit enters for the supplement: complete records matching Form 1.
_DATA = {
    unit: [degree_record(r["name"], r["cert_no"], r["degree_type"], r["major"], f"{r['cert_no'][6:10]}0630",
                         unit_name={"10593": "广西大学", "10611": "重庆大学"}[unit], sequence=i)
           for i, r in enumerate(rows)]
    for unit, rows in _RECORDS.items()
}  # fmt: skip

# (type, state, how many times the case was in that state before) -> the next move.
SCRIPT: dict[tuple[str, str], list[Move]] = {
    ("supplement", "draft"): [
        Move("collector", "submit", lambda unit: {"omission_reason": "学位授予决议通过后漏报", "resolution_no": "学位〔2023〕15号",
                                                  "records": _RECORDS[unit]}, attach=("conferral_resolution",))
    ],
    ("supplement", "applied"): [Move("province", "approve", {})],
    ("supplement", "data_entry"): [
        # The collector tries first and is refused: collection and verification are different people.
        Move("collector", "submit_data", lambda unit: {"data": _DATA[unit]}),
        Move("verifier", "submit_data", lambda unit: {"data": _DATA[unit]}),
    ],
    ("supplement", "data_review"): [Move("province", "accept", {})],
    ("supplement", "province_filed"): [Move("center", "record", {})],
    ("amendment", "draft"): [
        Move("collector", "submit", {"field": "姓名", "old_value": "刘洋", "new_value": "刘阳",
                                     "reason": "录入时姓名错字", "proofs": ["身份证复印件", "学位证书复印件"]},
             attach=("proof", "proof"))
    ],
    ("amendment", "applied"): [Move("province", "approve", {})],
    ("amendment", "national_review"): [Move("national", "approve", {})],
    ("amendment", "approved"): [Move("center", "record", {})],
    ("errata", "draft"): [
        Move("collector", "submit", {"field": "major", "old_value": "计算机科学", "new_value": "计算机科学与技术",
                                     "reason": "专业名称不全"})
    ],
    ("errata", "self_check"): [Move("verifier", "confirm", {})],
    # The collector uploads the committee's revocation resolution with the report; the verifier's step needs it.
    ("revocation", "draft"): [Move("collector", "submit", {"resolution_no": "西南大学学位〔2026〕3号"},
                                   attach=("revocation_resolution",))],
    ("revocation", "unit_check"): [Move("verifier", "verify", {}, "已校核")],
    ("revocation", "reported"): [Move("province", "confirm", {})],
    ("revocation", "confirmed"): [Move("center", "revoke", {})],
    ("photo", "draft"): [
        Move("collector", "submit", {"academic_year": "2025-2026", "category": "普通高校本科毕业生学士",
                                     "people": [{"name": "韦小宝", "major": "汉语言文学", "cert_no": "1059342025000031",
                                                 "serial_no": "A0031"}]})
    ],
    # The unit takes its letter back once before the province acts (the first letter stays, marked 作废), then
    # sends it again under the next number.
    ("photo", "filed"): [
        Move("collector", "withdraw", {}, note="表4 流水号有误，撤回更正"),
        Move("province", "acknowledge", {}),
    ],
    ("authentication", "received"): [Move("center", "check", {})],
    ("authentication", "comparing"): [Move("center", "send_to_unit", {})],
    ("authentication", "verification"): [Move("verifier", "answer", {"result": "信息一致"})],
    ("authentication", "reviewing"): [Move("center", "issue_report", {})],
}  # fmt: skip

# The second amendment is returned with a rejection to show the other branch.
REJECT_SECOND_AMENDMENT = Move("province", "reject", {}, note="证明材料不全，请补充户籍证明后重新申请")


@cache
def _demo_hash() -> str:
    return hash_password(DEMO_PASSWORD)


def seed(flow: DegreeFlow, *, cases: bool = True) -> bool:
    """Create the demo organisations, users and (unless `cases=False`) cases once.

    Returns False if they already exist."""
    with flow.db.connect() as conn:
        org_table = Organisation.__table__
        if conn.execute(select(org_table.c.id).where(org_table.c.code == "XWB")).first():
            return False
    for code, name, kind, parent in ORGS:
        flow.add_org(code, name, kind, parent, ORGAN_CODES[code])
    for unit, name, kind, scope in DEPARTMENTS:
        flow.add_department(unit, name, kind, **scope)
    for username, name, role, org in USERS:
        flow.add_user(username, name, role, org, department=USER_DEPARTMENTS.get(username))
    with transaction(flow.db) as conn:  # one argon2 hash per process: seeding stays fast in tests
        conn.execute(
            update(User.__table__)
            .where(User.__table__.c.username.in_([u for u, _n, _r, _o in USERS]))
            .values(password_hash=_demo_hash())
        )
    if not cases:
        return True
    for case_type, org, part, payload in _demo_cases(flow.clock.today()):
        province = next(p for c, _n, _k, p in ORGS if c == org)
        flow.open_case(case_type, org, PARTS[part](org, province or ""), payload)
    return True


@dataclass
class WalkLine:
    case_id: int
    case_type: str
    user: str
    trigger: str
    ok: bool
    message: str


def walk(flow: DegreeFlow, on_line: Callable[[WalkLine], None] | None = None) -> list[WalkLine]:
    """Move every open demo case through its scripted steps, printing refusals as a user would see them."""
    lines: list[WalkLine] = []
    parents = {code: parent for code, _n, _k, parent in ORGS}
    for case in flow.list_cases():
        if case["closed_at"] is not None or case["org"] not in parents:
            continue
        visits: dict[str, int] = {}
        amendment_rank = [c["id"] for c in flow.list_cases(case_type="amendment")]
        for _ in range(20):
            current = flow.show(case["id"])
            if current["closed_at"] is not None:
                break
            state = current["state"]
            if HOLD.get((current["type"], case["org"])) == state:
                break
            moves = SCRIPT.get((current["type"], state))
            if not moves:
                break
            index = visits.get(state, 0)
            visits[state] = index + 1
            move = moves[min(index, len(moves) - 1)]
            if current["type"] == "amendment" and state == "applied" and case["id"] == amendment_rank[-1]:
                move = REJECT_SECOND_AMENDMENT
            user = PARTS[move.part](case["org"], parents[case["org"]] or "")
            for line in _attach(flow, case["id"], current["type"], user, move.attach):
                lines.append(line)
                if on_line:
                    on_line(line)
            try:
                result = flow.fire(case["id"], move.trigger, user, move.note, move.data(case["org"]))
                line = WalkLine(case["id"], current["type"], user, move.trigger, True,
                                f"{state} → {result.to_state}")  # fmt: skip
            except WorkflowError as error:
                line = WalkLine(
                    case["id"], current["type"], user, move.trigger, False, f"[{error.code}] {error.message}"
                )
            lines.append(line)
            if on_line:
                on_line(line)
    return lines


# The demo's scanned files: a minimal PDF per purpose (a real unit uploads its scans).
DEMO_FILES = {"conferral_resolution": ["学位评定委员会授予学位决议（扫描件）.pdf"],
              "revocation_resolution": ["学位评定委员会撤销学位决议（扫描件）.pdf"],
              "proof": ["身份证复印件.pdf", "学位证书复印件.pdf"]}  # fmt: skip


def _attach(flow: DegreeFlow, case_id: int, case_type: str, user: str, purposes: tuple[str, ...]) -> list[WalkLine]:
    """Upload the move's files once (a case walked again keeps what it has)."""
    if not purposes or flow.attachments_dir is None:
        return []
    held = [a["purpose"] for a in flow.attachments(case_id)]
    lines = []
    for index, purpose in enumerate(purposes):
        if held.count(purpose) > purposes[:index].count(purpose):
            continue
        names = DEMO_FILES[purpose]
        name = names[purposes[:index].count(purpose) % len(names)]
        content = f"%PDF-1.4\n% degreeflow demo: {name}\n".encode()
        try:
            saved = flow.add_attachment(case_id, user, name, content, 1 << 20, purpose=purpose)
            lines.append(WalkLine(case_id, case_type, user, "attach", True,
                                  f"已上传附件 {saved['filename']}（{saved['purpose_label']}）"))  # fmt: skip
        except WorkflowError as error:
            lines.append(WalkLine(case_id, case_type, user, "attach", False, f"[{error.code}] {error.message}"))
    return lines
