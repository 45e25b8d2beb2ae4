"""The web application over real HTTP (uvicorn on loopback) on SQLite and PostgreSQL: sign-in, CSRF, scope,
forms, the JSON API and its error shape, conflicts, uploads, the online query, the records import job."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from db import Attachment, Case, LoginAttempt
from degreeflow.settings import Settings
from degreeflow.web.app import create_app
from scheduler.calendar import DateOutOfRange
from tests.helpers import OPEN_DATA
from tests.live import Api, Browser, serve
from tests.test_degree_record import VALID

ROOT = Path(__file__).resolve().parent.parent

REVOCATION = OPEN_DATA["revocation"]


@pytest.fixture
def site(flow, tmp_path):  # type: ignore[no-untyped-def]
    with serve(flow, tmp_path / "data") as base:
        yield base


def count(flow, table) -> int:  # type: ignore[no-untyped-def]
    with flow.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table.__table__)).scalar_one())


def open_revocation(api: Api, **extra: str) -> dict:
    response = api.post("/cases", json={"type": "revocation", "data": {**REVOCATION, **extra}})
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    return body["error"]


def test_pages_need_sign_in_and_the_api_says_so_in_its_error_shape(site):
    browser = Browser(site)
    response = browser.get("/queue")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/queue"
    api = Api(site)
    response = api.get("/me")
    assert response.status_code == 401 and error_of(response)["code"] == "not_signed_in"
    assert "学位证书网上查询" in browser.get("/query").text  # the online query is public


def test_sign_in_lands_on_the_queue_and_wrong_passwords_are_throttled(flow, site):
    flow.open_case("revocation", "10635", "10635XW01", REVOCATION)
    browser = Browser(site)
    response = browser.login("10635XW01")
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    queue = browser.get("/queue").text
    assert "待我办理" in queue and "钱某某" in queue and "何莹" in queue

    intruder = Browser(site)
    for _ in range(5):
        refused = intruder.login("10635XW02", "wrong-password")
        assert refused.status_code == 401 and "用户名或密码不正确" in refused.text
    locked = intruder.login("10635XW02")  # even the right password, while locked
    assert locked.status_code == 401 and "锁定" in locked.text
    assert count(flow, LoginAttempt) == 6  # the refused-while-locked attempt is not checked or recorded
    assert intruder.get("/queue").status_code == 303


def test_every_form_needs_the_csrf_token(flow, site):
    browser = Browser(site)
    browser.login("10635XW01")
    before = count(flow, Case)
    response = browser.client.post("/cases/new/revocation", data={**REVOCATION})
    assert response.status_code == 403 and "CSRF" in response.text
    response = browser.client.post("/cases/new/revocation", data={**REVOCATION, "csrf_token": "forged"})
    assert response.status_code == 403
    assert count(flow, Case) == before
    api = Api(site, "10635XW01")
    del api.client.headers["X-CSRF-Token"]
    response = api.post("/cases", json={"type": "revocation", "data": REVOCATION})
    assert response.status_code == 403 and error_of(response)["field"] == "X-CSRF-Token"
    assert count(flow, Case) == before


def test_a_bad_value_is_shown_next_to_its_field_and_nothing_is_stored(flow, site):
    browser = Browser(site)
    browser.login("10635XW01")
    browser.get("/cases/new/revocation")
    before = count(flow, Case)
    response = browser.post("/cases/new/revocation", {**REVOCATION, "conferral_date": "2021-13-45"})
    assert response.status_code == 422
    assert 'id="err-conferral_date"' in response.text and "日期格式应为" in response.text
    assert 'value="钱某某"' in response.text  # what the user typed is kept
    response = browser.post("/cases/new/revocation", {**REVOCATION, "id_number": "110105199601010023"})
    assert response.status_code == 422 and 'id="err-id_number"' in response.text and "校验位" in response.text
    response = browser.post("/cases/new/revocation", {**REVOCATION, "cert_no": "1000142021000321"})
    assert response.status_code == 422 and 'id="err-cert_no"' in response.text and "10635" in response.text
    assert count(flow, Case) == before
    response = browser.post("/cases/new/revocation", dict(REVOCATION))
    assert response.status_code == 303
    case_page = browser.get(response.headers["location"]).text
    assert "已新建撤销案件" in case_page and "提交撤销报告" in case_page and "<svg" in case_page


def test_another_organisations_case_is_not_found_on_pages_api_documents_and_files(flow, site):
    owner = Api(site, "10635XW01")
    case = open_revocation(owner)
    other = Browser(site)
    other.login("10593XW01")
    assert other.get(f"/cases/{case['id']}").status_code == 404
    assert other.get(f"/cases/{case['id']}/diagram.svg").status_code == 404
    assert f'href="/cases/{case["id"]}"' not in other.get("/cases?q=钱某某").text
    stranger = Api(site, "10593XW01")
    response = stranger.get(f"/cases/{case['id']}")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = stranger.post(f"/cases/{case['id']}/steps/submit", json={"data": {"resolution_no": "x"}})
    assert response.status_code == 404
    other_province = Api(site, "prov45")
    assert other_province.get(f"/cases/{case['id']}").status_code == 404
    assert Api(site, "prov50").get(f"/cases/{case['id']}").status_code == 200
    assert Api(site, "xwb01").get(f"/cases/{case['id']}").status_code == 200


def test_api_walks_a_revocation_and_serves_its_letter_as_a_pdf(flow, site):
    unit = Api(site, "10635XW01")
    case = open_revocation(unit)
    assert [a["trigger"] for a in case["allowed"]][0] == "submit"
    response = unit.post(f"/cases/{case['id']}/steps/submit", json={"data": {"resolution_no": "西南大学学位〔2026〕3号"},
                                                                    "version": case["version"]})  # fmt: skip
    assert response.status_code == 200, response.text
    # The report encloses the committee's resolution: refused without it, then uploaded with its purpose.
    refused = Api(site, "10635XW02").post(f"/cases/{case['id']}/steps/verify", json={})
    assert refused.status_code == 422 and error_of(refused)["field"] == "attachments"
    assert error_of(refused)["code"] == "invalid_payload" and "学位评定委员会关于撤销学位的决议" in error_of(refused)["message"]
    scan = ("撤销决议.pdf", b"%PDF-1.4\n% scan\n", "application/pdf")
    unknown = unit.post(f"/cases/{case['id']}/attachments", files={"file": scan}, data={"purpose": "决议"})
    assert unknown.status_code == 422 and error_of(unknown)["field"] == "purpose"
    uploaded = unit.post(f"/cases/{case['id']}/attachments", files={"file": scan},
                         data={"purpose": "revocation_resolution"})  # fmt: skip
    assert uploaded.status_code == 201 and uploaded.json()["purpose_label"] == "学位评定委员会关于撤销学位的决议"
    shown = Api(site, "10635XW02").get(f"/cases/{case['id']}").json()
    (verify,) = [a for a in shown["allowed"] if a["trigger"] == "verify"]
    assert [(n["purpose"], n["uploaded"]) for n in verify["attachments"]] == [("revocation_resolution", 1)]
    assert [a["purpose"] for a in shown["attachments"]] == ["revocation_resolution"]
    for username, trigger in [("10635XW02", "verify"), ("prov50", "confirm"), ("xwb01", "revoke")]:
        api = Api(site, username)
        queue = api.get("/queue").json()
        assert case["id"] in [c["id"] for c in queue["cases"]], (username, queue)
        response = api.post(f"/cases/{case['id']}/steps/{trigger}", json={"note": "同意"})
        assert response.status_code == 200, response.text
    final = unit.get(f"/cases/{case['id']}").json()
    assert final["state"] == "revoked" and final["closed_at"]
    documents = final["documents"]
    assert documents and documents[0]["kind"] == "revocation_report"
    pdf = unit.get(f"/documents/{documents[0]['id']}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert documents[0]["number"] in text and "钱某某" in text
    assert "2.学位评定委员会关于撤销学位的决议" in "".join(text.split())  # the attachment list names the upload
    assert Api(site, "10593XW01").get(f"/documents/{documents[0]['id']}.pdf").status_code == 404


def test_two_people_acting_on_one_version_get_one_success_and_one_conflict(flow, site):
    case = open_revocation(Api(site, "10635XW01"))
    first, second = Api(site, "10635XW01"), Api(site, "10635XW03")
    body = {"data": {"resolution_no": "西南大学学位〔2026〕3号"}, "version": case["version"]}
    assert first.post(f"/cases/{case['id']}/steps/submit", json=body).status_code == 200
    response = second.post(f"/cases/{case['id']}/steps/submit", json=body)
    assert response.status_code == 409 and error_of(response)["code"] == "conflict"
    assert "请刷新" in error_of(response)["message"]
    # The page form carries the version too: a stale page gets a clear message, not a second step.
    browser = Browser(site)
    browser.login("10635XW01")
    browser.get(f"/cases/{case['id']}")
    stale = browser.post(f"/cases/{case['id']}/steps/submit", {"version": str(case["version"]),
                                                                 "resolution_no": "x"})  # fmt: skip
    assert stale.status_code in (409,)


def test_api_errors_name_the_field_in_chinese(site):
    api = Api(site, "10635XW01")
    response = api.post(
        "/cases", json={"type": "revocation", "data": {**REVOCATION, "decision_date": "昨天"}}
    )
    error = error_of(response)
    assert (
        response.status_code == 422
        and error["field"] == "decision_date"
        and "撤销决定日期" in error["message"]
    )
    response = api.post("/cases", json={"type": "nonsense", "data": {}})
    assert response.status_code == 404 and error_of(response)["field"] == "type"
    response = api.post("/cases", json={"type": 42})
    assert response.status_code == 422 and error_of(response)["code"] == "invalid_request"
    assert api.get("/cases/not-a-number").status_code == 422
    with httpx.Client() as client:
        spec = client.get(site + "/api/openapi.json")
    assert spec.status_code == 200 and "/api/v1/cases/{case_id}/steps/{trigger}" in spec.json()["paths"]


def test_attachments_are_checked_by_content_and_stored_under_a_safe_name(flow, site, tmp_path):
    case = open_revocation(Api(site, "10635XW01"))
    browser = Browser(site)
    browser.login("10635XW01")
    browser.get(f"/cases/{case['id']}")
    url = f"/cases/{case['id']}/attachments"
    bad = browser.post(url, files={"file": ("virus.exe", b"MZ\x90\x00", "application/octet-stream")})
    assert bad.status_code == 422 and "只接受" in bad.text
    fake = browser.post(url, files={"file": ("决议.pdf", b"<script>alert(1)</script>", "application/pdf")})
    assert fake.status_code == 422 and "内容不是 pdf" in fake.text
    pdf = b"%PDF-1.4\n% test\n"
    good = browser.post(url, files={"file": ("../../etc/撤销决议.pdf", pdf, "application/pdf")})
    assert good.status_code == 303
    page = browser.get(f"/cases/{case['id']}").text
    assert "撤销决议.pdf" in page and "../" not in page.split("附件")[1][:2000]
    with flow.db.connect() as conn:
        row = conn.execute(select(Attachment.__table__)).one()
    assert row.filename == "撤销决议.pdf" and "/" not in row.stored_name
    stored = tmp_path / "data" / "attachments" / row.stored_name
    assert stored.read_bytes() == pdf
    download = browser.get(f"{url}/{row.id}")
    assert download.status_code == 200 and download.content == pdf
    other = Browser(site)
    other.login("10593XW01")
    assert other.get(f"{url}/{row.id}").status_code == 404


def test_online_query_limits_anonymous_callers_but_not_members(flow, site, tmp_path):
    path = tmp_path / "records.csv"
    record = {**VALID, "学位证书编号": "1063532024000001", "姓名": "张伟"}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(record))
        writer.writeheader()
        writer.writerow(record)
    flow.records_import(path, "10635", as_user="xwzx01")  # the national database: public at once
    anonymous = Api(site)
    answers = [
        anonymous.get("/query", params={"cert_no": "1063532024000001", "name": "张伟"}) for _ in range(10)
    ]
    assert all(a.status_code == 200 and a.json()["status"] == "found" for a in answers)
    assert "*" in answers[0].json()["record"]["身份证件号码"]
    limited = anonymous.get("/query", params={"cert_no": "1063532024000001", "name": "张伟"})
    assert limited.status_code == 429 and error_of(limited)["code"] == "rate_limited"
    member = Api(site, "10635XW01")
    assert member.get("/query", params={"cert_no": "1063532024000001", "name": "张伟"}).status_code == 200
    page = Browser(site).get("/query", params={"cert_no": "1063532024000001", "name": "张伟"})
    assert page.status_code == 429 and "查询过于频繁" in page.text


def test_records_import_runs_as_a_job_with_progress_and_an_error_report(flow, site, tmp_path):
    browser = Browser(site)
    browser.login("10635XW01")
    browser.get("/records")
    rows = [{**VALID, "学位证书编号": f"10635320240000{i:02d}", "姓名": "张伟"} for i in range(1, 4)]
    rows[1]["身份证件号码"] = "110105199601010023"  # wrong check digit
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    response = browser.post(
        "/records/import", files={"file": ("批次.csv", buffer.getvalue().encode(), "text/csv")}
    )
    assert response.status_code == 303
    job_url = response.headers["location"]
    for _ in range(200):
        status = browser.get(job_url + ".json").json()
        if status["finished"]:
            break
        time.sleep(0.05)
    assert status["finished"] and status["error"] and status["report"] and status["total"] == 3
    assert "第 3 行" in status["error"]["message"]
    report = browser.get(job_url + "/report.xlsx")
    assert report.status_code == 200 and report.content[:2] == b"PK"
    assert "未导入" in browser.get(job_url).text
    assert Browser(site).get(job_url).status_code == 303  # someone else: sign in first


def test_overview_for_reviewers_only(flow, site):
    open_revocation(Api(site, "10635XW01"))
    browser = Browser(site)
    browser.login("prov50")
    page = browser.get("/overview")
    assert page.status_code == 200 and "撤销" in page.text and "逾期案件" in page.text
    unit = Browser(site)
    unit.login("10635XW01")
    assert unit.get("/overview").status_code == 404


def test_a_date_the_calendar_cannot_count_from_is_a_422_not_a_500(flow, site, monkeypatch):
    """Field dates are bounded before a deadline is counted; a date error from deeper down still answers
    in the one error shape."""

    def too_far(*args, **kwargs):
        raise DateOutOfRange("日期超出可计算范围：9999-12-31 之后", field="decision_date")

    monkeypatch.setattr(flow, "overview", too_far)
    response = Api(site, "prov50").get("/overview")
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_payload",
            "message": "日期超出可计算范围：9999-12-31 之后",
            "field": "decision_date",
        }
    }
    browser = Browser(site)
    browser.login("prov50")
    page = browser.get("/overview")
    assert page.status_code == 422 and "日期超出可计算范围" in page.text


def test_the_application_refuses_a_placeholder_secret_outside_demo_mode(flow, tmp_path):
    with pytest.raises(RuntimeError, match="DEGREEFLOW_SECRET_KEY"):
        create_app(flow, Settings(demo=False, secret_key="change-me"))
    create_app(flow, Settings(demo=False, secret_key="x" * 40, data_dir=str(tmp_path)))


def test_degreeflow_serve_starts_the_demo_and_refuses_a_placeholder_secret(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests.live import free_port, wait_ready

    cli = str(Path(sys.executable).parent / "degreeflow")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEGREEFLOW_DATA_DIR": str(tmp_path / "data")}
    refused = subprocess.run([cli, "--db", f"sqlite:///{tmp_path}/a.db", "serve"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=60)  # fmt: skip
    assert refused.returncode != 0 and "DEGREEFLOW_SECRET_KEY" in refused.stderr + refused.stdout
    port = free_port()
    server = subprocess.Popen([cli, "--db", f"sqlite:///{tmp_path}/b.db", "serve", "--demo", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)  # fmt: skip
    try:
        page = wait_ready(f"http://127.0.0.1:{port}")
        assert page.status_code == 200 and "10635XW01" in page.text
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/" in output and "demo12345" in output and "10635XW02" in output


def test_departments_page_forms_and_fee_statement(flow, site):
    flow.add_department("10611", "学位办公室", "lead", head_name="赵主任")
    flow.add_department("10611", "研究生院", "verification", levels=["硕士", "博士"])
    flow.add_user(
        "10611XW13",
        "研究生核查",
        "checker",
        "10611",
        department="研究生院",
        contact={"mobile": "13900000000"},
    )
    unit = Browser(site)
    unit.login("10611XW01")
    listed = unit.get("/departments")
    assert listed.status_code == 200 and "研究生院" in listed.text and "学位层级：硕士、博士" in listed.text
    assert "研究生核查" in listed.text and "13900000000" in listed.text
    forms = unit.get("/departments/forms.pdf")
    assert forms.status_code == 200 and forms.headers["content-type"] == "application/pdf"
    text = "".join("".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(forms.content)).pages)
    assert "学位信息核查部门及账号使用人登记表" in text and "研究生核查" in text
    assert unit.get("/departments", params={"unit": "10635"}).status_code == 404
    # A task answered by the department is counted for the fee statement (the Center sees every unit).
    case_id = flow.open_case("authentication", "10611", "xwzx01", {"applicant_name": "孙小明",
                                                                     "cert_no": "1061132020000556"}).case_id  # fmt: skip
    flow.fire(case_id, "check", "xwzx01")
    flow.fire(case_id, "send_to_unit", "xwzx01")
    flow.fire(case_id, "answer", "10611XW13", payload={"result": "信息一致"})
    center = Browser(site)
    center.login("xwzx01")
    fees = center.get("/fees", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert fees.status_code == 200 and "研究生院" in fees.text and "10611" in fees.text
    book = center.get("/fees.xlsx", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.content)).active
    row = [c.value for c in sheet[3]]
    assert (row[0], row[2], row[3]) == ("10611", "研究生院", 1) and sheet.cell(sheet.max_row, 4).value == 1
    assert center.get("/departments", params={"unit": "10611"}).status_code == 200


def test_a_web_process_works_on_at_most_web_threads_requests_at_once(flow, tmp_path):
    import anyio
    import anyio.to_thread

    app = create_app(flow, Settings(demo=True, data_dir=str(tmp_path), web_threads=3))

    async def tokens_while_serving() -> float:
        async with app.router.lifespan_context(app):  # what uvicorn runs at start
            return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(tokens_while_serving) == 3  # page handlers beyond three wait their turn, in order
    with pytest.raises(ValueError, match="web_threads"):
        Settings(web_threads=0)


def test_quick_reads_go_through_the_read_lane_of_web_reads(flow, tmp_path):
    from degreeflow.web.lanes import ReadLane

    app = create_app(flow, Settings(demo=True, data_dir=str(tmp_path), web_reads=2))
    lanes = [m for m in app.user_middleware if m.cls is ReadLane]
    assert len(lanes) == 1 and lanes[0].kwargs == {"size": 2}
    assert app.user_middleware[0].cls is ReadLane  # outermost: the session and the page are computed in it


def test_a_web_process_freezes_its_start_up_objects_before_serving(tmp_path):
    # In a process of its own: gc.freeze would keep this test process's objects from the collector.
    script = f"""
import gc, os
os.environ["DEGREEFLOW_DATABASE_URL"] = "sqlite:///{tmp_path / "app.db"}"
os.environ["DEGREEFLOW_DEMO"] = "true"
os.environ["DEGREEFLOW_DATA_DIR"] = "{tmp_path}"
from degreeflow import app as wiring
from degreeflow.settings import Settings
from degreeflow.web.app import create_app, prepare_to_serve
settings = Settings()
flow = wiring.build(settings=settings)
flow.init_schema()
app = create_app(flow, settings)
before = gc.get_freeze_count()
prepare_to_serve(app)
env = app.state.templates.env
print(before, gc.get_freeze_count(), len(env.list_templates()), len(env.cache))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    before, frozen, templates, compiled = map(int, done.stdout.split())
    assert before == 0 and frozen > 50_000  # the modules, the ORM, the app: out of the collector's walk
    assert templates >= 10 and compiled == templates  # every page compiled before the first request
