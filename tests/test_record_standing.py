"""What becomes public follows the process (issue 15, item 7).

A record reaches the online query only through filing (a filing or supplement case recorded) or an import by the
Degree Center / national office (the national database). A unit's import is a working copy, not public; a unit's
import of its filed data is pending until a second person of the unit confirms it; every import — taken or
refused — is audited (who, organisation, file name, SHA-256, rows accepted and refused, status, confirmed by).
Each rule on SQLite and PostgreSQL (the `flow` and `db_url` fixtures), through the service, the CLI and HTTP.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from cases import records
from cases.degree_record import COLUMN
from db import DegreeRecord
from db.models import RecordImport
from tests.helpers import SUPPLEMENT_DATA, fire, open_case
from tests.live import Browser, serve
from tests.test_registry import person, write_csv
from workflow import Forbidden, InvalidPayload, NotFound, SeparationOfDuties

UNIT, COLLECTOR, VERIFIER, LEAD = "10635", "10635XW01", "10635XW02", "10635XW03"
CENTER = "xwzx01"
THREE = [person(i) for i in (1, 2, 3)]


def _cert(row: dict[str, str]) -> str:
    return row["学位证书编号"]


def _found(flow, row) -> bool:  # type: ignore[no-untyped-def]
    return flow.query_certificate(_cert(row), row["姓名"], client="203.0.113.9")["status"] == "found"


def _record(flow, cert: str):  # type: ignore[no-untyped-def]
    with flow.db.connect() as conn:
        return conn.execute(
            select(DegreeRecord.__table__).where(DegreeRecord.__table__.c.cert_no == cert)
        ).first()


def _auth_matches(flow, row) -> bool:  # type: ignore[no-untyped-def]
    with flow.db.connect() as conn:
        return records.compare(conn, {"cert_no": _cert(row), "applicant_name": row["姓名"]})[0]


# -- the scenario: a single collector's import is not public --------------------------------------------
def test_a_units_import_is_a_working_copy_the_online_query_does_not_find(flow, tmp_path):
    result = flow.records_import(write_csv(tmp_path / "三条.csv", THREE), as_user=COLLECTOR)
    assert (result["stored"], result["status"], result["status_label"]) == (
        3,
        "working",
        "工作副本（不公开）",
    )
    assert not any(_found(flow, row) for row in THREE)
    assert all(_record(flow, _cert(row)).status == "working" for row in THREE)
    assert not _auth_matches(flow, THREE[0])  # one person's data never make an authentication report
    # The unit sees its copy in a registry lookup, marked as what it is.
    history = flow.record_history_for(_cert(THREE[0]), COLLECTOR)
    assert (
        history["standing"] == "单位工作副本（未备案，不公开）"
        and history["import_id"] == result["import_id"]
    )
    # A number the registry holds as a copy is not imported twice (the message says it is a copy).
    again = flow.records_validate(write_csv(tmp_path / "again.csv", THREE[:1]))["problems"]
    assert [p["code"] for p in again] == ["cert_no_imported"] and "工作副本" in again[0]["message"]


def test_the_degree_centers_import_is_the_national_database_public_at_once(flow, tmp_path):
    result = flow.records_import(write_csv(tmp_path / "全国库.csv", THREE), UNIT, as_user=CENTER)
    assert (result["stored"], result["status"]) == (3, "public")
    assert all(_found(flow, row) for row in THREE) and _auth_matches(flow, THREE[0])
    assert flow.record_history(_cert(THREE[0]))["standing"] == "已备案"


# -- a unit's filed data: a second person confirms ----------------------------------------------------------------
def test_a_units_filed_data_wait_for_a_second_person_who_is_not_the_importer(flow, tmp_path):
    result = flow.records_import(write_csv(tmp_path / "历史.csv", THREE), UNIT, as_user=COLLECTOR, filed=True)
    import_id = result["import_id"]
    assert (result["status"], result["status_label"]) == ("pending", "待另一名工作人员确认")
    assert not _auth_matches(flow, THREE[0]) and not _found(flow, THREE[0])
    # The importer cannot confirm: the refusal names the person and the rule, and nothing changes.
    with pytest.raises(SeparationOfDuties) as refused:
        flow.records_confirm(import_id, COLLECTOR)
    assert refused.value.rule == "second_person" and refused.value.field == "as_user"
    assert "何莹（10635XW01）是这次导入的导入人" in refused.value.message
    assert "校核与采集应当由不同工作人员负责完成" in refused.value.message
    assert _record(flow, _cert(THREE[0])).status == "pending"
    # Another unit's verifier does not see it; a role that does not verify may not confirm.
    with pytest.raises(NotFound):
        flow.records_confirm(import_id, "10593XW02")
    with pytest.raises(Forbidden) as role:
        flow.records_confirm(import_id, LEAD)
    assert role.value.rule == "confirm_role" and "校核员" in role.value.message
    confirmed = flow.records_confirm(import_id, VERIFIER)
    assert (confirmed["status"], confirmed["confirmed_by"], confirmed["confirmed_by_name"]) == (
        "confirmed", VERIFIER, "杨帆")  # fmt: skip
    # Filed for the comparisons, still not public: only filing or the national database publish.
    assert _auth_matches(flow, THREE[0]) and not _found(flow, THREE[0])
    assert _record(flow, _cert(THREE[1])).status == "filed" and not _record(flow, _cert(THREE[1])).publishable
    with pytest.raises(InvalidPayload) as twice:
        flow.records_confirm(import_id, VERIFIER)
    assert twice.value.rule == "import_pending"
    working = flow.records_import(write_csv(tmp_path / "w.csv", [person(9)]), as_user=COLLECTOR)
    with pytest.raises(InvalidPayload):  # a working copy is not confirmed: it is not filed data
        flow.records_confirm(working["import_id"], VERIFIER)


def test_who_may_import_what(flow, tmp_path):
    path = write_csv(tmp_path / "a.csv", THREE[:1])
    cases = [
        ({}, InvalidPayload, "importer_required", "导入人"),
        ({"as_user": "prov50"}, Forbidden, "records_import_level", "不能导入学位授予信息"),
        ({"as_user": LEAD}, Forbidden, "records_import_role", "角色不能导入"),
        ({"as_user": "10593XW01"}, Forbidden, "records_import_own_unit", "只能导入本单位（10593）"),
        ({"as_user": CENTER, "filed": True}, InvalidPayload, "filed_is_for_units", "导入即公开"),
    ]
    for options, error, rule, words in cases:
        with pytest.raises(error) as refused:
            flow.records_import(path, UNIT, **options)
        assert refused.value.rule == rule and words in refused.value.message, options
    with pytest.raises(InvalidPayload) as no_unit:
        flow.records_import(path, as_user=CENTER)
    assert no_unit.value.rule == "required_field" and "学位授予单位" in no_unit.value.message
    assert _record(flow, _cert(THREE[0])) is None


# -- every import is audited -------------------------------------------------------------------------------------
def test_every_import_taken_or_refused_is_audited_with_the_files_hash_and_rows(flow, tmp_path):
    good = write_csv(tmp_path / "good.csv", THREE)
    flow.records_import(good, as_user=COLLECTOR)
    bad_rows = [person(4), person(5, **{"身份证件号码": "110105194912310021"}), person(6)]
    bad = write_csv(tmp_path / "bad.csv", bad_rows)
    with pytest.raises(InvalidPayload):
        flow.records_import(bad, UNIT, as_user=VERIFIER, filed=True)
    assert _record(flow, _cert(bad_rows[0])) is None  # the refused file left nothing behind
    skipped = flow.records_import(bad, UNIT, as_user=CENTER, skip_invalid=True)
    assert (skipped["stored"], skipped["skipped"]) == (2, 1)
    listed = {row["filename"] + ":" + row["importer"]: row for row in flow.records_imports()}
    working, refused, public = (
        listed[f"good.csv:{COLLECTOR}"],
        listed[f"bad.csv:{VERIFIER}"],
        listed[f"bad.csv:{CENTER}"],
    )
    assert (
        working["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
        and working["size"] == good.stat().st_size
    )
    assert (working["accepted"], working["refused"], working["status"], working["org_name"]) == (
        3,
        0,
        "working",
        "西南大学",
    )
    assert (refused["accepted"], refused["refused"], refused["status"], refused["kind"]) == (
        0,
        1,
        "refused",
        "filed",
    )
    assert (
        "第 3 行" in refused["message"] and refused["sha256"] == hashlib.sha256(bad.read_bytes()).hexdigest()
    )
    assert (public["accepted"], public["refused"], public["status"], public["org_name"]) == (
        2, 1, "public", "教育部学位与研究生教育发展中心")  # fmt: skip
    assert working["at"] == "2026-11-20T09:00:00+08:00" and working["confirmed_by"] is None
    # Who sees which: a unit its own imports, a province its units', another unit none of these.
    assert len(flow.records_imports(COLLECTOR)) == 3 and flow.records_imports("10593XW01") == []
    assert len(flow.records_imports("prov50")) == 3 and flow.records_imports("prov45") == []


def test_the_import_audit_cannot_be_changed_or_removed(flow, tmp_path):
    result = flow.records_import(write_csv(tmp_path / "h.csv", THREE), as_user=COLLECTOR, filed=True)
    flow.records_confirm(result["import_id"], VERIFIER)
    for statement in (
        "UPDATE record_imports SET accepted = 99",
        "UPDATE record_imports SET status = 'importing'",
        "DELETE FROM record_imports",
        "UPDATE record_import_confirmations SET actor_id = 1",
        "DELETE FROM record_import_confirmations",
    ):
        with pytest.raises(DBAPIError, match="append-only"), flow.db.begin() as conn:
            conn.execute(text(statement))
    assert (
        flow.records_imports()[0]["accepted"] == 3 and flow.records_imports()[0]["confirmed_by"] == VERIFIER
    )


# -- filing publishes, and replaces a unit's copy ---------------------------------------------------------------
def test_a_supplement_recorded_files_and_publishes_the_units_working_copy(flow, tmp_path):
    rows = [{COLUMN[k]: v for k, v in row.items()} for row in SUPPLEMENT_DATA]
    flow.records_import(write_csv(tmp_path / "副本.csv", rows), as_user="10593XW01")
    assert not _found(flow, rows[0])
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    fire(flow, case_id, "supplement", "approve", "province")
    # The copy does not stop the supplement's data (its recording files them).
    fire(flow, case_id, "supplement", "submit_data", "verifier", data=SUPPLEMENT_DATA)
    fire(flow, case_id, "supplement", "accept", "province")
    fire(flow, case_id, "supplement", "record", "center")
    assert all(_found(flow, row) for row in rows)
    history = flow.record_history(_cert(rows[0]))
    assert history["source"] == f"case:{case_id}" and history["standing"] == "已备案"
    assert [(c["action"], c["old"], c["new"]) for c in history["changes"]] == [
        ("filed", "单位工作副本", "已备案")
    ]


# -- the CLI -----------------------------------------------------------------------------------------------------
EXE = str(Path(sys.executable).with_name("degreeflow"))


def test_cli_imports_confirms_and_lists(db_url, tmp_path):
    env = {**os.environ, "DEGREEFLOW_DATABASE_URL": db_url, "DEGREEFLOW_NOW": "2026-11-20T09:00"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("init", "--demo").returncode == 0
    path = write_csv(tmp_path / "历史.csv", THREE)
    missing = run("records", "import", str(path), "--org", UNIT)
    assert missing.returncode == 7 and "导入人" in missing.stderr + missing.stdout
    done = run("records", "import", str(path), "--as", COLLECTOR, "--filed", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "pending"
    import_id = str(result["import_id"])
    same = run("records", "confirm", import_id, "--as", COLLECTOR)
    assert same.returncode == 5 and "不能确认自己的导入" in same.stderr + same.stdout
    assert "校核与采集应当由不同工作人员负责完成" in same.stderr + same.stdout
    assert run("query", _cert(THREE[0]), THREE[0]["姓名"]).returncode == 4  # not public
    confirmed = run("records", "confirm", import_id, "--as", VERIFIER)
    assert confirmed.returncode == 0 and "已由 杨帆 确认" in confirmed.stdout
    assert run("query", _cert(THREE[0]), THREE[0]["姓名"]).returncode == 4  # confirmed: still not public
    national = write_csv(tmp_path / "全国库.csv", [person(8)])
    assert run("records", "import", str(national), "--org", UNIT, "--as", CENTER).returncode == 0
    assert run("query", _cert(person(8)), person(8)["姓名"]).returncode == 0
    listed = run("records", "imports", "--as", COLLECTOR)
    assert listed.returncode == 0
    for words in (
        "历史.csv",
        "全国库.csv",
        "已确认（不公开）",
        "已公开",
        "杨帆",
        "何莹",
        result["sha256"][:12],
    ):
        assert words in listed.stdout, words
    rows = json.loads(run("records", "imports", "--json").stdout)
    assert [(r["filename"], r["status"], r["accepted"]) for r in rows] == [
        ("全国库.csv", "public", 1), ("历史.csv", "confirmed", 3)]  # fmt: skip


# -- over HTTP ---------------------------------------------------------------------------------------------------
def _upload(browser: Browser, path: Path, **data: str) -> dict:
    browser.get("/records")
    response = browser.post("/records/import", data=data,
                            files={"file": (path.name, path.read_bytes(), "text/csv")})  # fmt: skip
    assert response.status_code == 303, response.text
    job_url = response.headers["location"]
    for _ in range(400):
        status = browser.get(job_url + ".json").json()
        if status["finished"]:
            return status
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def test_web_a_units_import_is_not_public_and_the_second_person_confirms(flow, tmp_path):
    with serve(flow, tmp_path / "data") as site:
        collector = Browser(site)
        collector.login(COLLECTOR)
        working = _upload(collector, write_csv(tmp_path / "三条.csv", THREE, encoding="utf-8"))
        assert working["result"]["status"] == "working"
        anonymous = Browser(site).get("/query", params={"cert_no": _cert(THREE[0]), "name": THREE[0]["姓名"]})
        assert "未查询到该学位证书信息" in anonymous.text
        history = write_csv(tmp_path / "历史.csv", [person(4)], encoding="utf-8")
        pending = _upload(collector, history, kind="filed")["result"]
        assert pending["status"] == "pending"
        page = collector.get("/records").text
        for words in ("导入记录", "三条.csv", "工作副本（不公开）", "待另一名工作人员确认", "待本单位另一名工作人员确认",
                      hashlib.sha256(history.read_bytes()).hexdigest()[:12]):  # fmt: skip
            assert words in page, words
        assert f"/records/imports/{pending['import_id']}/confirm" not in page  # no button for the importer
        assert "kind" not in page.split('id="imports"')[1]  # no field keys on the page
        # Pressed all the same: refused next to the import, nothing changed.
        refused = collector.post(f"/records/imports/{pending['import_id']}/confirm")
        assert refused.status_code == 403
        assert "不能确认自己的导入" in refused.text and "校核与采集应当由不同工作人员负责完成" in refused.text
        assert _record(flow, _cert(person(4))).status == "pending"
        verifier = Browser(site)
        verifier.login(VERIFIER)
        assert f"/records/imports/{pending['import_id']}/confirm" in verifier.get("/records").text
        done = verifier.post(f"/records/imports/{pending['import_id']}/confirm")
        assert done.status_code == 303
        page = verifier.get("/records").text
        assert "已确认导入记录" in page and "已确认（不公开）" in page and "杨帆" in page
        assert _record(flow, _cert(person(4))).status == "filed"
        # The Degree Center's import is public at once.
        center = Browser(site)
        center.login(CENTER)
        assert _upload(center, write_csv(tmp_path / "全国库.csv", [person(5)], encoding="utf-8"),
                       org=UNIT)["result"]["status"] == "public"  # fmt: skip
        found = Browser(site).get("/query", params={"cert_no": _cert(person(5)), "name": person(5)["姓名"]})
        assert person(5)["姓名"] in found.text and "未查询到" not in found.text
        # A province does not import; a leader's role does not import either.
        leader = Browser(site)
        leader.login("10635XW04")
        leader.get("/records")
        assert (
            leader.post("/records/import", files={"file": ("a.csv", b"x\n", "text/csv")}).status_code == 403
        )
    with flow.db.connect() as conn:
        statuses = sorted(conn.execute(select(RecordImport.__table__.c.status)).scalars())
    assert statuses == ["pending", "public", "working"]  # confirmed through record_import_confirmations


def test_registry_checks_rely_on_filed_records_only(flow, tmp_path):
    """A case about a certificate the registry holds only as a unit's working copy (or an unconfirmed import) is
    flagged as one without a record, and its recording changes nothing; once confirmed, the record counts."""
    from cases.registry_checks import MISSING_NOTICE

    row = person(7, **{"姓名": "张磊"})
    working = flow.records_import(write_csv(tmp_path / "w.csv", [row]), as_user=COLLECTOR)
    facts = {
        "cert_no": _cert(row),
        "name": "张磊",
        "conferral_date": "2024-06-30",
        "decision_date": "2026-11-18",
    }
    first = flow.open_case("revocation", UNIT, COLLECTOR, facts).case_id
    assert flow.show(first)["notice"] == MISSING_NOTICE
    with flow.db.connect() as conn:
        assert records.registry_record(conn, _cert(row)) is None
        assert not records.revoke(conn, _cert(row), first, 1, flow.clock.now())  # a copy is not revoked
    other = person(8, **{"姓名": "张磊"})
    pending = flow.records_import(write_csv(tmp_path / "f.csv", [other]), as_user=COLLECTOR, filed=True)
    flow.records_confirm(pending["import_id"], VERIFIER)
    second = flow.open_case("revocation", UNIT, COLLECTOR, {**facts, "cert_no": _cert(other)}).case_id
    assert flow.show(second)["notice"] == ""
    assert working["status"] == "working"
