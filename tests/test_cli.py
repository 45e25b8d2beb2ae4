"""End to end through the installed `degreeflow` command, as a user types it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("degreeflow", path=str(Path(sys.executable).parent)) or "degreeflow"


@pytest.fixture
def cli(tmp_path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "DEGREEFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "DEGREEFLOW_NOW": "2026-11-20T09:00",
        "DEGREEFLOW_DATA_DIR": str(tmp_path / "var"),
    }

    def run(*args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=60)
        if ok is True:
            assert done.returncode == 0, done.stderr + done.stdout
        elif ok is False:
            assert done.returncode != 0, done.stdout
        return done

    run("init", "--demo")
    run.tmp = tmp_path  # type: ignore[attr-defined]
    return run


def test_revocation_open_then_submit_as_a_user_types_it(cli):
    opened = cli("case", "open", "revocation", "--org", "10635", "--as", "10635XW01",
                 "-f", "cert_no=1063542021000999", "-f", "name=钱某某", "-f", "conferral_date=20210625",
                 "-f", "decision_date=2026-11-18", "--json")  # fmt: skip
    case_id = json.loads(opened.stdout)["case_id"]
    fired = cli(
        "case",
        "fire",
        str(case_id),
        "submit",
        "--as",
        "10635XW01",
        "-f",
        "resolution_no=西南大学学位〔2026〕3号",
    )
    assert "draft → unit_check" in fired.stdout
    # The report encloses the committee's resolution: refused without it, naming it; uploaded with its purpose.
    refused = cli("case", "fire", str(case_id), "verify", "--as", "10635XW02", ok=False)
    assert refused.returncode == 7 and "学位评定委员会关于撤销学位的决议" in refused.stderr + refused.stdout
    scan = cli.tmp / "撤销决议.pdf"  # type: ignore[attr-defined]
    scan.write_bytes(b"%PDF-1.4\n% scan\n")
    wrong = cli("case", "attach", str(case_id), str(scan), "--as", "10635XW01", "--purpose", "决议", ok=False)
    assert wrong.returncode == 7 and "revocation_resolution" in wrong.stderr + wrong.stdout
    attached = json.loads(cli("case", "attach", str(case_id), str(scan), "--as", "10635XW01",
                              "--purpose", "revocation_resolution", "--json").stdout)  # fmt: skip
    assert (attached["purpose"], attached["purpose_label"]) == ("revocation_resolution", "学位评定委员会关于撤销学位的决议")
    verified = cli("case", "fire", str(case_id), "verify", "--as", "10635XW02")
    assert "unit_check → reported" in verified.stdout
    shown = json.loads(cli("case", "show", str(case_id), "--as", "prov50", "--json").stdout)
    assert shown["state"] == "reported" and shown["rule_set"] == "2020"
    assert [a["trigger"] for a in shown["allowed"]] == ["return", "confirm"]  # 退回 with reasons, or confirm
    assert shown["deadlines"][0]["due_date"] == "2026-11-30" and shown["deadlines"][0]["status"] == "met"
    assert shown["payload"]["conferral_date"] == "2021-06-25"


def test_refused_step_prints_why_and_changes_nothing(cli):
    opened = cli("case", "open", "photo", "--org", "10593", "--as", "10593XW01", "--json")
    case_id = str(json.loads(opened.stdout)["case_id"])
    before = cli("case", "show", case_id, "--json").stdout
    refused = cli(
        "case", "fire", case_id, "submit", "--as", "10593XW01", "-f", "academic_year=2025", ok=False
    )
    assert refused.returncode == 7
    assert "academic_year" in refused.stderr and "学年度" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    refused = cli("case", "fire", case_id, "acknowledge", "--as", "prov45", "--json", ok=False)
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "not_allowed_in_state" and refused.returncode == 3
    refused = cli("case", "fire", case_id, "submit", "--as", "10611XW01", ok=False)
    assert "organisation_scope" in refused.stderr
    assert cli("case", "show", case_id, "--json").stdout == before


def test_data_from_a_json_file(cli, tmp_path):
    data = tmp_path / "form4.json"
    data.write_text(json.dumps({"academic_year": "2025-2026", "category": "建筑学专业学位学士",
                                "people": [{"name": "甲", "major": "建筑学", "cert_no": "1059342025000001",
                                            "serial_no": "1"}]}, ensure_ascii=False), encoding="utf-8")  # fmt: skip
    opened = cli("case", "open", "photo", "--org", "10593", "--as", "10593XW01", "--json")
    case_id = str(json.loads(opened.stdout)["case_id"])
    fired = json.loads(
        cli("case", "fire", case_id, "submit", "--as", "10593XW01", "--data", str(data), "--json").stdout
    )
    assert fired["to_state"] == "filed"
    bad = cli("case", "fire", case_id, "acknowledge", "--as", "prov45", "--data", "{not json", ok=False)
    assert "--data" in bad.stderr and "JSON" in bad.stderr


def test_demo_walk_board_and_audit(cli):
    walked = cli("demo")
    assert "案件看板" in walked.stdout and "被拒绝" in walked.stdout
    cases = json.loads(cli("case", "list", "--json").stdout)
    assert len(cases) >= 7 and {c["type"] for c in cases} >= {"supplement", "amendment", "errata", "revocation",
                                                              "photo", "authentication"}  # fmt: skip
    assert json.loads(cli("audit", "verify", "--json").stdout)["ok"] is True
    filtered = json.loads(
        cli("case", "list", "--type", "authentication", "--state", "verification", "--json").stdout
    )
    assert [c["org"] for c in filtered] == ["10635"]
    assert "所有演示案件均已办结" in cli("demo").stdout or "案件看板" in cli("demo").stdout


def test_org_and_user_commands_validate(cli):
    bad = cli("org", "add", "99", "不存在的省", "--kind", "province", ok=False)
    assert "GB/T 2260" in bad.stderr
    cli("org", "add", "10002", "中国人民大学", "--kind", "unit", "--parent", "11")
    bad = cli("user", "add", "10002XW01", "王五", "--role", "reviewer", "--org", "10002", ok=False)
    assert "role" in bad.stderr
    cli("user", "add", "10002XW01", "王五", "--role", "collector", "--org", "10002")
    users = json.loads(cli("user", "list", "--org", "10002", "--json").stdout)
    assert [u["username"] for u in users] == ["10002XW01"]
    orgs = json.loads(cli("org", "list", "--json").stdout)
    assert {"code": "10002", "parent": "11"}.items() <= next(o for o in orgs if o["code"] == "10002").items()


def test_definitions_check_and_uninitialised_database(cli, tmp_path):
    assert "通过" in cli("definitions", "check").stdout
    missing = subprocess.run([EXE, "--db", f"sqlite:///{tmp_path}/empty.db", "case", "list"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode != 0 and "degreeflow init" in missing.stderr


def test_global_now_sets_the_clock(cli):
    opened = cli(
        "--now", "2026-12-31T10:00", "case", "open", "photo", "--org", "10593", "--as", "10593XW01", "--json"
    )
    case_id = str(json.loads(opened.stdout)["case_id"])
    shown = json.loads(cli("case", "show", case_id, "--json").stdout)
    assert shown["opened_at"].startswith("2026-12-31T10:00")


def test_calendar_commands(cli, tmp_path):
    due = json.loads(cli("calendar", "due", "2026-09-28", "5", "--working", "--json").stdout)
    assert (due["due_date"], due["provisional"]) == ("2026-10-10", False)
    assert "调休上班" in cli("calendar", "is-workday", "2026-02-14").stdout
    assert "暂定" in cli("calendar", "due", "2026-12-20", "30").stdout
    bad = cli("calendar", "due", "2026-02-30", "5", ok=False)
    assert "DATE" in bad.stderr and "YYYY-MM-DD" in bad.stderr
    template = tmp_path / "2027.csv"
    cli("calendar", "template", "2027", "-o", str(template))
    lines = template.read_text(encoding="utf-8").splitlines()
    template.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # 31 December is missing
    refused = cli("calendar", "import", str(template), ok=False)
    assert refused.returncode == 7 and "2027-12-31" in refused.stderr
    template.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "已导入 2027 年日历" in cli("calendar", "import", str(template)).stdout
    years = json.loads(cli("calendar", "years", "--json").stdout)
    assert years[-1]["year"] == 2027 and years[0]["year"] == 2004


def test_deadlines_sweep_and_inbox_commands(cli):
    cli("demo")
    due_soon = json.loads(
        cli("--now", "2026-12-03T09:00", "deadlines", "list", "--due-within", "3", "--json").stdout
    )
    assert [(d["case_id"], d["name"]) for d in due_soon] == [(9, "unit_answer")]
    swept = json.loads(cli("--now", "2026-12-23T09:00", "deadlines", "sweep", "--json").stdout)
    assert (swept["breaches"], swept["escalations"]) == (3, 3)
    again = json.loads(cli("--now", "2026-12-23T09:05", "deadlines", "sweep", "--json").stdout)
    assert again["breaches"] == 0
    overdue = json.loads(
        cli("--now", "2026-12-23T09:00", "deadlines", "list", "--overdue", "--org", "10635", "--json").stdout
    )
    assert {d["name"] for d in overdue} == {"unit_answer", "total"}
    assert "超期督办" in cli("inbox", "--as", "prov50").stdout
    shown = json.loads(cli("--now", "2026-12-23T09:00", "case", "show", "9", "--json").stdout)
    assert {d["name"]: d["status"] for d in shown["deadlines"]}["unit_answer"] == "breached"


def test_letter_commands(cli, tmp_path):
    cli("demo")
    listed = json.loads(cli("letter", "list", "1", "--json").stdout)
    assert [d["kind"] for d in listed] == ["supplement_application", "province_approval", "province_filing"]
    target = tmp_path / "application.pdf"
    rendered = json.loads(
        cli("letter", "render", "1", "supplement_application", "-o", str(target), "--json").stdout
    )
    assert rendered["number"] == "西大学位〔2026〕1号" and target.read_bytes().startswith(b"%PDF")
    missing = cli("letter", "render", "8", "province_filing", ok=False)
    assert "尚未签发" in missing.stderr
    again = json.loads(cli("letter", "reissue", str(listed[0]["id"]), "--as", "10593XW02", "--json").stdout)
    # The demo withdrew and re-sent its photo letter (2号 void, 3号): the next number is 4号.
    assert again["replaces"] == "西大学位〔2026〕1号" and again["number"] == "西大学位〔2026〕4号"
    packet = tmp_path / "packet.pdf"
    made = json.loads(
        cli("letter", "packet", "--org", "45", "--date", "2026-11-20", "-o", str(packet), "--json").stdout
    )
    assert made["documents"] == 2 and packet.stat().st_size > 10_000  # approval and filing of case 1
    from pypdf import PdfReader

    first_page = "".join(PdfReader(str(packet)).pages[0].extract_text().split())
    assert "用印文书清单" in first_page and "桂学位办〔2026〕1号" in first_page
    empty = cli("letter", "packet", "--org", "45", "--date", "2020-01-01", ok=False)
    assert "没有签发文书" in empty.stderr


def test_a_2024_revocation_is_verified_with_the_leaders_code_requested_from_the_cli(cli, tmp_path):
    """Seed 003 item 7: "重要操作须经主管领导授权" — the CLI asks for the code (`case authorize`), the leader reads it
    in the inbox, the verifier types it with the step."""
    import re

    opened = cli("case", "open", "revocation", "--org", "10635", "--as", "10635XW01",
                 "-f", "cert_no=1063542024000998", "-f", "name=钱某某", "-f", "conferral_date=2024-06-30",
                 "-f", "decision_date=2026-11-18", "--json")  # fmt: skip
    case_id = json.loads(opened.stdout)["case_id"]
    cli("case", "fire", str(case_id), "submit", "--as", "10635XW01", "-f", "resolution_no=西南大学学位〔2026〕9号")
    scan = tmp_path / "撤销决议.pdf"
    scan.write_bytes(b"%PDF-1.4\n% resolution\n")
    cli("case", "attach", str(case_id), str(scan), "--as", "10635XW01", "--purpose", "revocation_resolution")
    refused = cli("case", "fire", str(case_id), "verify", "--as", "10635XW02", ok=False)
    assert "授权" in refused.stderr + refused.stdout
    asked = cli("case", "authorize", str(case_id), "verify", "--as", "10635XW02")
    assert "授权码已发送给主管领导 郑国华" in asked.stdout and "authorization_code" in asked.stdout
    inbox = json.loads(cli("inbox", "--as", "10635XW04", "--json").stdout)
    code = re.search(r"授权码 (\d{6})", next(m["body"] for m in inbox if m["kind"] == "authorization"))[1]  # type: ignore[index]
    verified = cli("case", "fire", str(case_id), "verify", "--as", "10635XW02", "-f", f"authorization_code={code}")
    assert "unit_check → reported" in verified.stdout
    assert cli("case", "authorize", str(case_id), "confirm", "--as", "prov50", ok=False).returncode != 0
