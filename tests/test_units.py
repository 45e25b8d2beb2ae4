"""Inside a unit (issue 8 item 2, seed 001 art. 8-12 and annexes 2-3): departments, level-1 and level-2 accounts,
routing of authentication verification tasks by scope, reassignment, the complex-case notice."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from stdnum.cn import ric

from cases import units
from cases.service import DegreeFlow
from db import make_engine
from degreeflow import demo
from degreeflow.pdf import PdfRenderer
from tests.helpers import FILING_DATA, OPEN_DATA, fire, leader_code, open_case, snapshot
from tests.test_cli import cli  # noqa: F401 - the fixture
from tests.test_degree_record import VALID
from tests.test_registry import write_csv
from workflow import Forbidden, InvalidPayload, NotFound

UNIT = "10611"  # the unit of the authentication cases in tests/helpers.py
BACHELOR_2020 = "1061142020000555"  # level digit 4 (学士), conferred 2020: 往届
MASTER_2020 = "1061132020000556"


@pytest.fixture
def departments(flow):
    """A lead department, a bachelor's department (普通 only), an adult-education department and a graduate
    school, with their accounts."""
    flow.add_department(UNIT, "学位办公室", "lead", head_name="赵主任")
    flow.add_department(UNIT, "教务处", "verification", levels=["学士"], forms=["普通"], head_name="钱处长")
    flow.add_department(UNIT, "继续教育学院", "verification", levels=["学士"], forms=["成人/自考"])
    flow.add_department(UNIT, "研究生院", "verification", levels=["硕士", "博士"], years=["全部"])
    flow.add_user(f"{UNIT}XW11", "牵头人", "lead", UNIT, department="学位办公室",
                  contact={"phone": "023-68250000", "mobile": "13800000000", "address": "重庆市北碚区天生路2号"})  # fmt: skip
    flow.add_user(f"{UNIT}XW12", "教务核查", "checker", UNIT, department="教务处")
    flow.add_user(f"{UNIT}XW13", "研究生核查", "checker", UNIT, department="研究生院")
    return {d["name"]: d for d in flow.departments(UNIT)}


def _sent_to_unit(flow, cert_no: str, **extra) -> int:
    case_id = open_case(flow, "authentication", cert_no=cert_no, **extra)
    fire(flow, case_id, "authentication", "check", "center")
    fire(flow, case_id, "authentication", "send_to_unit", "center")
    return case_id


def test_departments_are_registered_with_their_scope_and_checked(flow, departments):
    assert departments["教务处"]["levels"] == ["学士"] and departments["教务处"]["forms"] == ["普通"]
    assert departments["研究生院"]["years"] == []  # 全部
    assert (
        departments["研究生院"]["scope_label"]
        == "学位层级：硕士、博士；授予年份：全部；学习形式（学士）：全部"
    )
    assert [a["username"] for a in departments["学位办公室"]["accounts"]] == [f"{UNIT}XW11"]
    assert departments["学位办公室"]["accounts"][0]["mobile"] == "13800000000"
    with pytest.raises(InvalidPayload) as second_lead:
        flow.add_department(UNIT, "国际交流与合作处", "lead")
    assert second_lead.value.rule == "one_lead_department"
    with pytest.raises(InvalidPayload) as bad_level:
        flow.add_department(UNIT, "国际交流与合作处", "verification", levels=["本科"])
    assert bad_level.value.field == "levels" and "学士、硕士、博士" in str(bad_level.value)
    with pytest.raises(InvalidPayload) as same_name:
        flow.add_department(UNIT, "教务处", "college")
    assert same_name.value.rule == "unique"
    with pytest.raises(NotFound):
        flow.add_department("99999", "教务处", "college")


def test_a_level_2_account_needs_a_verification_department(flow, departments):
    with pytest.raises(InvalidPayload) as missing:
        flow.add_user(f"{UNIT}XW21", "无部门", "checker", UNIT)
    assert missing.value.field == "department" and missing.value.rule == "department_required"
    with pytest.raises(InvalidPayload) as wrong_kind:
        flow.add_user(f"{UNIT}XW21", "错部门", "checker", UNIT, department="学位办公室")
    assert wrong_kind.value.rule == "department_kind"
    with pytest.raises(InvalidPayload) as bad_phone:
        flow.add_user(
            f"{UNIT}XW21", "号码", "checker", UNIT, department="教务处", contact={"phone": "<script>"}
        )
    assert bad_phone.value.field == "phone"
    with pytest.raises(InvalidPayload) as other_unit:
        flow.add_user("10635XW21", "别校", "checker", "10635", department="教务处")
    assert other_unit.value.rule == "department_exists"


def test_tasks_are_routed_by_level_and_fall_back_to_the_lead_department(flow, departments):
    bachelor = _sent_to_unit(flow, BACHELOR_2020)
    master = _sent_to_unit(flow, MASTER_2020)
    payload = flow.show(bachelor)["payload"]
    # No filed record: the level comes from the certificate number, the study form is unknown, so only a
    # department without a study-form restriction could take it: the lead department does.
    assert payload["department"] == "学位办公室" and payload["department_assigned"] == "转牵头部门"
    assert flow.show(master)["payload"]["department"] == "研究生院"
    events = flow.show(master)["history"]
    assert events[-1]["trigger"] == "send_to_unit"


def test_a_filed_record_decides_the_study_form(flow, departments, tmp_path):
    bachelor = {**VALID, "培养单位码": UNIT, "培养单位": "重庆大学", "学位授予单位码": UNIT, "学位授予单位": "重庆大学",
                "学位类别": "工学学士", "论文类型": "毕业设计", "获学位日期": "20200630", "毕业日期": "20200625",
                "学位证书编号": BACHELOR_2020}  # fmt: skip
    other_id = "11010519491231003" + ric.calc_check_digit("11010519491231003" + "0")  # another person (男)
    adult = {**bachelor, "姓名": "李强", "性别": "男", "身份证件号码": other_id, "学位类别": "工学学士（成人高等教育）",
             "学位证书编号": BACHELOR_2020.replace("555", "558")}  # fmt: skip
    assert flow.records_import(write_csv(tmp_path / "r.csv", [bachelor, adult]), UNIT, as_user="xwzx01")["stored"] == 2
    assert flow.show(_sent_to_unit(flow, BACHELOR_2020))["payload"]["department"] == "教务处"
    assert flow.show(_sent_to_unit(flow, adult["学位证书编号"]))["payload"]["department"] == "继续教育学院"


def test_a_level_2_account_sees_and_answers_only_its_departments_tasks(flow, departments):
    master = _sent_to_unit(flow, MASTER_2020)
    bachelor = _sent_to_unit(flow, BACHELOR_2020)
    graduate, registry_office = f"{UNIT}XW13", f"{UNIT}XW12"
    queue, _ = flow.queue(graduate)
    assert [row["id"] for row in queue] == [master]
    assert flow.queue(registry_office)[0] == []
    assert [c["id"] for c in flow.search_cases(graduate)[0]] == [master]
    with pytest.raises(NotFound):
        flow.case_for(bachelor, graduate)
    before = snapshot(flow, bachelor)
    with pytest.raises(Forbidden):
        flow.fire(bachelor, "answer", graduate, payload={"result": "信息一致"})
    assert snapshot(flow, bachelor) == before
    # The level-1 account sees every task of the unit.
    lead_queue = {row["id"] for row in flow.queue(f"{UNIT}XW11")[0]}
    assert {master, bachelor} <= lead_queue
    assert flow.fire(master, "answer", graduate, payload={"result": "信息一致"}).to_state == "reviewing"


def test_the_lead_department_reassigns_a_task(flow, departments):
    case_id = _sent_to_unit(flow, BACHELOR_2020)
    with pytest.raises(Forbidden):  # a level-2 account does not reassign
        flow.fire(case_id, "reassign", f"{UNIT}XW13", payload={"department": "研究生院"})
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as unknown:
        flow.fire(case_id, "reassign", f"{UNIT}XW11", payload={"department": "保卫处"})
    assert unknown.value.field == "department"
    assert snapshot(flow, case_id) == before
    result = flow.fire(
        case_id, "reassign", f"{UNIT}XW11", payload={"department": "教务处"}, note="本科档案在教务处"
    )
    assert result.to_state == "verification"
    shown = flow.show(case_id)
    assert shown["payload"]["department"] == "教务处"
    assert shown["payload"]["department_assigned"] == "牵头部门重新分配"
    assert shown["history"][-1]["trigger"] == "reassign"
    assert [row["id"] for row in flow.queue(f"{UNIT}XW12")[0]] == [case_id]
    # The unit's 10 working days keep running.
    assert {d["name"]: d["status"] for d in shown["deadlines"]}["unit_answer"] == "running"


def test_a_complex_task_is_announced_before_the_limit_and_stays_flagged(flow, clock, departments):
    case_id = _sent_to_unit(flow, MASTER_2020)
    with pytest.raises(InvalidPayload):  # the reason is required
        flow.fire(case_id, "notify_complex", f"{UNIT}XW13")
    flow.fire(case_id, "notify_complex", f"{UNIT}XW13", note="档案在校史馆，需调阅")
    shown = flow.show(case_id)
    assert (
        shown["payload"]["complex"] is True and shown["payload"]["complex_reason"] == "档案在校史馆，需调阅"
    )
    assert {d["name"]: d["due_date"] for d in shown["deadlines"]}["unit_answer"] == "2026-12-04"  # limit kept
    told = [m for m in flow.inbox("xwzx01") if m["kind"] == "complex"]
    assert len(told) == 1 and told[0]["case_id"] == case_id and "档案在校史馆" in told[0]["body"]
    flagged = {row["id"]: row["complex"] for row in flow.queue(f"{UNIT}XW11")[0]}
    assert flagged[case_id] is True
    with pytest.raises(InvalidPayload) as twice:
        flow.fire(case_id, "notify_complex", f"{UNIT}XW13", note="再次")
    assert twice.value.rule == "complex_once"
    late = _sent_to_unit(flow, MASTER_2020.replace("556", "557"))
    clock.set(clock.now() + timedelta(days=20))
    with pytest.raises(Forbidden) as after:
        flow.fire(late, "notify_complex", f"{UNIT}XW13", note="太晚")
    assert after.value.rule == "complex_before_deadline"


def test_without_departments_every_unit_user_sees_the_task(flow):
    case_id = _sent_to_unit(flow, BACHELOR_2020)
    assert flow.show(case_id)["payload"]["department_assigned"] == "未设部门"
    assert flow.fire(case_id, "answer", f"{UNIT}XW02", payload={"result": "信息一致"}).to_state == "reviewing"


def test_covers_reads_the_annex_3_choices():
    dept = {"levels": ["学士"], "years": ["应届"], "forms": ["来华留学"]}
    assert units.covers(dept, {"level": "学士", "year": "应届", "form": "来华留学"})
    assert not units.covers(dept, {"level": "学士", "year": "往届", "form": "来华留学"})
    assert not units.covers(dept, {"level": "学士", "year": "应届", "form": "普通"})
    assert not units.covers(dept, {"level": None, "year": "应届", "form": None})
    everything = {"levels": [], "years": [], "forms": []}
    assert units.covers(everything, {"level": None, "year": None, "form": None})


# -- registration forms (issue 8 item 4) and the fee statement (item 3) -------------------------------------
def _pdf_text(data: bytes) -> str:
    return "".join("".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


def test_registration_forms_are_filled_from_the_accounts(flow, departments):
    html = flow.registration_forms_html(UNIT)
    text = _pdf_text(PdfRenderer().pdf(html))
    assert "学位认证牵头部门及账号使用人登记表" in text and "学位信息核查部门及账号使用人登记表" in text
    assert text.count("学位信息核查部门及账号使用人登记表") == 3  # one per verification department
    assert "牵头部门（盖章）：学位办公室" in text and "部门负责人（签字）：赵主任" in text
    assert "牵头人" in text and "13800000000" in text and "重庆市北碚区天生路2号" in text
    assert "1.教务处" in text and "2.继续教育学院" in text and "3.研究生院" in text
    assert "B.学士" in text and "J.普通" in text and "C.硕士、D.博士" in text and "E.全部" in text
    assert "教务核查" in text and "研究生核查" in text


def test_registration_forms_need_departments(flow):
    with pytest.raises(InvalidPayload) as none:
        flow.registration_forms_html(UNIT)
    assert none.value.rule == "departments_registered"


def test_answered_tasks_are_counted_per_unit_and_department(flow, clock, departments, tmp_path):
    master = _sent_to_unit(flow, MASTER_2020)
    other = _sent_to_unit(flow, MASTER_2020.replace("556", "559"))
    unassigned = _sent_to_unit(flow, BACHELOR_2020)
    flow.fire(master, "answer", f"{UNIT}XW13", payload={"result": "信息一致"})
    flow.fire(other, "answer", f"{UNIT}XW13", payload={"result": "信息有误已更正"})
    flow.fire(unassigned, "answer", f"{UNIT}XW11", payload={"result": "查无此人"})
    today = clock.today()
    rows = flow.verification_counts(today, today)
    assert {(r["unit_code"], r["department"], r["tasks"]) for r in rows} == {
        (UNIT, "研究生院", 2),
        (UNIT, "学位办公室", 1),
    }
    assert flow.verification_counts(today + timedelta(days=1), today + timedelta(days=30)) == []
    assert flow.verification_counts(today, today, unit="10635") == []
    with pytest.raises(InvalidPayload) as order:
        flow.verification_counts(today, today - timedelta(days=1))
    assert order.value.field == "to"
    path = tmp_path / "fees.xlsx"
    units.fee_workbook(rows, today, today, path)
    sheet = load_workbook(path).active
    values = [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
    assert values[1] == ["学位授予单位码", "学位授予单位", "核查部门", "已反馈核查任务数"]
    assert values[-1] == ["合计", None, None, 3]


def test_the_cli_registers_departments_accounts_forms_and_fees(cli, tmp_path):  # noqa: F811
    cli("dept", "add", "10001", "学位办", "--kind", "lead", "--head", "孙主任")
    cli(
        "dept",
        "add",
        "10001",
        "研究生院",
        "--kind",
        "verification",
        "--levels",
        "硕士,博士",
        "--years",
        "全部",
    )
    refused = cli("dept", "add", "10001", "教务处", "--kind", "verification", "--levels", "本科", ok=False)
    assert (
        "levels" in refused.stderr
        and "学士、硕士、博士" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    cli("user", "add", "10001XW21", "钱核查", "--role", "checker", "--org", "10001", "--department", "研究生院",
        "--phone", "023-68250001")  # fmt: skip
    missing = cli("user", "add", "10001XW22", "无部门", "--role", "checker", "--org", "10001", ok=False)
    assert "department" in missing.stderr
    listed = json.loads(cli("dept", "list", "10001", "--json").stdout)
    assert [(d["name"], [a["username"] for a in d["accounts"]]) for d in listed] == [
        ("学位办", []),
        ("研究生院", ["10001XW21"]),
    ]
    target = tmp_path / "forms.pdf"
    cli("dept", "forms", "10001", "-o", str(target))
    assert "钱核查" in _pdf_text(target.read_bytes())
    fees = tmp_path / "fees.xlsx"
    done = cli("auth", "fees", "--from", "2026-11-01", "--to", "2026-11-30", "-o", str(fees), "--json")
    assert json.loads(done.stdout) == [] and fees.exists()
    bad = cli("auth", "fees", "--from", "2026-11-31", "--to", "2026-11-30", ok=False)
    assert "--from" in bad.stderr


# -- spot checks of finished reports (issue 8 item 3, seed 001 art. 15) --------------------------------------
def _reported(flow, cert_no: str, result: str = "信息一致") -> int:
    case_id = _sent_to_unit(flow, cert_no)
    flow.fire(case_id, "answer", f"{UNIT}XW02", payload={"result": result})
    flow.fire(case_id, "issue_report", "xwzx01")
    return case_id


def test_a_months_reports_are_sampled_reproducibly_and_only_once(flow):
    reports = [_reported(flow, f"10611320200{i:05d}") for i in range(1, 11)]
    unfinished = _sent_to_unit(flow, "1061132020099999")
    first = flow.spot_check("2026-11", "xwzx01", percent=25)
    assert first["finished"] == 10 and first["target"] == 3 and len(first["opened"]) == 3
    checked = [flow.show(c)["payload"]["authentication_case"] for c in first["opened"]]
    assert set(checked) <= set(reports) and unfinished not in checked
    again = flow.spot_check("2026-11", "xwzx01", percent=25)
    assert again["opened"] == [] and sorted(again["already_checked"]) == sorted(checked)
    more = flow.spot_check("2026-11", "xwzx01", percent=50)  # a larger share adds the difference
    assert len(more["opened"]) == 2
    assert flow.spot_check("2026-10", "xwzx01", percent=100)["opened"] == []  # nothing finished in October
    with pytest.raises(InvalidPayload) as month:
        flow.spot_check("2026-13", "xwzx01")
    assert month.value.field == "month"
    with pytest.raises(InvalidPayload) as share:
        flow.spot_check("2026-11", "xwzx01", percent=101)
    assert share.value.field == "percent"
    with pytest.raises(Forbidden):
        flow.spot_check("2026-11", f"{UNIT}XW01")


def test_the_sample_depends_on_the_month_and_seed_only(tmp_path, clock):
    picks = []
    for run, seed in enumerate(("", "", "x")):
        flow = DegreeFlow(make_engine(f"sqlite:///{tmp_path}/run{run}.db"), clock)
        flow.init_schema()
        demo.seed(flow, cases=False)
        for i in range(1, 21):
            _reported(flow, f"10611320200{i:05d}")
        opened = flow.spot_check("2026-11", "xwzx01", percent=20, seed=seed)["opened"]
        picks.append(sorted(flow.show(c)["payload"]["cert_no"] for c in opened))
        flow.db.dispose()
    assert picks[0] == picks[1] and len(picks[0]) == 4
    assert picks[2] != picks[0]


def test_a_spot_check_can_ask_the_unit_and_correct_the_report(flow):
    report = _reported(flow, MASTER_2020)
    check = flow.spot_check("2026-11", "xwzx01", percent=100)["opened"][0]
    shown = flow.show(check)
    assert shown["payload"]["original_result"] == "信息一致" and shown["payload"]["cert_no"] == MASTER_2020
    flow.fire(check, "ask_unit", "xwzx01", note="请核对档案中的姓名")
    assert {d["name"]: d["status"] for d in flow.show(check)["deadlines"]}["unit_help"] == "running"
    flow.fire(check, "answer", f"{UNIT}XW02", note="档案记载姓名为孙晓明")
    result = flow.fire(check, "correct", "xwzx01", payload={"result": "信息有误已更正"}, note="姓名有误")
    assert result.to_state == "corrected"
    documents = flow.documents(check)
    assert [d["kind"] for d in documents] == ["authentication_report"]
    text = _pdf_text(PdfRenderer().pdf(flow.document_html(documents[0]["id"])[1]))
    assert "经学位中心抽查复核予以纠正" in text and "认证结论更正为：信息有误已更正" in text
    assert flow.show(report)["state"] == "reported"  # the reviewed case itself is unchanged
    assert flow.verify_audit(check).ok


def test_a_spot_check_reviews_only_a_finished_report_of_its_unit(flow):
    open_one = _sent_to_unit(flow, MASTER_2020)
    data = {"authentication_case": open_one, "cert_no": MASTER_2020, "applicant_name": "孙小明"}
    with pytest.raises(InvalidPayload) as unfinished:
        flow.open_case("spot_check", UNIT, "xwzx01", data)
    assert unfinished.value.rule == "report_issued"
    with pytest.raises(InvalidPayload) as elsewhere:
        flow.open_case("spot_check", "10635", "xwzx01", data)
    assert elsewhere.value.rule == "authentication_case_exists"
    with pytest.raises(InvalidPayload) as missing:
        flow.open_case("spot_check", UNIT, "xwzx01", {**data, "authentication_case": 999999})
    assert missing.value.field == "authentication_case"


# -- filing inside the unit: colleges collect, managing departments check (issue 8 item 1) --------------------
def test_registered_colleges_collect_and_managing_departments_check_a_filing(flow):
    flow.add_department("10635", "土木工程学院", "college")
    flow.add_department("10635", "教务处", "managing")
    flow.add_user("10635XW41", "学院采集员", "collector", "10635", department="土木工程学院")
    flow.add_user("10635XW42", "教务处校核员", "verifier", "10635", department="教务处")
    case_id = flow.open_case("filing", "10635", "10635XW01", OPEN_DATA["filing"]).case_id
    before = snapshot(flow, case_id)
    with pytest.raises(Forbidden) as not_a_college:
        flow.fire(case_id, "submit", "10635XW01", payload={"data": FILING_DATA})
    assert not_a_college.value.rule == "department_for_step" and "土木工程学院" in str(not_a_college.value)
    assert snapshot(flow, case_id) == before
    flow.fire(case_id, "submit", "10635XW41", payload={"data": FILING_DATA})
    wrong_person_code = leader_code(flow, case_id, "verify", "10635XW02")
    with pytest.raises(Forbidden) as not_managing:
        flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": wrong_person_code})
    assert not_managing.value.rule == "department_for_step"
    code = leader_code(flow, case_id, "verify", "10635XW42")
    assert (
        flow.fire(case_id, "verify", "10635XW42", payload={"authorization_code": code}).to_state == "recorded"
    )
    payload = flow.show(case_id)["payload"]
    assert (payload["collected_by"], payload["checked_by"]) == ("土木工程学院", "教务处")
