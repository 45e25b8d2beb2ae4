"""The registry: checked import (CSV in GB18030, XLSX), cases acting on records with history, query, matching."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from cases import authentication, records
from cases.degree_record import COLUMN, FIELDS
from db import DegreeRecord, QueryLog
from tests.helpers import attach_required, fire, leader_code, open_case
from tests.test_degree_record import VALID
from workflow import InvalidPayload

CENTER = "xwzx01"  # the Degree Center: its import is the national database


def person(i: int, **change: str) -> dict[str, str]:
    return {
        **VALID,
        "姓名": f"张{'伟芳娜敏静丽强磊军洋'[i % 10]}",
        "学位证书编号": f"10635320240{i:05d}",
        **change,
    }


def write_csv(path, rows, encoding="gb18030"):
    columns = [column for _, column, _ in FIELDS if any(column in r for r in rows)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path, rows):
    workbook = Workbook()
    sheet = workbook.active
    columns = list(rows[0])
    sheet.append(columns)
    for row in rows:
        sheet.append([row[c] for c in columns])
    workbook.save(path)
    return path


def count(flow):
    with flow.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(DegreeRecord.__table__)).scalar_one()


def test_gb18030_csv_imports(flow, tmp_path):
    path = write_csv(tmp_path / "批次.csv", [person(i) for i in range(1, 6)])
    assert flow.records_validate(path)["problems"] == []
    assert flow.records_import(path, "10635", as_user=CENTER)["stored"] == 5
    assert count(flow) == 5


def test_xlsx_imports_and_exports(flow, tmp_path):
    path = write_xlsx(tmp_path / "records.xlsx", [person(i) for i in range(1, 4)])
    assert flow.records_import(path, "10635", as_user=CENTER)["stored"] == 3
    out = tmp_path / "export.xlsx"
    assert flow.records_export(out, "10635") == 3
    sheet = load_workbook(out).active
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["姓名", "性别"] and "学位证书编号" in header


def test_one_bad_row_stores_nothing_and_the_report_names_it(flow, tmp_path):
    rows = [person(1), person(2, **{"身份证件号码": "110105194912310021"}), person(3)]
    path = write_csv(tmp_path / "bad.csv", rows, encoding="utf-8")
    with pytest.raises(InvalidPayload) as refused:
        flow.records_import(path, "10635", as_user=CENTER)
    assert "第 3 行" in refused.value.message and "未导入任何记录" in refused.value.message
    assert count(flow) == 0
    report = load_workbook(tmp_path / "bad.错误报告.xlsx").active
    assert [c.value for c in report[2]][:3] == [3, "身份证件号码", "id_number"]
    # --skip-invalid stores the good rows only
    result = flow.records_import(path, "10635", skip_invalid=True, as_user=CENTER)
    assert {k: result[k] for k in ("stored", "skipped", "report")} == {
        "stored": 2, "skipped": 1, "report": str(tmp_path / "bad.错误报告.xlsx")}  # fmt: skip


def test_duplicates_and_other_units_are_refused(flow, tmp_path):
    path = write_csv(tmp_path / "a.csv", [person(1)])
    flow.records_import(path, "10635", as_user=CENTER)
    problems = flow.records_validate(path)["problems"]
    assert [p["code"] for p in problems] == ["cert_no_filed"]
    with pytest.raises(InvalidPayload):
        flow.records_import(write_csv(tmp_path / "b.csv", [person(5)]), "10593", as_user=CENTER)


NAME = "张磊"  # person(7)


def _filed(flow, tmp_path, **change):
    # The Degree Center's import: the national database, public at once (a unit's import is not).
    flow.records_import(write_csv(tmp_path / "one.csv", [person(7, **change)]), "10635", as_user=CENTER)
    return person(7, **change)["学位证书编号"]


def test_amendment_changes_the_record_and_keeps_the_old_value(flow, tmp_path):
    cert = _filed(
        flow,
        tmp_path,
        **{"获学位日期": "20190630", "学位证书编号": "1063532019000007", "毕业日期": "20190625"},
    )
    case_id = flow.open_case("amendment", "10635", "10635XW01",
                             {"cert_no": cert, "conferral_date": "2019-06-30", "name": NAME}).case_id  # fmt: skip
    attach_required(flow, case_id, "submit")
    flow.fire(case_id, "submit", "10635XW01", payload={"field": "major", "old_value": "土木工程", "new_value": "土木工程（桥梁）",
                                                        "reason": "专业名称不全", "proofs": ["学位证书复印件"]})  # fmt: skip
    flow.fire(case_id, "approve", "prov50")
    flow.fire(case_id, "record", "xwzx01")
    history = flow.record_history(cert)
    assert history["data"]["major"] == "土木工程（桥梁）"
    (change,) = history["changes"]
    assert (change["case_id"], change["field_label"], change["old"], change["new"]) == (
        case_id,
        "学科/专业名称",
        "土木工程",
        "土木工程（桥梁）",
    )


def test_revocation_removes_the_record_from_query(flow, tmp_path):
    cert = _filed(flow, tmp_path)
    assert flow.query_certificate(cert, NAME)["status"] == "found"
    case_id = flow.open_case("revocation", "10635", "10635XW01", {"cert_no": cert, "name": NAME,
                             "conferral_date": "2024-06-30", "decision_date": "2026-11-18"}).case_id  # fmt: skip
    flow.fire(case_id, "submit", "10635XW01", payload={"resolution_no": "西南大学学位〔2026〕3号"})
    code = leader_code(flow, case_id, "verify", "10635XW02")  # 2024 rules: the leader's one-time code
    attach_required(flow, case_id, "verify")
    flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": code})
    flow.fire(case_id, "confirm", "prov50")
    flow.fire(case_id, "revoke", "xwzx01")
    assert flow.query_certificate(cert, NAME)["status"] == "not_found"
    assert flow.record_history(cert)["status"] == "revoked"


def test_query_shows_only_a_certificate_masks_the_id_and_limits_anonymous_callers(flow, tmp_path, clock):
    cert = _filed(flow, tmp_path)
    answer = flow.query_certificate(cert, NAME, client="1.2.3.4")
    assert answer["record"]["身份证件号码"] == "1101**********002X"
    assert "出生日期" not in answer["record"] and answer["record"]["学位证书编号"] == cert
    assert flow.query_certificate(cert, "张三", client="1.2.3.4")["status"] == "not_found"
    for _ in range(8):
        flow.query_certificate(cert, NAME, client="1.2.3.4")
    assert flow.query_certificate(cert, NAME, client="1.2.3.4")["status"] == "limited"
    assert flow.query_certificate(cert, NAME, client="5.6.7.8")["status"] == "found"
    assert flow.query_certificate(cert, NAME, client="10635", member=True)["status"] == "found"
    clock.set(clock.now() + timedelta(minutes=2))
    assert flow.query_certificate(cert, NAME, client="1.2.3.4")["status"] == "found"
    with flow.db.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(QueryLog.__table__)).scalar_one()
    assert logged == 14


def test_authentication_matches_the_registry(flow, tmp_path):
    cert = _filed(flow, tmp_path)
    case_id = flow.open_case("authentication", "10635", "xwzx01",
                             {"applicant_name": NAME, "cert_no": cert, "id_number": "11010519491231002X"}).case_id  # fmt: skip
    assert flow.fire(case_id, "check", "xwzx01").to_state == "reported"
    assert [d["kind"] for d in flow.documents(case_id)] == ["authentication_report"]
    other = flow.open_case("authentication", "10635", "xwzx01",
                           {"applicant_name": "张弓", "cert_no": cert, "conferral_date": "2024-07-01"}).case_id  # fmt: skip
    assert flow.fire(other, "check", "xwzx01").to_state == "comparing"
    assert flow.show(other)["payload"]["comparison"] == ["姓名", "获学位日期"]
    flow.fire(other, "send_to_unit", "xwzx01")
    _, html = flow.document_html(flow.latest_document(other, "verification_feedback"))
    assert "姓名、获学位日期" in html


def test_the_comparator_is_installed_by_the_service(flow):
    assert authentication._comparator is records.compare


def test_column_names_are_the_filling_rules(flow):
    assert COLUMN["cert_no"] == "学位证书编号" and COLUMN["unit_code"] == "学位授予单位码"


def test_supplement_data_are_checked_records_and_filed_when_recorded(flow):
    from tests.helpers import SUPPLEMENT_DATA

    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    fire(flow, case_id, "supplement", "approve", "province")
    broken = [dict(SUPPLEMENT_DATA[0]), {**SUPPLEMENT_DATA[1], "gender": "女"}]  # the ID number says 男
    with pytest.raises(InvalidPayload) as refused:
        fire(flow, case_id, "supplement", "submit_data", "verifier", data=broken)
    assert refused.value.rule == "gender_mismatch" and "第 2 条" in refused.value.message
    # Chinese column names are accepted too.
    chinese = [{COLUMN[k]: v for k, v in row.items()} for row in SUPPLEMENT_DATA]
    fire(flow, case_id, "supplement", "submit_data", "verifier", data=chinese)
    fire(flow, case_id, "supplement", "accept", "province")
    assert count(flow) == 0
    fire(flow, case_id, "supplement", "record", "center")
    assert count(flow) == 2
    history = flow.record_history("1059342023001101")
    assert history["source"] == f"case:{case_id}" and history["changes"][0]["action"] == "filed"
    assert flow.query_certificate("1059342023001102", "莫文杰")["status"] == "found"
