"""Cases a reviewer can trust (issue 15), on SQLite and PostgreSQL: a step stores only its declared fields, the
two-person rule by who did the work, dates that make sense, facts checked against the registry, no duplicates.

Each scenario of the issue is replayed as an attacker or a careless user would and must be refused (or flagged)
with a message naming the rule, changing nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cases import records
from db.engine import transaction
from degreeflow.demo import degree_record
from tests.helpers import (
    OPEN_DATA,
    STEP_DATA,
    UNIT,
    attach_required,
    fire,
    leader_code,
    open_case,
    snapshot,
    users_for,
)
from tests.live import Api, Browser, serve
from tests.test_case_types import HAPPY_PATHS
from workflow import InvalidPayload, NotAllowedInState, NotFound, SeparationOfDuties

# Keys a hostile client adds: the case's own columns and flags only the software sets.
COLUMNS = ("id", "org", "org_id", "state", "version", "opened_by", "rule_set", "payload", "complex",
           "registry_record", "comparison", "collected_by", "checked_by", "department")  # fmt: skip
REVOCATION = OPEN_DATA["revocation"]


def hostile_payload(defn, step) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Every other step's fields, the opening fields and the case's columns: none of them this step's own."""
    names = {r.name for s in defn.steps for r in s.requires} | {r.name for r in defn.open_requires} | set(COLUMNS)
    own = {r.name for r in step.requires}
    return {name: ("1059332024000001" if name == "cert_no" else "王五") for name in sorted(names - own)}


def file_record(flow, cert_no: str, name: str, conferral: str, major: str = "土木工程", unit: str = "西南大学",
                status: str | None = None) -> None:  # fmt: skip
    """Put a filed record in the registry as the national database import would."""
    row = degree_record(name, cert_no, "工学学士", major, conferral, unit_name=unit)
    row["graduation_date"] = conferral
    with transaction(flow.db) as conn:
        records.store(conn, [row], flow.clock.now(), "test")
        if status:
            conn.execute(records.RECORDS.update().where(records.RECORDS.c.cert_no == cert_no).values(status=status))


# -- 0. a step stores only its declared fields ----------------------------------------------------------------
# Paths that visit every manual step of the two types test_case_types' HAPPY_PATHS leaves out.
MORE_PATHS = {
    "filing": [("prevalidate", "collector", "draft"), ("submit", "collector", "unit_check"),
               ("send_back", "verifier", "draft"), ("submit", "collector", "unit_check"),
               ("verify", "verifier", "recorded")],
    "spot_check": [("ask_unit", "center", "unit_review"), ("answer", "verifier", "reviewing"),
                   ("correct", "center", "corrected")],
}  # fmt: skip


def _open_for_hostile_test(flow, case_type: str) -> int:  # type: ignore[no-untyped-def]
    if case_type != "spot_check":
        return open_case(flow, case_type)
    report = open_case(flow, "authentication")
    for trigger, part, _ in HAPPY_PATHS["authentication"][:4]:
        fire(flow, report, "authentication", trigger, part)
    return open_case(flow, "spot_check", authentication_case=report)


@pytest.mark.parametrize("case_type", sorted(HAPPY_PATHS | MORE_PATHS))
def test_every_step_refuses_every_key_it_did_not_declare(flow, case_type):
    case_id = _open_for_hostile_test(flow, case_type)
    defn = flow.engine.definition(case_type)
    for trigger, part, expected in (HAPPY_PATHS | MORE_PATHS)[case_type]:
        state = flow.show(case_id)["state"]
        step = defn.candidates(state, trigger)[0]
        before = snapshot(flow, case_id)
        payload = {**STEP_DATA.get((case_type, trigger), {}), **hostile_payload(defn, step)}
        with pytest.raises(InvalidPayload) as refused:
            flow.fire(case_id, trigger, users_for(UNIT[case_type])[part], payload=payload)
        assert refused.value.rule == "unknown_field", (trigger, refused.value.message)
        unknown, hostile = set(refused.value.details["fields"]), set(hostile_payload(defn, step))
        # All of them named (a change written flat is read as one change: its four keys are the change's).
        assert set(COLUMNS) <= unknown <= hostile and not hostile - unknown - {"field", "old_value", "new_value",
                                                                               "reason"}  # fmt: skip
        assert "不接受这些字段" in refused.value.message and "未作任何修改" in refused.value.message
        assert snapshot(flow, case_id) == before, trigger
        extra = {}
        if step.needs_authorization(flow.show(case_id)["rule_set"]):
            extra["authorization_code"] = leader_code(flow, case_id, trigger, users_for(UNIT[case_type])[part])
        assert fire(flow, case_id, case_type, trigger, part, **extra).to_state == expected


def test_opening_refuses_keys_the_form_does_not_have(flow):
    with pytest.raises(InvalidPayload) as refused:
        flow.open_case("revocation", "10635", "10635XW01", {**REVOCATION, "state": "revoked", "complex": True})
    assert refused.value.rule == "unknown_field" and refused.value.details["fields"] == ["complex", "state"]
    assert flow.list_cases() == []


def test_a_checker_cannot_rewrite_the_applicant_of_an_authentication(flow):
    case_id = open_case(flow, "authentication")
    for trigger, part in [("check", "center"), ("send_to_unit", "center")]:
        fire(flow, case_id, "authentication", trigger, part)
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "answer", "10611XW02", payload={"result": "信息一致", "applicant_name": "王五",
                                                            "cert_no": "1059332024000001", "complex": True})  # fmt: skip
    assert refused.value.details["fields"] == ["applicant_name", "cert_no", "complex"]
    assert snapshot(flow, case_id) == before
    fire(flow, case_id, "authentication", "answer", "verifier")
    fire(flow, case_id, "authentication", "issue_report", "center")
    shown = flow.show(case_id)
    assert shown["payload"]["applicant_name"] == OPEN_DATA["authentication"]["applicant_name"]
    assert shown["payload"]["cert_no"] == OPEN_DATA["authentication"]["cert_no"]


def test_a_revocation_cannot_be_pointed_at_another_units_degree_after_opening(flow):
    case_id = open_case(flow, "revocation")
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "submit", "10635XW01", payload={**STEP_DATA[("revocation", "submit")],
                                                            "cert_no": "1059342023001101"})  # fmt: skip
    assert refused.value.rule == "unknown_field" and refused.value.field == "cert_no"
    assert snapshot(flow, case_id) == before


def test_a_step_that_declares_the_certificate_reruns_the_ownership_check(flow):
    """Amendment `submit` names the certificate: another unit's number is refused as at opening."""
    case_id = open_case(flow, "amendment")
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "submit", "10611XW01", payload={**STEP_DATA[("amendment", "submit")],
                                                            "cert_no": "1059342019000123"})  # fmt: skip
    assert refused.value.rule == "cert_no_unit_code" and "10611" in refused.value.message
    assert snapshot(flow, case_id) == before


# -- 1. separation of duties by the work -----------------------------------------------------------------------
def test_the_verifier_who_submitted_may_not_verify_and_is_told_why(flow):
    case_id = open_case(flow, "revocation")
    flow.fire(case_id, "submit", "10635XW02", payload=STEP_DATA[("revocation", "submit")])
    shown = flow.show(case_id, "10635XW02")
    assert "verify" not in [a["trigger"] for a in shown["allowed"]]
    (blocked,) = shown["blocked"]
    assert blocked["trigger"] == "verify" and "杨帆" in blocked["reason"] and "提交撤销报告" in blocked["reason"]
    before = snapshot(flow, case_id)
    with pytest.raises(SeparationOfDuties) as refused:
        fire(flow, case_id, "revocation", "verify", "verifier")
    assert refused.value.rule == "collector_may_not_verify"
    assert refused.value.details == {"person": "10635XW02", "step": "提交撤销报告（待校核）"}
    assert snapshot(flow, case_id) == before
    # Another verifier of the unit may; so may the same person after the case went back and someone else
    # submitted it again (a new round) — but never the opener.
    flow.add_user("10635XW07", "林涛", "verifier", "10635")
    flow.fire(case_id, "send_back", "10635XW07", payload={"reason": "决议文号有误"})
    flow.fire(case_id, "submit", "10635XW07", payload=STEP_DATA[("revocation", "submit")])
    with pytest.raises(SeparationOfDuties):
        flow.fire(case_id, "verify", "10635XW07")
    assert fire(flow, case_id, "revocation", "verify", "verifier").to_state == "reported"


def test_the_opener_never_verifies_even_if_someone_else_submitted(flow):
    flow.add_user("10635XW08", "韩梅", "verifier", "10635")
    case_id = flow.open_case("revocation", "10635", "10635XW08", REVOCATION).case_id
    flow.fire(case_id, "submit", "10635XW01", payload=STEP_DATA[("revocation", "submit")])
    with pytest.raises(SeparationOfDuties) as refused:
        flow.fire(case_id, "verify", "10635XW08")
    assert "新建撤销案件" in refused.value.message


def test_the_supplement_data_are_checked_by_someone_who_did_not_fill_form_1(flow):
    case_id = open_case(flow, "supplement")
    attach_required(flow, case_id, "submit")
    flow.fire(case_id, "submit", "10593XW02", payload=STEP_DATA[("supplement", "submit")])
    fire(flow, case_id, "supplement", "approve", "province")
    with pytest.raises(SeparationOfDuties) as refused:
        fire(flow, case_id, "supplement", "submit_data", "verifier")
    assert "提交补报申请" in refused.value.message


# -- 2. dates that make sense -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "rule", "field"),
    [
        ({"conferral_date": "2027-06-25", "decision_date": "2027-01-15"}, "date_not_in_future", "conferral_date"),
        ({"decision_date": "2027-01-15"}, "date_not_in_future", "decision_date"),
        ({"decision_date": "2020-01-15"}, "decision_before_conferral", "decision_date"),
        ({"conferral_date": "2023-06-25"}, "cert_no_year", "cert_no"),
    ],
)
def test_impossible_revocation_dates_are_refused_by_name(flow, change, rule, field):
    with pytest.raises(InvalidPayload) as refused:
        flow.open_case("revocation", "10635", "10635XW01", {**REVOCATION, **change})
    assert (refused.value.rule, refused.value.field) == (rule, field), refused.value.message
    assert flow.list_cases() == [] and flow.deadlines() == []


def test_a_later_step_cannot_move_the_decision_into_the_future(flow):
    case_id = open_case(flow, "revocation")
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "submit", "10635XW01",
                  payload={**STEP_DATA[("revocation", "submit")], "decision_date": "2027-01-15"})  # fmt: skip
    assert refused.value.rule == "date_not_in_future" and "不能晚于今天（2026-11-20" in refused.value.message
    with pytest.raises(InvalidPayload) as refused:
        flow.fire(case_id, "submit", "10635XW01",
                  payload={**STEP_DATA[("revocation", "submit")], "decision_date": "2020-01-15"})  # fmt: skip
    assert refused.value.rule == "decision_before_conferral"
    assert snapshot(flow, case_id) == before


def test_a_form_1_row_dated_in_the_future_or_off_its_certificate_year_is_refused(flow):
    case_id = open_case(flow, "supplement")
    rows = [{**STEP_DATA[("supplement", "submit")]["records"][0], "conferral_date": "2027-06-30"}]
    with pytest.raises(InvalidPayload) as refused:
        fire(flow, case_id, "supplement", "submit", "collector", records=rows)
    assert (refused.value.rule, refused.value.field) == ("date_not_in_future", "records[0].conferral_date")
    rows = [{**STEP_DATA[("supplement", "submit")]["records"][0], "conferral_date": "2024-06-30"}]
    with pytest.raises(InvalidPayload) as refused:
        fire(flow, case_id, "supplement", "submit", "collector", records=rows)
    assert (refused.value.rule, refused.value.field) == ("cert_no_year", "records[0].cert_no")
    assert "2023" in refused.value.message and "2024" in refused.value.message
    assert flow.show(case_id)["state"] == "draft"


# -- 3. checked against the registry ---------------------------------------------------------------------------
AMENDMENT_CERT = OPEN_DATA["amendment"]["cert_no"]


def test_an_amendment_states_the_registrys_original_or_is_refused_with_both_values(flow):
    file_record(flow, AMENDMENT_CERT, "刘洋", "20190630", major="土木工程", unit="重庆大学")
    case_id = open_case(flow, "amendment")
    assert flow.show(case_id)["notice"] == ""
    change = {"field": "major", "old_value": "建筑学", "new_value": "土木工程（桥梁）", "reason": "不全",
              "proofs": ["学位证书复印件"]}  # fmt: skip
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        fire(flow, case_id, "amendment", "submit", "collector", **change)
    assert refused.value.rule == "differs_from_registry" and refused.value.field == "changes[0].old_value"
    assert "建筑学" in refused.value.message and "土木工程" in refused.value.message
    assert snapshot(flow, case_id)[0] == before[0]
    # Left empty, the original is filled in from the record.
    fire(flow, case_id, "amendment", "submit", "collector", **{**change, "old_value": ""})
    assert flow.show(case_id)["payload"]["changes"][0]["old_value"] == "土木工程"


def test_an_amendment_without_a_registry_record_is_flagged_and_says_nothing_changed(flow):
    case_id = open_case(flow, "amendment")
    shown = flow.show(case_id)
    assert shown["notice"] == "本地学位信息库无此记录"
    rows, _ = flow.search_cases("prov50", case_type="amendment")
    fire(flow, case_id, "amendment", "submit", "collector")
    rows, _ = flow.search_cases("prov50", case_type="amendment")
    assert [r["notice"] for r in rows if r["id"] == case_id] == ["本地学位信息库无此记录"]
    for trigger, part in [("approve", "province"), ("approve", "national"), ("record", "center")]:
        fire(flow, case_id, "amendment", trigger, part)
    shown = flow.show(case_id)
    assert shown["notice"] == "本地学位信息库无此记录，未更新任何记录"
    with pytest.raises(NotFound):
        flow.record_history(AMENDMENT_CERT)


def test_the_registry_setting_makes_a_missing_record_a_refusal(flow):
    flow.engine.options["require_registry_record"] = True
    with pytest.raises(InvalidPayload) as refused:
        open_case(flow, "revocation")
    assert refused.value.rule == "registry_record_required" and "本地学位信息库无此记录" in refused.value.message
    assert flow.list_cases() == []
    file_record(flow, REVOCATION["cert_no"], REVOCATION["name"], "20210625")
    assert open_case(flow, "revocation")


def test_revoking_a_revoked_degree_or_opening_a_second_revocation_is_refused_with_a_link(flow):
    file_record(flow, REVOCATION["cert_no"], REVOCATION["name"], "20210625")
    first = flow.open_case("revocation", "10635", "10635XW01", REVOCATION).case_id
    with pytest.raises(InvalidPayload) as refused:
        flow.open_case("revocation", "10635", "10635XW01", REVOCATION)
    assert refused.value.rule == "duplicate_open_case" and f"/cases/{first}" in refused.value.message
    with pytest.raises(InvalidPayload) as refused:
        flow.open_case("revocation", "10635", "10635XW01", {**REVOCATION, "name": "钱某"})
    assert refused.value.rule in ("duplicate_open_case", "differs_from_registry")
    for trigger, part in [("submit", "collector"), ("verify", "verifier"), ("confirm", "province"),
                          ("revoke", "national")]:  # fmt: skip
        fire(flow, first, "revocation", trigger, part)
    with pytest.raises(InvalidPayload) as refused:
        flow.open_case("revocation", "10635", "10635XW01", REVOCATION)
    assert refused.value.rule == "already_revoked"
    assert len(flow.list_cases()) == 1


def test_a_revocation_names_the_person_the_registry_holds(flow):
    file_record(flow, REVOCATION["cert_no"], REVOCATION["name"], "20210625")
    with pytest.raises(InvalidPayload) as refused:
        flow.open_case("revocation", "10635", "10635XW01", {**REVOCATION, "name": "王五"})
    assert refused.value.rule == "differs_from_registry" and "王五" in refused.value.message
    assert "钱某某" in refused.value.message


def test_a_revocation_of_an_unknown_certificate_is_flagged_and_changes_no_record(flow):
    case_id = open_case(flow, "revocation")
    assert flow.show(case_id)["notice"] == "本地学位信息库无此记录"
    for trigger, part in [("submit", "collector"), ("verify", "verifier"), ("confirm", "province"),
                          ("revoke", "national")]:  # fmt: skip
        fire(flow, case_id, "revocation", trigger, part)
    assert flow.show(case_id)["notice"] == "本地学位信息库无此记录，未更新任何记录"
    # Its letter claims nothing the software did not check.
    (report,) = [d for d in flow.documents(case_id) if d["kind"] == "revocation_report"]
    html = flow.document_html(report["id"])[1]
    assert "本地学位信息库无此学位证书的备案记录，上述学位信息由学位授予单位填报，未经系统核对" in html
    file_record(flow, "1063542021000777", "钱某某", "20210625")
    held = open_case(flow, "revocation", cert_no="1063542021000777")
    for trigger, part in [("submit", "collector"), ("verify", "verifier")]:
        fire(flow, held, "revocation", trigger, part)
    (report,) = [d for d in flow.documents(held) if d["kind"] == "revocation_report"]
    assert "未经系统核对" not in flow.document_html(report["id"])[1]


def test_a_state_the_step_cannot_reach_is_still_refused_first(flow):
    """Registry checks never make a step skip the state machine (a revoke from draft)."""
    case_id = open_case(flow, "revocation")
    with pytest.raises(NotAllowedInState):
        flow.fire(case_id, "revoke", "xwb01")


# -- through HTTP, the web form and the CLI ----------------------------------------------------------------------
def test_api_and_web_form_refuse_undeclared_keys_and_the_bypass(flow, tmp_path):
    with serve(flow, tmp_path / "data") as site:
        unit = Api(site, "10635XW01")
        case = unit.post("/cases", json={"type": "revocation", "data": REVOCATION}).json()
        before = snapshot(flow, case["id"])
        response = unit.post(f"/cases/{case['id']}/steps/submit",
                             json={"data": {"resolution_no": "X", "state": "revoked", "org": "10593"}})  # fmt: skip
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "org" and "不接受这些字段" in error["message"]
        assert snapshot(flow, case["id"]) == before
        browser = Browser(site)
        browser.login("10635XW01")
        browser.get(f"/cases/{case['id']}")
        response = browser.post(f"/cases/{case['id']}/steps/submit",
                                {"resolution_no": "X", "cert_no": "1059342023001101", "version": "1"})  # fmt: skip
        assert response.status_code == 422 and "不接受这些字段" in response.text
        assert snapshot(flow, case["id"]) == before
        # An impossible date is refused next to its field, in words.
        browser.get("/cases/new/revocation")
        response = browser.post("/cases/new/revocation", {**REVOCATION, "cert_no": "1063542021000555",
                                                           "decision_date": "2027-01-15"})  # fmt: skip
        assert response.status_code == 422 and 'id="err-decision_date"' in response.text
        assert "是已发生的日期，不能晚于今天" in response.text
        # The registry does not hold the certificate: the page and the province's queue say so.
        assert "本地学位信息库无此记录" in browser.get(f"/cases/{case['id']}").text
        assert case["notice"] == "本地学位信息库无此记录"
        province = Browser(site)
        province.login("prov50")
        assert "本地学位信息库无此记录" in province.get("/cases").text
        # The bypass of the two-person rule over the API: the verifier submits, then verifies.
        verifier = Api(site, "10635XW02")
        response = verifier.post(f"/cases/{case['id']}/steps/submit", json={"data": {"resolution_no": "X号"}})
        assert response.status_code == 200, response.text
        response = verifier.post(f"/cases/{case['id']}/steps/verify", json={})
        assert response.status_code == 403 and "采集与校核须由不同工作人员负责" in response.json()["error"]["message"]
        assert flow.show(case["id"])["state"] == "unit_check"


EXE = shutil.which("degreeflow", path=str(Path(sys.executable).parent)) or "degreeflow"


def test_the_cli_refuses_undeclared_keys_and_the_bypass(tmp_path):
    env = {**os.environ, "DEGREEFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", "DEGREEFLOW_NOW": "2026-11-20T09:00"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=60)

    assert run("init", "--demo").returncode == 0
    data = {**REVOCATION, "cert_no": "1063542021000998"}  # the demo has a case of REVOCATION's certificate
    fields = [x for key, value in data.items() for x in ("-f", f"{key}={value}")]
    opened = run("case", "open", "revocation", "--org", "10635", "--as", "10635XW01", *fields, "--json")
    case_id = json.loads(opened.stdout)["case_id"]
    assert json.loads(opened.stdout)["notice"] == "本地学位信息库无此记录"
    refused = run("case", "fire", str(case_id), "submit", "--as", "10635XW01", "-f", "resolution_no=X号",
                  "-f", "cert_no=1059342023001101")  # fmt: skip
    assert refused.returncode != 0 and "cert_no" in refused.stderr + refused.stdout
    assert "不接受这些字段" in refused.stderr + refused.stdout
    assert run("case", "fire", str(case_id), "submit", "--as", "10635XW02", "-f", "resolution_no=X号").returncode == 0
    bypass = run("case", "fire", str(case_id), "verify", "--as", "10635XW02")
    assert bypass.returncode != 0 and "采集与校核须由不同工作人员负责" in bypass.stderr + bypass.stdout
    shown = json.loads(run("case", "show", str(case_id), "--as", "10635XW01", "--json").stdout)
    assert shown["state"] == "unit_check"


# -- 4. supplement data equal Form 1, field by field -------------------------------------------------------------
FULL_FORM1 = [
    {"name": "覃秋月", "cert_no": "1059342023001101", "degree_type": "工学学士", "major": "土木工程",
     "conferral_date": "2023-06-30"},
    {"name": "莫文杰", "cert_no": "1059342023001102", "degree_type": "理学学士", "major": "数学与应用数学",
     "conferral_date": "2023-06-30"},
]  # fmt: skip


def _supplement_at_data_entry(flow, form1):  # type: ignore[no-untyped-def]
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector", records=form1)
    fire(flow, case_id, "supplement", "approve", "province")
    return case_id


def test_supplement_data_differing_from_form_1_in_any_column_are_refused_per_row(flow):
    form1 = [dict(FULL_FORM1[0], major="建筑学"), dict(FULL_FORM1[1], conferral_date="2023-06-29")]
    case_id = _supplement_at_data_entry(flow, form1)
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        fire(flow, case_id, "supplement", "submit_data", "verifier")
    assert refused.value.rule == "form1_match"
    differences = refused.value.details["differences"]
    assert differences == [
        "第 1 行 覃秋月（1059342023001101）的专业：表1为“建筑学”，补报数据为“土木工程”",
        "第 2 行 莫文杰（1059342023001102）的获学位日期：表1为“20230629”，补报数据为“20230630”",
    ]
    assert snapshot(flow, case_id) == before


def test_the_filing_letter_calls_equal_only_what_was_compared(flow):
    from degreeflow.pdf import PdfRenderer
    from tests.test_letters import _flat, _pdf_text

    def filing_letter(case_id: int) -> str:
        for trigger, part in [("submit_data", "verifier"), ("accept", "province")]:
            fire(flow, case_id, "supplement", trigger, part)
        (document,) = [d for d in flow.documents(case_id) if d["kind"] == "province_filing"]
        return _flat(_pdf_text(PdfRenderer().pdf(flow.document_html(document["id"])[1])))

    full = filing_letter(_supplement_at_data_entry(flow, FULL_FORM1))
    assert "补报数据的姓名、学位证书编号、学位类别、专业、获学位日期与《申请补报学位获得者名单》逐项核对一致" in full
    # A Form 1 giving names and numbers only: the letter claims no more than those two columns.
    short = filing_letter(_supplement_at_data_entry(flow, STEP_DATA[("supplement", "submit")]["records"]))
    assert "补报数据的姓名、学位证书编号与《申请补报学位获得者名单》逐项核对一致" in short


def test_the_revocation_report_states_the_units_reason_never_a_send_back_reason(flow):
    """Seed 002 art. 19: the report "说明撤销学位原因". The reason is the submit's own field; the reason a verifier
    gave for sending the report back is not printed as the reason for revoking."""
    case_id = open_case(flow, "revocation")
    fire(flow, case_id, "revocation", "submit", "collector")
    fire(flow, case_id, "revocation", "send_back", "verifier", reason="决议文号有误")
    fire(flow, case_id, "revocation", "submit", "collector", revocation_reason="学位论文存在抄袭")
    fire(flow, case_id, "revocation", "verify", "verifier")
    (report,) = [d for d in flow.documents(case_id) if d["kind"] == "revocation_report"]
    html = flow.document_html(report["id"])[1]
    assert "撤销原因：学位论文存在抄袭" in html and "决议文号有误" not in html
