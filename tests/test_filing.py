"""Filing a batch of newly conferred degrees (学位授予信息报送): the 2020 and 2024 rule sets through every path.

2020 (seed 002 art. 12-13): collected, checked by a second person, reported with the resolution scan within
30 days of the resolution, reviewed by the province within 30 days, returned and resubmitted, filed.
2024 (seed 003 items 7, 9-11, annex "数据报送"): pre-validation, formal submission not before the conferral date
and within 7 days of it with the supervising leader's code, a late batch as a supplement; minor, double and
joint bachelor's degrees. Real SQLite file and PostgreSQL.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from cases.registry import DEFINITIONS
from db import AuthorizationCode, DegreeRecord
from db.clock import SHANGHAI
from degreeflow.demo import degree_record
from tests.helpers import attach_required, leader_code, snapshot
from workflow import Forbidden, InvalidPayload, NotAllowedInState, SeparationOfDuties

UNIT, COLLECTOR, VERIFIER, PROVINCE, LEADER = "10635", "10635XW01", "10635XW02", "prov50", "10635XW04"
SCAN = b"%PDF-1.4\n% resolution scan\n"


def _at(clock, text: str) -> None:
    clock.set(datetime.fromisoformat(text).replace(tzinfo=SHANGHAI))


def row(name: str, cert_no: str, conferral: str, degree: str = "工学学士", major: str = "土木工程",
        **change: str) -> dict[str, str]:  # fmt: skip
    sequence = int(cert_no[-2:])
    record = degree_record(name, cert_no, degree, major, conferral, unit_name="西南大学", sequence=sequence,
                           gender="男" if sequence % 2 else "女")  # fmt: skip
    return {**record, **change}


def batch_2020() -> list[dict[str, str]]:
    return [row("张伟", "1063542024000011", "20240530"), row("李娜", "1063542024000012", "20240530")]


def batch_2024(conferral: str = "20261118", start: int = 21) -> list[dict[str, str]]:
    year = conferral[:4]
    return [
        row("王芳", f"10635420{year[2:]}0000{start}", conferral),
        row("刘洋", f"10635420{year[2:]}0000{start + 1}", conferral, "理学学士", "数学与应用数学"),
    ]


def open_filing(flow, conferral: str, opener: str = COLLECTOR, **extra) -> int:  # type: ignore[no-untyped-def]
    return flow.open_case("filing", UNIT, opener, {"conferral_date": conferral, **extra}).case_id


def deadline(flow, case_id: int, name: str) -> dict:  # type: ignore[no-untyped-def]
    return [d for d in flow.show(case_id)["deadlines"] if d["name"] == name][-1]


def registry_rows(flow, certs) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    table = DegreeRecord.__table__
    with flow.db.connect() as conn:
        rows = conn.execute(select(table).where(table.c.cert_no.in_(list(certs)))).all()
    return {r.cert_no: {"status": r.status, "publishable": r.publishable, "data": r.data} for r in rows}


def assert_filed_and_queryable(flow, case_id: int, rows) -> None:  # type: ignore[no-untyped-def]
    stored = registry_rows(flow, [r["cert_no"] for r in rows])
    assert sorted(stored) == sorted(r["cert_no"] for r in rows)
    assert all(s["status"] == "filed" and s["publishable"] for s in stored.values())
    for r in rows:
        answer = flow.query_certificate(r["cert_no"], r["name"], member=True)
        assert answer["status"] == "found", answer
        assert answer["record"]["学位证书编号"] == r["cert_no"]
        history = flow.record_history(r["cert_no"])
        assert [(c["action"], c["case_id"]) for c in history["changes"]] == [("filed", case_id)]


@pytest.fixture
def scans(flow, tmp_path):  # type: ignore[no-untyped-def]
    flow.attachments_dir = tmp_path / "attachments"
    return flow


# -- the definition ---------------------------------------------------------------------------------------------
def test_definition_names_and_rule_sets():
    defn = DEFINITIONS["filing"]
    assert defn.label == "学位授予信息报送"
    manual = {(s.source, s.trigger, s.dest) for s in defn.steps if not s.automatic}
    assert manual == {
        ("draft", "prevalidate", "draft"), ("draft", "submit", "unit_check"), ("unit_check", "send_back", "draft"),
        ("unit_check", "verify", "recorded"), ("unit_check", "verify", "province_review"),
        ("province_review", "return", "draft"), ("province_review", "accept", "recorded"),
        ("draft", "to_supplement", "supplemented"), ("unit_check", "to_supplement", "supplemented"),
        # Undone on the record (tests/test_undo.py).
        ("province_review", "withdraw", "draft"), ("draft", "cancel", "cancelled"), ("unit_check", "cancel", "cancelled"),
    }  # fmt: skip
    assert defn.terminal == {"recorded", "supplemented", "cancelled"}
    assert defn.choose_rule_set({"conferral_date": "2024-05-31"}) == "2020"
    assert defn.choose_rule_set({"conferral_date": "2024-06-01"}) == "2024"


# -- 2020 rules ---------------------------------------------------------------------------------------------------
def test_2020_batch_on_time_checked_by_a_second_person_reviewed_and_filed(scans, clock):
    flow = scans
    _at(clock, "2024-06-03T09:00")
    case_id = open_filing(flow, "2024-05-30", resolution_date="2024-05-30", batch_name="2024届（5月）")
    shown = flow.show(case_id)
    assert shown["rule_set"] == "2020"
    # 30 days from the day after 2024-05-30: Saturday 2024-06-29 moves to Monday 2024-07-01.
    report = deadline(flow, case_id, "report")
    assert (report["due_date"], report["owner"], report["status"]) == ("2024-07-01", "unit", "running")
    rows = batch_2020()
    assert flow.fire(case_id, "submit", COLLECTOR, payload={"data": rows}).to_state == "unit_check"
    before = snapshot(flow, case_id)
    with pytest.raises(Forbidden) as collector_role:  # a collector may not check
        flow.fire(case_id, "verify", COLLECTOR)
    assert collector_role.value.rule == "actor_role"
    with pytest.raises(InvalidPayload) as no_number:
        flow.fire(case_id, "verify", VERIFIER)
    assert no_number.value.field == "resolution_no"
    with pytest.raises(InvalidPayload) as no_scan:
        flow.fire(case_id, "verify", VERIFIER, payload={"resolution_no": "西南大学学位〔2024〕7号"})
    assert no_scan.value.rule == "attachment_required" and "授予学位的决议" in no_scan.value.message
    assert "扫描件" in no_scan.value.message and no_scan.value.field == "attachments"
    assert snapshot(flow, case_id) == before
    flow.add_attachment(case_id, COLLECTOR, "授予学位决议.pdf", SCAN, 1 << 20)  # not said what it is: not the scan
    with pytest.raises(InvalidPayload) as unnamed:
        flow.fire(case_id, "verify", VERIFIER, payload={"resolution_no": "西南大学学位〔2024〕7号"})
    assert unnamed.value.rule == "attachment_required"
    flow.add_attachment(case_id, COLLECTOR, "授予学位决议.pdf", SCAN, 1 << 20, purpose="conferral_resolution")
    _at(clock, "2024-06-20T10:00")
    result = flow.fire(case_id, "verify", VERIFIER, payload={"resolution_no": "西南大学学位〔2024〕7号"})
    assert result.to_state == "province_review"
    assert deadline(flow, case_id, "report")["status"] == "met"
    review = deadline(flow, case_id, "province_review")
    assert (review["due_date"], review["owner"], review["status"]) == ("2024-07-22", "province", "running")
    assert registry_rows(flow, [r["cert_no"] for r in rows]) == {}  # not filed before the province accepts
    assert "accept" in [s["trigger"] for s in flow.show(case_id, flow.actor(PROVINCE))["allowed"]]
    assert flow.fire(case_id, "accept", PROVINCE).to_state == "recorded"
    shown = flow.show(case_id)
    assert shown["closed_at"] is not None and deadline(flow, case_id, "province_review")["status"] == "met"
    assert [(h["trigger"], h["actor"]) for h in shown["history"]][:3] == [("open", "何莹"), ("submit", "何莹"),
                                                                        ("verify", "杨帆")]  # fmt: skip
    assert [h["trigger"] for h in shown["history"][3:]] == ["accept"]
    assert_filed_and_queryable(flow, case_id, rows)
    assert flow.verify_audit(case_id).ok


def test_2020_the_collector_may_not_check_their_own_batch(flow, clock):
    _at(clock, "2024-06-03T09:00")
    case_id = open_filing(flow, "2024-05-30", opener=VERIFIER, resolution_date="2024-05-30")
    flow.fire(case_id, "submit", VERIFIER, payload={"data": batch_2020()})
    before = snapshot(flow, case_id)
    with pytest.raises(SeparationOfDuties) as refused:
        flow.fire(case_id, "verify", VERIFIER, payload={"resolution_no": "西南大学学位〔2024〕7号"})
    assert refused.value.rule == "collector_may_not_verify"
    assert "采集与校核须由不同工作人员负责" in refused.value.message
    assert snapshot(flow, case_id) == before
    # The checker may send the batch back with a reason; the collector corrects and submits again.
    flow.add_user("10635XW05", "钱七", "verifier", UNIT)
    assert flow.fire(case_id, "send_back", "10635XW05", note="第2条专业名称不全").to_state == "draft"
    assert flow.fire(case_id, "submit", VERIFIER).to_state == "unit_check"


def test_2020_the_resolution_date_is_needed(flow, clock):
    _at(clock, "2024-06-03T09:00")
    with pytest.raises(InvalidPayload) as refused:
        open_filing(flow, "2024-05-30")
    assert refused.value.field == "resolution_date" and "30日" in refused.value.message


def test_2020_batch_returned_paused_and_resubmitted(scans, clock):
    flow = scans
    _at(clock, "2024-06-03T09:00")
    case_id = open_filing(flow, "2024-05-30", resolution_date="2024-05-30")
    flow.add_attachment(case_id, COLLECTOR, "决议.pdf", SCAN, 1 << 20, purpose="conferral_resolution")
    rows = batch_2020()
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": rows})
    flow.fire(case_id, "verify", VERIFIER, payload={"resolution_no": "西南大学学位〔2024〕7号"})
    assert deadline(flow, case_id, "province_review")["due_date"] == "2024-07-03"
    _at(clock, "2024-06-13T09:00")
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as no_reason:
        flow.fire(case_id, "return", PROVINCE)
    assert no_reason.value.field == "reason"
    assert snapshot(flow, case_id) == before
    assert flow.fire(case_id, "return", PROVINCE, note="第1条专业名称与学籍不一致").to_state == "draft"
    paused = deadline(flow, case_id, "province_review")
    assert paused["status"] == "paused" and paused["remaining_working_days"] > 0
    assert flow.show(case_id)["history"][-1]["payload"] == {"reason": "第1条专业名称与学籍不一致"}
    # Corrected by the collector, checked again, reported again: a fresh 30-day review.
    corrected = [rows[0] | {"major": "土木工程（桥梁）"}, rows[1]]
    _at(clock, "2024-06-17T09:00")
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": corrected})
    assert flow.fire(case_id, "verify", VERIFIER).to_state == "province_review"
    deadlines = [d for d in flow.show(case_id)["deadlines"] if d["name"] == "province_review"]
    assert [d["status"] for d in deadlines] == ["superseded", "running"]
    assert deadlines[-1]["due_date"] == "2024-07-17"
    flow.fire(case_id, "accept", PROVINCE)
    assert_filed_and_queryable(flow, case_id, corrected)
    assert (
        registry_rows(flow, [corrected[0]["cert_no"]])[corrected[0]["cert_no"]]["data"]["major"]
        == "土木工程（桥梁）"
    )


def test_2020_late_report_is_breached_and_escalated_then_still_reported(scans, clock):
    flow = scans
    _at(clock, "2024-06-03T09:00")
    case_id = open_filing(flow, "2024-05-30", resolution_date="2024-05-30")
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": batch_2020()})
    _at(clock, "2024-07-01T23:59")
    assert sorted(f["kind"] for f in flow.sweep()[0].findings) == ["due_today", "reminder"]
    _at(clock, "2024-07-02T08:00")
    report = flow.sweep()[0]
    assert [f["kind"] for f in report.findings] == ["breach"] and report.escalations == 1
    assert flow.sweep()[0].findings == []  # once
    assert [m["kind"] for m in flow.inbox(PROVINCE)] == ["escalation"]  # the unit's supervising level
    assert "breach" in [m["kind"] for m in flow.inbox(VERIFIER)]
    assert deadline(flow, case_id, "report")["status"] == "breached"
    # The late report still reaches the province, marked late for good.
    flow.add_attachment(case_id, COLLECTOR, "决议.pdf", SCAN, 1 << 20, purpose="conferral_resolution")
    flow.fire(case_id, "verify", VERIFIER, payload={"resolution_no": "西南大学学位〔2024〕7号"})
    assert deadline(flow, case_id, "report")["status"] == "breached"
    assert flow.fire(case_id, "accept", PROVINCE).to_state == "recorded"


def test_2020_batch_is_refused_record_by_record(flow, clock):
    _at(clock, "2024-06-03T09:00")
    case_id = open_filing(flow, "2024-05-30", resolution_date="2024-05-30")
    rows = batch_2020()
    rows[1] = rows[1] | {"id_number": "110105194912310021"}
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "submit", COLLECTOR, payload={"data": rows})
    problems = refused.value.details["problems"]
    assert {(p["index"], p["cert_no"], p["code"]) for p in problems} >= {(2, "1063542024000012", "id_number")}
    assert "第 2 条（1063542024000012）" in refused.value.message
    assert refused.value.field == "data[1].id_number"


# -- 2024 rules ---------------------------------------------------------------------------------------------------
def test_2024_prevalidation_lists_every_problem_per_record_before_the_committee_meets(flow, clock):
    case_id = open_filing(flow, "2026-11-25")  # the committee meets on 25 November; today is the 20th
    assert flow.show(case_id)["rule_set"] == "2024"
    rows = batch_2024("20261125")
    bad = [
        rows[0],
        rows[1]
        | {"id_number": rows[1]["id_number"][:-1] + ("0" if rows[1]["id_number"][-1] != "0" else "1")},
        row("赵敏", "1063542026000023", "20261126"),  # another conferral date in the batch
    ]
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "prevalidate", COLLECTOR, payload={"data": bad})
    problems = refused.value.details["problems"]
    by_index = {(p["index"], p["code"]) for p in problems}
    assert (2, "id_number") in by_index
    assert (3, "batch_conferral_date") in by_index
    assert all(p["index"] != 1 for p in problems)  # the good record is not listed
    assert {p["cert_no"] for p in problems if p["index"]} == {rows[1]["cert_no"], "1063542026000023"}
    assert "第 2 条" in refused.value.message and "第 3 条" in refused.value.message
    assert all({"row", "field", "column", "code", "message"} <= set(p) for p in problems)
    assert snapshot(flow, case_id) == before
    result = flow.fire(case_id, "prevalidate", COLLECTOR, payload={"data": rows})
    assert (result.from_state, result.to_state) == ("draft", "draft")
    assert flow.show(case_id)["payload"]["data"][0]["cert_no"] == rows[0]["cert_no"]
    assert registry_rows(flow, [r["cert_no"] for r in rows]) == {}  # nothing filed by a pre-validation


def test_prevalidation_is_a_2024_platform_step(flow, clock):
    _at(clock, "2024-06-03T09:00")
    case_id = open_filing(flow, "2024-05-30", resolution_date="2024-05-30")
    with pytest.raises(NotAllowedInState) as refused:
        flow.fire(case_id, "prevalidate", COLLECTOR, payload={"data": batch_2020()})
    assert refused.value.rule == "prevalidate_2024_only"


def test_2024_formal_submission_is_refused_before_the_conferral_date(flow, clock):
    case_id = open_filing(flow, "2026-11-25")
    rows = batch_2024("20261125")
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": rows})  # the unit's own check may come first
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as early:
        flow.request_authorization(case_id, "verify", VERIFIER)
    assert early.value.rule == "formal_submission_before_conferral"
    assert early.value.field == "conferral_date"
    assert "“正式报送”不能早于获学位日期 2026-11-25" in early.value.message
    assert not [m for m in flow.inbox(LEADER) if m["kind"] == "authorization"]  # no code was sent
    with pytest.raises(InvalidPayload) as without_code:
        flow.fire(case_id, "verify", VERIFIER)
    assert without_code.value.rule == "authorization_code_required"
    assert snapshot(flow, case_id) == before
    _at(clock, "2026-11-25T08:30")  # the conferral date itself
    code = leader_code(flow, case_id, "verify", VERIFIER)
    assert flow.fire(case_id, "verify", VERIFIER, payload={"authorization_code": code}).to_state == "recorded"
    assert_filed_and_queryable(flow, case_id, rows)


def test_2024_within_seven_days_with_the_leaders_code_files_at_once(flow, clock):
    case_id = open_filing(flow, "2026-11-18")
    report = deadline(flow, case_id, "report")
    assert (report["due_date"], report["owner"]) == ("2026-11-25", "unit")  # 7 days after the conferral date
    rows = batch_2024()
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": rows})
    before = snapshot(flow, case_id)
    # Wrong code.
    code = leader_code(flow, case_id, "verify", VERIFIER)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "verify", VERIFIER, payload={"authorization_code": wrong})
    assert refused.value.rule == "authorization_code_wrong"
    # Expired code (valid 10 minutes).
    clock.set(clock.now() + timedelta(minutes=11))
    with pytest.raises(InvalidPayload) as expired:
        flow.fire(case_id, "verify", VERIFIER, payload={"authorization_code": code})
    assert expired.value.rule == "authorization_code_expired"
    assert snapshot(flow, case_id) == before
    assert registry_rows(flow, [r["cert_no"] for r in rows]) == {}
    # A fresh code from the leader's inbox files the batch at once.
    code = leader_code(flow, case_id, "verify", VERIFIER)
    result = flow.fire(case_id, "verify", VERIFIER, payload={"authorization_code": code})
    assert result.to_state == "recorded"
    shown = flow.show(case_id)
    assert shown["closed_at"] is not None and deadline(flow, case_id, "report")["status"] == "met"
    assert code not in str(shown["payload"]) and all("authorization_code" not in (h["payload"] or {})
                                                     for h in shown["history"])  # fmt: skip
    assert_filed_and_queryable(flow, case_id, rows)
    with flow.db.connect() as conn:
        used = conn.execute(select(AuthorizationCode.__table__.c.used_at)).scalars().all()
    assert sum(1 for u in used if u is not None) == 1
    # The same certificate numbers cannot be filed twice.
    again = open_filing(flow, "2026-11-18")
    with pytest.raises(InvalidPayload) as twice:
        flow.fire(again, "submit", COLLECTOR, payload={"data": rows})
    assert {p["code"] for p in twice.value.details["problems"]} == {"cert_no_filed"}


def test_2024_late_batch_is_refused_and_goes_as_a_supplement(flow, clock):
    case_id = open_filing(flow, "2026-11-18")
    rows = batch_2024()
    with pytest.raises(NotAllowedInState) as not_late:  # in time: no supplement
        flow.filing_to_supplement(case_id, COLLECTOR, omission_reason="逾期")
    assert not_late.value.rule == "filing_not_late"
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": rows})
    _at(clock, "2026-11-25T23:55")  # the last day: a code is still given
    code = leader_code(flow, case_id, "verify", VERIFIER)
    _at(clock, "2026-11-26T00:01")  # one minute late, the code still valid
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as late:
        flow.fire(case_id, "verify", VERIFIER, payload={"authorization_code": code})
    assert late.value.rule == "filing_late_is_supplement" and late.value.field == "conferral_date"
    assert "超过7日的视为补报" in late.value.message and "to_supplement" in late.value.message
    assert snapshot(flow, case_id) == before
    with flow.db.connect() as conn:  # the refused step consumed nothing
        assert conn.execute(select(AuthorizationCode.__table__.c.used_at)).scalars().all() == [None]
    with pytest.raises(InvalidPayload) as no_code:
        flow.request_authorization(case_id, "verify", VERIFIER)
    assert no_code.value.rule == "filing_late_is_supplement"
    opened = flow.filing_to_supplement(case_id, COLLECTOR, omission_reason="学位评定委员会决议送达延误")
    assert flow.show(case_id)["state"] == "supplemented"
    assert deadline(flow, case_id, "report")["status"] == "breached"
    supplement = flow.show(opened["supplement"])
    assert (supplement["type"], supplement["state"]) == ("supplement", "draft")
    assert supplement["payload"]["filing_case_id"] == case_id
    assert [r["cert_no"] for r in supplement["payload"]["records"]] == [r["cert_no"] for r in rows]
    # The supplement path, to the registry.
    sid = opened["supplement"]
    attach_required(flow, sid, "submit")
    flow.fire(sid, "submit", COLLECTOR, payload={"resolution_no": "西南大学学位〔2026〕9号"})
    flow.fire(sid, "approve", PROVINCE)
    flow.fire(sid, "submit_data", VERIFIER)
    flow.fire(sid, "accept", PROVINCE)
    assert flow.fire(sid, "record", "xwzx01").to_state == "recorded"
    assert_filed_and_queryable(flow, sid, rows)


def test_2024_batch_opened_after_its_seven_days_is_late_at_once(flow):
    case_id = open_filing(flow, "2026-11-10")  # due 2026-11-17; today is the 20th
    assert deadline(flow, case_id, "report")["status"] == "breached"
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as late:
        flow.fire(case_id, "submit", COLLECTOR, payload={"data": batch_2024("20261110")})
    assert late.value.rule == "filing_late_is_supplement" and "2026-11-17" in late.value.message
    assert snapshot(flow, case_id) == before
    # The step itself (as the CLI, web pages and API fire it) opens the supplement case too.
    assert flow.fire(case_id, "to_supplement", COLLECTOR, note="决议送达延误").to_state == "supplemented"
    (supplement,) = [c for c in flow.list_cases("supplement") if c["org"] == UNIT]
    payload = flow.show(supplement["id"])["payload"]
    assert (payload["filing_case_id"], payload["omission_reason"]) == (case_id, "决议送达延误")
    assert payload["data"] == []  # the batch never got its rows: the unit enters them in the supplement


# -- double, minor and joint bachelor's degrees (seed 003 annex "数据报送" (4)-(6)) -----------------------------------
def _double(conferral: str = "20261118") -> list[dict[str, str]]:
    first = row("陈晨", "1063542026000031", conferral, "工学学士", "土木工程", major_code="")
    second = {**first, "cert_no": "1063542026000032", "degree_type_code": "07", "degree_type": "理学学士",
              "major": "数学与应用数学"}  # fmt: skip
    return [first, second]


def _file_2024(flow, conferral: str, rows, **batch) -> int:  # type: ignore[no-untyped-def]
    case_id = open_filing(flow, f"{conferral[:4]}-{conferral[4:6]}-{conferral[6:]}")
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": rows, **batch})
    code = leader_code(flow, case_id, "verify", VERIFIER)
    flow.fire(case_id, "verify", VERIFIER, payload={"authorization_code": code})
    assert flow.show(case_id)["state"] == "recorded"
    return case_id


def test_double_and_joint_bachelors_are_filed_together_and_linked(flow):
    pair = _double()
    single = row("周杰", "1063542026000033", "20261118")
    case_id = _file_2024(flow, "20261118", [*pair, single], joint_unit_code="10611", joint_unit="重庆大学")
    stored = registry_rows(flow, [pair[0]["cert_no"], pair[1]["cert_no"], single["cert_no"]])
    assert stored[pair[0]["cert_no"]]["data"]["paired_cert_no"] == pair[1]["cert_no"]
    assert stored[pair[1]["cert_no"]]["data"]["paired_cert_no"] == pair[0]["cert_no"]
    assert "paired_cert_no" not in stored[single["cert_no"]]["data"]
    assert {(s["data"]["joint_unit_code"], s["data"]["joint_unit"]) for s in stored.values()} == {
        ("10611", "重庆大学")
    }
    assert_filed_and_queryable(flow, case_id, [*pair, single])


def test_double_bachelor_rules_are_checked_per_record(flow):
    pair = _double()
    case_id = open_filing(flow, "2026-11-18")
    with_code = [pair[0] | {"major_code": "081401"}, pair[1]]
    with pytest.raises(InvalidPayload) as major_code:
        flow.fire(case_id, "submit", COLLECTOR, payload={"data": with_code})
    assert ("double_bachelor_major_code", 1) in {
        (p["code"], p["index"]) for p in major_code.value.details["problems"]
    }
    same_type = [pair[0], pair[1] | {"degree_type_code": "08", "degree_type": "工学学士"}]
    with pytest.raises(InvalidPayload) as same:
        flow.fire(case_id, "submit", COLLECTOR, payload={"data": same_type})
    assert "double_bachelor" in {p["code"] for p in same.value.details["problems"]}
    with pytest.raises(InvalidPayload) as own:
        flow.fire(
            case_id,
            "submit",
            COLLECTOR,
            payload={"data": pair, "joint_unit_code": UNIT, "joint_unit": "西南大学"},
        )
    assert own.value.rule == "joint_unit_other"
    with pytest.raises(InvalidPayload) as bad_code:
        flow.fire(case_id, "submit", COLLECTOR, payload={"data": pair, "joint_unit_code": "106"})
    assert bad_code.value.field == "joint_unit_code"


def test_minor_bachelor_links_to_the_major_degree(flow, clock):
    major = row("孙丽", "1063542026000041", "20261118")
    _file_2024(flow, "20261118", [major])
    _at(clock, "2026-11-23T09:00")
    minor = {**major, "cert_no": "1063542026000042", "conferral_date": "20261119", "graduation_date": "20261119",
             "degree_type_code": "05", "degree_type": "文学学士", "major": "汉语言文学",
             "major_cert_no": major["cert_no"]}  # fmt: skip
    case_id = open_filing(flow, "2026-11-19")
    unknown = minor | {"major_cert_no": "1063542026009999"}
    other = row("吴刚", "1063542026000043", "20261119")
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(
            case_id,
            "submit",
            COLLECTOR,
            payload={"data": [unknown, other | {"major_cert_no": major["cert_no"]}]},
        )
    codes = {(p["index"], p["code"]) for p in refused.value.details["problems"]}
    assert codes == {(1, "minor_major_missing"), (2, "minor_other_person")}
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": [minor]})
    code = leader_code(flow, case_id, "verify", VERIFIER)
    flow.fire(case_id, "verify", VERIFIER, payload={"authorization_code": code})
    stored = registry_rows(flow, [minor["cert_no"]])[minor["cert_no"]]
    assert stored["data"]["major_cert_no"] == major["cert_no"] and stored["status"] == "filed"
    assert flow.query_certificate(minor["cert_no"], "孙丽", member=True)["status"] == "found"


# -- through the web application ----------------------------------------------------------------------------------
def test_a_2024_batch_through_the_json_api_and_the_case_page(sqlite_flow, tmp_path):
    from tests.live import Api, Browser, serve

    flow = sqlite_flow
    rows = batch_2024()
    with serve(flow, tmp_path / "data") as base:
        collector, verifier = Api(base, COLLECTOR), Api(base, VERIFIER)
        opened = collector.post("/cases", json={"type": "filing", "data": {"conferral_date": "2026-11-18"}})
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["id"]
        bad = [rows[0], rows[1] | {"gender": "M"}]
        refused = collector.post(f"/cases/{case_id}/steps/submit", json={"data": {"data": bad}})
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["field"] == "data[1].gender" and f"第 2 条（{rows[1]['cert_no']}）" in error["message"]
        assert (
            collector.post(f"/cases/{case_id}/steps/submit", json={"data": {"data": rows}}).status_code == 200
        )
        assert verifier.post(f"/cases/{case_id}/authorization/verify").status_code == 200
        code = leader_code(flow, case_id, "verify", VERIFIER)
        done = verifier.post(f"/cases/{case_id}/steps/verify", json={"data": {"authorization_code": code}})
        assert done.status_code == 200, done.text
        browser = Browser(base)
        browser.login(COLLECTOR)
        page = browser.get(f"/cases/{case_id}")
        assert page.status_code == 200 and "学位授予信息报送" in page.text and "已备案入库" in page.text
        assert browser.get("/cases/new/filing").status_code == 200
    assert_filed_and_queryable(flow, case_id, rows)


def test_a_batch_uploaded_as_a_spreadsheet_on_the_case_page(sqlite_flow, tmp_path):
    """The collector submits the batch as a CSV (GB18030) or XLSX file with the Chinese column names, as for
    `records import`; a bad record or a bad file is refused next to the file input and changes nothing."""
    import csv

    from openpyxl import Workbook

    from cases.degree_record import COLUMN
    from tests.live import Browser, serve

    flow = sqlite_flow
    rows = batch_2024()
    keys = list(rows[0])

    def csv_file(records: list[dict[str, str]]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([COLUMN[k] for k in keys])
        writer.writerows([[r.get(k, "") for k in keys] for r in records])
        return out.getvalue().encode("gb18030")

    def xlsx_file(records: list[dict[str, str]]) -> bytes:
        book = Workbook()
        book.active.append([COLUMN[k] for k in keys])
        for r in records:
            book.active.append([r.get(k, "") for k in keys])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    with serve(flow, tmp_path / "data") as base:
        browser = Browser(base)
        browser.login(COLLECTOR)
        case_id = open_filing(flow, "2026-11-18")
        page = browser.get(f"/cases/{case_id}")
        assert 'name="data__file"' in page.text and 'enctype="multipart/form-data"' in page.text

        def submit(name: str, content: bytes):  # type: ignore[no-untyped-def]
            version = flow.show(case_id)["version"]
            return browser.post(f"/cases/{case_id}/steps/submit", {"version": str(version)},
                                files={"data__file": (name, content)})  # fmt: skip

        for name, content, words in [
            ("批次.csv", csv_file([rows[0], rows[1] | {"gender": "M"}]), f"第 2 条（{rows[1]['cert_no']}）"),
            ("批次.txt", b"x", "只接受 .csv 或 .xlsx"),
            ("批次.xlsx", b"not a workbook", "无法读取文件"),
            ("批次.csv", "姓名,爱好\n王芳,游泳\n".encode(), "爱好"),
            ("批次.csv", csv_file([]), "没有记录"),
        ]:
            refused = submit(name, content)
            assert refused.status_code == 422, (name, refused.status_code)
            assert words in refused.text and 'id="submit-err-data"' in refused.text, name
            assert flow.show(case_id)["state"] == "draft" and "data" not in flow.show(case_id)["payload"]
        accepted = submit("批次.xlsx", xlsx_file(rows))
        assert accepted.status_code == 303, accepted.text[-500:]
        case = flow.show(case_id)
        assert case["state"] == "unit_check"
        assert [r["cert_no"] for r in case["payload"]["data"]] == [r["cert_no"] for r in rows]
        assert not any((tmp_path / "data" / "uploads").glob("*/*"))  # the file is not kept


def test_supplement_data_uploaded_as_a_spreadsheet_on_the_case_page(sqlite_flow, tmp_path):
    """The supplement's data step takes the complete records as a file too (the form has no inputs for them)."""
    import csv

    from cases.degree_record import COLUMN
    from tests.helpers import SUPPLEMENT_DATA, fire, open_case
    from tests.live import Browser, serve

    flow = sqlite_flow
    case_id = open_case(flow, "supplement")
    for trigger, part in [("submit", "collector"), ("approve", "province")]:
        fire(flow, case_id, "supplement", trigger, part)
    keys = list(SUPPLEMENT_DATA[0])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([COLUMN[k] for k in keys])
    writer.writerows([[r.get(k, "") for k in keys] for r in SUPPLEMENT_DATA])
    with serve(flow, tmp_path / "data") as base:
        browser = Browser(base)
        browser.login("10593XW02")
        page = browser.get(f"/cases/{case_id}")
        assert 'name="data__file"' in page.text and 'name="data[0].name"' not in page.text
        version = str(flow.show(case_id)["version"])
        short = browser.post(f"/cases/{case_id}/steps/submit_data", {"version": version},
                             files={"data__file": ("补报.csv", "\n".join(out.getvalue().splitlines()[:2]).encode())})  # fmt: skip
        assert short.status_code == 422 and "表1" in short.text and 'id="submit_data-err-data"' in short.text
        assert flow.show(case_id)["state"] == "data_entry"
        done = browser.post(f"/cases/{case_id}/steps/submit_data", {"version": version},
                            files={"data__file": ("补报.csv", out.getvalue().encode("utf-8-sig"))})  # fmt: skip
        assert done.status_code == 303, done.text[-400:]
    case = flow.show(case_id)
    assert case["state"] == "data_review" and len(case["payload"]["data"]) == len(SUPPLEMENT_DATA)
