"""End to end in a real browser: Debian's Chromium driven by Playwright (`executable_path`, no browser download)
against the real server on a free loopback port with a fresh SQLite database.

A unit officer opens a revocation (first with a bad ID number: the message stands next to the field) and
submits it; a second user of the unit verifies; the province reviewer finds it in the queue and confirms; the
national office revokes; the report is a downloadable PDF; a user of another unit gets 404 for the case URL.
Screenshots of the main pages go to the test's temporary directory, or to DEGREEFLOW_SCREENSHOTS if set
(that is how docs/screenshots/ is made).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from degreeflow.demo import DEMO_PASSWORD
from tests.helpers import FILING_DATA, OPEN_DATA
from tests.live import serve

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REVOCATION = OPEN_DATA["revocation"]


@pytest.fixture(scope="module")
def chromium():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is needed for the browser tests (make test installs it: apt-get install chromium)"
        )
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path):  # type: ignore[no-untyped-def]
    target = Path(os.environ.get("DEGREEFLOW_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_url(re.compile(r".*/queue$"))


def sign_out(page) -> None:  # type: ignore[no-untyped-def]
    page.click("button:has-text('退出')")
    page.wait_for_url(re.compile(r".*/login$"))


def snap(page, shots: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real page, not a blank one


def test_a_revocation_end_to_end_in_the_browser(chromium, sqlite_flow, tmp_path, shots):
    with serve(sqlite_flow, tmp_path / "data") as base:
        context = chromium.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
        page = context.new_page()
        page.goto(base + "/login")
        snap(page, shots, "01-login")

        # The unit officer opens the case; a bad ID number is refused next to its field.
        sign_in(page, base, "10635XW01")
        page.click("nav.main a:has-text('案件')")
        page.click("a:has-text('新建案件')")
        page.click("a.button:has-text('撤销')")
        page.fill("#f-cert_no", REVOCATION["cert_no"])
        page.fill("#f-name", REVOCATION["name"])
        page.fill("#f-conferral_date", REVOCATION["conferral_date"])
        page.fill("#f-decision_date", REVOCATION["decision_date"])
        page.fill("#f-id_number", "110105199601010023")
        page.click("button:has-text('新建')")
        error = page.locator("#err-id_number")
        assert error.is_visible() and "校验位" in error.inner_text()
        assert page.locator("#f-id_number").get_attribute("aria-invalid") == "true"
        assert page.input_value("#f-name") == REVOCATION["name"]  # what was typed is kept
        snap(page, shots, "03-form-error")
        page.fill("#f-id_number", "")
        page.click("button:has-text('新建')")
        page.wait_for_url(re.compile(r".*/cases/\d+$"))
        case_url = page.url
        case_id = int(case_url.rsplit("/", 1)[1])
        assert "已新建撤销案件" in page.inner_text(".flash")
        assert page.locator("svg.state-diagram g[data-current='true']").get_attribute("data-state") == "draft"
        page.fill("#submit-f-resolution_no", "西南大学学位〔2026〕3号")
        page.click("#step-submit button[type=submit]")
        page.wait_for_url(case_url)
        assert page.inner_text("h1 .state") == "待本单位校核"
        # The report encloses the committee's resolution: the page says so, and the collector uploads the scan
        # with its purpose (preselected: the first one the case still lacks).
        assert "未上传" in page.inner_text("#attachment-needs tr[data-purpose='revocation_resolution']")
        assert page.input_value("#f-purpose") == "revocation_resolution"
        page.set_input_files("#f-file", {"name": "撤销学位决议.pdf", "mimeType": "application/pdf",
                                         "buffer": b"%PDF-1.4\n% scan\n"})  # fmt: skip
        page.click("#attachments button[type=submit]")
        assert "学位评定委员会关于撤销学位的决议" in page.inner_text(".flash")
        assert "已上传 1 份" in page.inner_text("#attachment-needs tr[data-purpose='revocation_resolution']")
        sign_out(page)

        # A second person of the unit verifies and sends the report.
        sign_in(page, base, "10635XW02")
        page.click(f"a[href='/cases/{case_id}']")
        assert "已上传 1 份" in page.inner_text("#verify-attachments")  # next to the step that needs it
        page.click("#step-verify button[type=submit]")
        assert page.inner_text("h1 .state") == "已报告（待省级确认）"
        assert page.locator("#documents a").count() == 1
        sign_out(page)

        # The province reviewer finds it in the queue, sorted by deadline, and confirms.
        sign_in(page, base, "prov50")
        row = page.locator("table.list tbody tr", has=page.locator(f"a[href='/cases/{case_id}']"))
        assert "钱某某" in row.inner_text() and "已报告" in row.inner_text()
        snap(page, shots, "02-queue")
        page.click(f"a[href='/cases/{case_id}']")
        snap(page, shots, "04-case")
        page.fill("#confirm-f-note", "经核，同意撤销。")
        page.click("#step-confirm button[type=submit]")
        assert page.inner_text("h1 .state") == "省级已确认"
        page.goto(base + "/overview")
        snap(page, shots, "05-overview")
        sign_out(page)

        # The national office revokes; the report is a PDF anyone on the case can download.
        sign_in(page, base, "xwb01")
        page.goto(case_url)
        page.click("#step-revoke button[type=submit]")
        # Revoking cannot be undone: the next page asks for confirmation first.
        assert "此操作不可撤回" in page.inner_text("#confirm")
        assert sqlite_flow.show(case_id)["state"] == "confirmed"
        page.click("#confirm-step button[type=submit]")
        assert page.inner_text("h1 .state") == "已撤销备案"
        history = page.inner_text("#history")
        for name in ("何莹", "杨帆", "陈晓东", "王建国"):
            assert name in history
        link = page.locator("#documents a").first
        response = page.request.get(base + link.get_attribute("href"))
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
        number = page.inner_text("#documents .muted").split(" · ")[0]
        assert number in text and "钱某某" in text and "1063542021000321" in text
        snap(page, shots, "06-case-closed")
        sign_out(page)

        # Another unit's user cannot open the case by URL.
        sign_in(page, base, "10593XW01")
        response = page.goto(case_url)
        assert response.status == 404 and "未找到" in page.inner_text("h1")
        page.goto(base + "/query")
        snap(page, shots, "07-query")
        context.close()


def test_a_filing_batch_in_the_browser(chromium, sqlite_flow, tmp_path, shots):
    """A 2024 batch: the collector submits it as a spreadsheet on the case page; the unit's second person sees
    the state diagram, the batch, and the formal submission (verify) that needs the supervising leader's
    one-time code; the code is requested on the page and read from the leader's inbox, then the batch is filed."""
    from openpyxl import Workbook

    from cases.degree_record import COLUMN

    opened = sqlite_flow.open_case("filing", "10635", "10635XW01", OPEN_DATA["filing"])
    case_id = opened.case_id
    keys = list(FILING_DATA[0])
    book = Workbook()
    book.active.append([COLUMN[k] for k in keys])
    for row in FILING_DATA:
        book.active.append([row.get(k, "") for k in keys])
    batch = tmp_path / "本批次.xlsx"
    book.save(batch)
    with serve(sqlite_flow, tmp_path / "data") as base:
        context = chromium.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
        page = context.new_page()
        sign_in(page, base, "10635XW01")
        page.goto(f"{base}/cases/{case_id}")
        page.set_input_files("#submit-f-data", str(batch))
        page.locator("#step-submit").scroll_into_view_if_needed()
        snap(page, shots, "09-filing-upload")
        page.click("#step-submit button[type=submit]")
        page.wait_for_selector("text=已办理")  # the flash after the redirect: the step is done
        assert sqlite_flow.show(case_id)["state"] == "unit_check"
        assert [r["cert_no"] for r in sqlite_flow.show(case_id)["payload"]["data"]] == [
            r["cert_no"] for r in FILING_DATA
        ]
        sign_out(page)
        sign_in(page, base, "10635XW02")
        page.goto(f"{base}/cases/{case_id}")
        assert (
            page.locator("svg.state-diagram g[data-current='true']").get_attribute("data-state")
            == "unit_check"
        )
        body = page.inner_text("body")
        assert "学位授予信息报送" in body and FILING_DATA[0]["cert_no"] in body
        assert page.locator("#verify-f-authorization_code").is_visible()
        page.click(f"form[action='/cases/{case_id}/authorization/verify'] button")
        snap(page, shots, "08-filing")
        code = re.search(
            r"\d{6}", next(m for m in sqlite_flow.inbox("10635XW04") if m["kind"] == "authorization")["body"]
        )
        page.fill("#verify-f-authorization_code", code[0])
        page.click("#step-verify button[type=submit]")
        assert page.inner_text("h1 .state") == sqlite_flow.show(case_id)["state_label"]
        assert sqlite_flow.show(case_id)["state"] == "recorded"
        context.close()


def test_cancel_asks_for_confirmation_and_a_withdrawn_letter_shows_as_void(chromium, sqlite_flow, tmp_path, shots):
    """A supplement application withdrawn before the province acted: its letter is listed as 已作废; cancelling the
    case takes a reason and a confirmation page (plain HTML, works without script); going back changes nothing."""
    from tests.helpers import fire, open_case

    case_id = open_case(sqlite_flow, "supplement")
    fire(sqlite_flow, case_id, "supplement", "submit", "collector")
    with serve(sqlite_flow, tmp_path / "data") as base:
        context = chromium.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
        page = context.new_page()
        sign_in(page, base, "10593XW01")
        page.goto(f"{base}/cases/{case_id}")
        page.fill("#withdraw-f-note", "表1 漏列一人，撤回补充")
        page.click("#step-withdraw button[type=submit]")
        assert page.inner_text("h1 .state") == "草稿"
        item = page.locator("#documents li").first
        assert "已作废" in item.inner_text() and "表1 漏列一人" in item.inner_text()

        # 作废: first without a reason (said next to the form), then with one: the confirmation page.
        page.click("#step-cancel button[type=submit]")
        assert "作废理由" in page.inner_text("#step-cancel")
        page.fill("#cancel-f-note", "经核实已在原批次报送，无需补报")
        page.click("#step-cancel button[type=submit]")
        assert page.inner_text("h1").startswith("请确认")
        assert "此操作不可撤回" in page.inner_text("#confirm") and "经核实已在原批次报送" in page.inner_text("#confirm")
        snap(page, shots, "10-confirm-cancel")
        assert sqlite_flow.show(case_id)["state"] == "draft"
        page.click("#confirm-cancel")  # 返回，不办理
        assert page.inner_text("h1 .state") == "草稿"
        assert sqlite_flow.show(case_id)["state"] == "draft"

        page.fill("#cancel-f-note", "经核实已在原批次报送，无需补报")
        page.click("#step-cancel button[type=submit]")
        page.click("#confirm-step button[type=submit]")
        assert page.inner_text("h1 .state") == "已作废"
        assert sqlite_flow.show(case_id)["state"] == "cancelled"
        assert "已作废" in page.inner_text("#documents")
        context.close()


def test_the_verifier_who_submitted_sees_the_two_person_refusal_next_to_the_button(chromium, sqlite_flow, tmp_path):
    """Issue 15 item 1: 10635XW02 enters the resolution number and presses 提交, then tries 校核并报送 himself."""
    case_id = sqlite_flow.open_case("revocation", "10635", "10635XW01", REVOCATION).case_id
    with serve(sqlite_flow, tmp_path / "data") as base:
        context = chromium.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
        page = context.new_page()
        sign_in(page, base, "10635XW02")
        page.goto(f"{base}/cases/{case_id}")
        page.fill("#submit-f-resolution_no", "西南大学学位〔2026〕3号")
        page.click("#step-submit button[type=submit]")
        page.wait_for_url(re.compile(rf".*/cases/{case_id}$"))
        assert page.inner_text("h1 .state") == "待本单位校核"
        # The step is shown with the reason next to its button, before anything is pressed...
        form = page.locator("#step-verify")
        assert "采集与校核须由不同工作人员负责" in form.inner_text() and "杨帆" in form.inner_text()
        # ...and pressing it anyway is refused there, changing nothing.
        page.click("#step-verify button[type=submit]")
        error = page.locator("#step-verify .field-error[role=alert]")
        assert error.is_visible() and "本轮已办理“提交撤销报告（待校核）”" in error.inner_text()
        assert page.inner_text("h1 .state") == "待本单位校核"
        context.close()
    shown = sqlite_flow.show(case_id)
    assert shown["state"] == "unit_check" and [h["trigger"] for h in shown["history"]] == ["open", "submit"]
