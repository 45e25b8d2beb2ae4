"""Mistakes undone on the record (issue 15, item 5), on SQLite and PostgreSQL: the unit withdraws (撤回) what it
sent before the province acted, cancels (作废) a case with a reason, the province sends a revocation report back
(退回) with its reasons. Each is an audited step; deadlines stop (no reminder, no escalation afterwards); the
documents of the undone round are void (a row in document_voids, the document and its number kept, never
reused); over the CLI and HTTP as well; the web asks for confirmation before steps that cannot be undone."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import delete, select, update

from db import Document, DocumentVoid
from tests.helpers import OPEN_DATA, fire, open_case, snapshot, users_for
from tests.live import Api, Browser, serve
from workflow import Forbidden, InvalidPayload, NotAllowedInState

ERRATA_KEY = {"field": "conferral_date", "old_value": "20250620", "new_value": "20250621", "reason": "日期错"}

# Each type's way to the first state that waits on the province: (trigger, part, extra data) steps, the state
# reached, the document the unit sent, and the province's deadline there (None: the province has none).
TO_PROVINCE = {
    "supplement": ([("submit", "collector", {})], "applied", "supplement_application", "province_decision"),
    "amendment": ([("submit", "collector", {})], "applied", "amendment_application", "province_opinion"),
    "errata": (
        [("submit", "collector", ERRATA_KEY)],
        "province_review",
        "errata_application",
        "province_decision",
    ),
    "revocation": (
        [("submit", "collector", {}), ("verify", "verifier", {})],
        "reported",
        "revocation_report",
        None,
    ),
    "photo": ([("submit", "collector", {})], "filed", "photo_letter", None),
}


def to_province(flow, case_type: str) -> int:  # type: ignore[no-untyped-def]
    case_id = open_case(flow, case_type)
    steps, state, _kind, _deadline = TO_PROVINCE[case_type]
    for trigger, part, extra in steps:
        fire(flow, case_id, case_type, trigger, part, **extra)
    assert flow.show(case_id)["state"] == state
    return case_id


def void_rows(flow, case_id: int) -> list:  # type: ignore[no-untyped-def]
    docs, voids = Document.__table__, DocumentVoid.__table__
    with flow.db.connect() as conn:
        return conn.execute(
            select(voids).join(docs, docs.c.id == voids.c.document_id).where(docs.c.case_id == case_id)
        ).all()


def document_count(flow) -> int:  # type: ignore[no-untyped-def]
    with flow.db.connect() as conn:
        return len(conn.execute(select(Document.__table__.c.id)).all())


# -- 撤回: the unit takes back what it sent, before the province acts ------------------------------------------
@pytest.mark.parametrize("case_type", sorted(TO_PROVINCE))
def test_withdraw_before_the_province_acts_voids_the_round_and_a_new_number_follows(flow, case_type):
    case_id = to_province(flow, case_type)
    _steps, _state, kind, deadline = TO_PROVINCE[case_type]
    (sent,) = flow.documents(case_id)
    assert sent["kind"] == kind and sent["void"] is None
    collector = users_for(open_and_unit(case_type))["collector"]

    result = flow.fire(case_id, "withdraw", collector, note="表中信息填错，撤回修改")
    assert (result.from_state, result.to_state) == (TO_PROVINCE[case_type][1], "draft")
    shown = flow.show(case_id)
    assert shown["closed_at"] is None  # back to the unit's draft, not ended
    last = shown["history"][-1]
    assert (last["trigger"], last["payload"]) == ("withdraw", {"withdraw_reason": "表中信息填错，撤回修改"})
    # The province's deadline is cancelled: nobody waits on the province any more.
    if deadline:
        assert [d["status"] for d in shown["deadlines"] if d["name"] == deadline] == ["cancelled"]
    assert not [
        d for d in shown["deadlines"] if d["status"] in ("running", "breached") and d["stopped_at"] is None
    ]

    # The document sent is void, on the record: one row naming the withdrawal's event, the person, the reason.
    (listed,) = flow.documents(case_id)
    assert (
        listed["id"] == sent["id"]
        and listed["number"] == sent["number"]
        and listed["sha256"] == sent["sha256"]
    )
    assert listed["void"]["reason"] == "撤回（省级办理前）：表中信息填错，撤回修改"
    (row,) = void_rows(flow, case_id)
    assert row.document_id == sent["id"] and row.event_id == listed["void"]["event_id"]
    assert row.actor_id == last["actor_id"] and row.reason == listed["void"]["reason"]

    # Sent again: a new document with the next number; the void one keeps its number, nothing is reused.
    steps = TO_PROVINCE[case_type][0]
    for trigger, part, extra in steps:
        fire(flow, case_id, case_type, trigger, part, **extra)
    first, second = flow.documents(case_id)
    assert first["void"] is not None and second["void"] is None
    assert second["number"] != first["number"] and second["kind"] == kind
    seq = lambda number: int(re.search(r"〕(\d+)号", number)[1])  # noqa: E731
    assert seq(second["number"]) == seq(first["number"]) + 1
    assert flow.verify_audit(case_id).ok


def open_and_unit(case_type: str) -> str:
    from tests.helpers import UNIT

    return UNIT[case_type]


@pytest.mark.parametrize(
    ("case_type", "province_step"),
    [("supplement", "approve"), ("amendment", "approve"), ("errata", "approve"), ("revocation", "confirm"),
     ("photo", "acknowledge"), ("supplement", "reject")],
)  # fmt: skip
def test_withdraw_is_refused_once_the_province_has_acted(flow, case_type, province_step):
    case_id = to_province(flow, case_type)
    extra = {"reason": "材料不全"} if province_step == "reject" else {}
    fire(flow, case_id, case_type, province_step, "province", **extra)
    before = snapshot(flow, case_id)
    documents = flow.documents(case_id)
    with pytest.raises(NotAllowedInState) as refused:
        flow.fire(case_id, "withdraw", users_for(open_and_unit(case_type))["collector"], note="想撤回")
    assert refused.value.rule == "allowed_in_state" and "withdraw" in refused.value.message
    assert snapshot(flow, case_id) == before and flow.documents(case_id) == documents


def test_only_the_units_staff_withdraw_and_only_with_a_reason(flow):
    case_id = to_province(flow, "revocation")
    before = snapshot(flow, case_id)
    with pytest.raises(Forbidden) as province:
        flow.fire(case_id, "withdraw", "prov50", note="省级不能替单位撤回")
    assert province.value.rule == "actor_level"
    with pytest.raises(Forbidden) as leader:  # the leader gives authorization codes; he does not run cases
        flow.fire(case_id, "withdraw", "10635XW04", note="撤回")
    assert leader.value.rule == "actor_role"
    with pytest.raises(Forbidden):  # another unit's case is outside its scope
        flow.fire(case_id, "withdraw", "10593XW01", note="撤回")
    with pytest.raises(InvalidPayload) as no_reason:
        flow.fire(case_id, "withdraw", "10635XW02")
    assert no_reason.value.field == "withdraw_reason" and "撤回理由" in no_reason.value.message
    assert snapshot(flow, case_id) == before and not void_rows(flow, case_id)


def test_withdraw_starts_a_new_round_for_the_two_person_rule(flow):
    """After a withdrawal the verifier who sent the report may collect again; then another person verifies."""
    case_id = to_province(flow, "revocation")
    flow.fire(case_id, "withdraw", "10635XW02", note="决议文号有误")
    fire(flow, case_id, "revocation", "submit", "verifier", resolution_no="西南大学学位〔2026〕4号")
    assert flow.show(case_id)["state"] == "unit_check"


# -- 作废: a case cancelled with a reason ends; no deadline reminds or escalates afterwards ------------------
def test_cancel_with_a_reason_ends_the_case_and_no_sweep_raises_anything_after(flow, clock):
    # A revocation decided long ago: its report deadline is overdue from the start (breached at once).
    late = {"decision_date": "2026-10-08"}
    control = open_case(flow, "revocation", **late)
    case_id = open_case(flow, "revocation", cert_no="1063542021000322", **late)
    assert [d["status"] for d in flow.show(case_id)["deadlines"]] == ["breached"]

    with pytest.raises(InvalidPayload) as no_reason:
        flow.fire(case_id, "cancel", "10635XW01")
    assert no_reason.value.field == "cancel_reason" and "作废理由" in no_reason.value.message
    result = flow.fire(case_id, "cancel", "10635XW01", note="误建案件：证书号录错")
    assert result.to_state == "cancelled"
    shown = flow.show(case_id)
    assert shown["state_label"] == "已作废" and shown["closed_at"] is not None
    assert shown["history"][-1]["payload"] == {"cancel_reason": "误建案件：证书号录错"}
    assert [d["status"] for d in shown["deadlines"]] == ["cancelled"]
    assert all(d["stopped_at"] for d in shown["deadlines"])
    assert flow.show(case_id, "10635XW01")["allowed"] == []

    # The sweep, now and a month later: the control case is escalated, the cancelled one never.
    report, _ = flow.sweep()
    assert {f["case_id"] for f in report.findings} == {control}
    clock.set(clock.now() + timedelta(days=30))
    report, _ = flow.sweep()
    assert case_id not in {f["case_id"] for f in report.findings}
    assert not [m for m in flow.inbox("prov50", limit=500) if m["case_id"] == case_id]
    assert not [m for m in flow.inbox("10635XW01", limit=500) if m["case_id"] == case_id]
    # A cancelled case accepts nothing more.
    with pytest.raises(NotAllowedInState):
        fire(flow, case_id, "revocation", "submit", "collector")
    assert flow.verify_audit(case_id).ok


@pytest.mark.parametrize(
    ("case_type", "steps", "running"),
    [
        ("supplement", [], None),
        ("errata", [("submit", "collector", {})], None),  # self_check: the unit's own check
        ("revocation", [("submit", "collector", {})], "report"),  # unit_check, before the report goes out
        ("photo", [], None),
        ("amendment", [], None),
    ],
)
def test_cancel_from_the_units_own_states(flow, case_type, steps, running):
    case_id = open_case(flow, case_type)
    for trigger, part, extra in steps:
        fire(flow, case_id, case_type, trigger, part, **extra)
    flow.fire(case_id, "cancel", users_for(open_and_unit(case_type))["verifier"], note="重复建案")
    shown = flow.show(case_id)
    assert shown["state"] == "cancelled" and shown["closed_at"] is not None
    if running:
        assert [d["status"] for d in shown["deadlines"] if d["name"] == running] == ["cancelled"]
    assert not [d for d in shown["deadlines"] if d["stopped_at"] is None]


def test_cancel_is_not_offered_once_the_case_is_with_the_province(flow):
    case_id = to_province(flow, "supplement")
    before = snapshot(flow, case_id)
    with pytest.raises(NotAllowedInState):
        flow.fire(case_id, "cancel", "10593XW01", note="作废")
    assert snapshot(flow, case_id) == before
    # Withdrawn first, then cancelled: the application stays void, its number used once.
    flow.fire(case_id, "withdraw", "10593XW01", note="不再补报")
    flow.fire(case_id, "cancel", "10593XW01", note="经核实已于原批次报送，无需补报")
    (document,) = flow.documents(case_id)
    assert document["void"]["reason"].startswith("撤回")
    assert flow.show(case_id)["state"] == "cancelled" and len(void_rows(flow, case_id)) == 1


def test_a_cancelled_case_frees_its_certificate_for_a_new_case(flow):
    case_id = open_case(flow, "revocation")
    flow.fire(case_id, "cancel", "10635XW01", note="决定日期录错")
    again = flow.open_case("revocation", "10635", "10635XW01", OPEN_DATA["revocation"]).case_id
    assert again != case_id and flow.show(again)["state"] == "draft"


# -- 退回: the province sends a revocation report back with its reasons -----------------------------------------
def test_the_province_returns_a_revocation_report_with_reasons(flow):
    case_id = to_province(flow, "revocation")
    (report,) = flow.documents(case_id)
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as no_reason:
        flow.fire(case_id, "return", "prov50")
    assert no_reason.value.field == "return_reason"
    with pytest.raises(Forbidden):  # the unit cannot send its own report back
        flow.fire(case_id, "return", "10635XW02", note="退回")
    with pytest.raises(Forbidden):  # nor another province
        flow.fire(case_id, "return", "prov45", note="退回")
    assert snapshot(flow, case_id) == before

    result = flow.fire(case_id, "return", "prov50", note="撤销原因未说明；请附学位评定委员会决议")
    assert (result.from_state, result.to_state) == ("reported", "draft")
    shown = flow.show(case_id)
    assert shown["history"][-1]["actor"] == "陈晓东"
    assert shown["history"][-1]["payload"] == {"return_reason": "撤销原因未说明；请附学位评定委员会决议"}
    (listed,) = flow.documents(case_id)
    assert listed["void"]["reason"] == "退回撤销报告（附理由）：撤销原因未说明；请附学位评定委员会决议"
    assert listed["void"]["actor"] == "陈晓东"
    # The returned report is no longer waiting on the province; it is the unit's work again.
    assert case_id not in [c["id"] for c in flow.queue("prov50")[0]]
    assert case_id in [c["id"] for c in flow.queue("10635XW01")[0]]

    # Corrected and reported again (a new round: collector, then another person): a new report, a new number.
    fire(flow, case_id, "revocation", "submit", "collector", resolution_no="西南大学学位〔2026〕5号")
    fire(flow, case_id, "revocation", "verify", "verifier")
    old, new = flow.documents(case_id)
    assert old["id"] == report["id"] and old["void"] and not new["void"] and new["number"] != old["number"]
    assert fire(flow, case_id, "revocation", "confirm", "province").to_state == "confirmed"
    assert flow.verify_audit(case_id).ok


def test_a_void_document_is_marked_and_cannot_be_reissued(flow):
    case_id = to_province(flow, "supplement")
    (sent,) = flow.documents(case_id)
    _meta, html = flow.document_html(sent["id"])
    assert "作废" not in html
    flow.fire(case_id, "withdraw", "10593XW01", note="名单漏一人")
    meta, html = flow.document_html(sent["id"])
    assert meta["void"]["reason"].endswith("名单漏一人")
    assert 'class="void-stamp"' in html and "本文书已作废" in html and "名单漏一人" in html
    assert sent["number"] in html  # still the document as issued, with its number
    count = document_count(flow)
    with pytest.raises(NotAllowedInState) as refused:
        flow.reissue(sent["id"], "10593XW01")
    assert refused.value.rule == "document_void" and sent["number"] in refused.value.message
    assert document_count(flow) == count


def test_void_rows_are_append_only(flow):
    case_id = to_province(flow, "photo")
    flow.fire(case_id, "withdraw", "10593XW01", note="照片未齐")
    (row,) = void_rows(flow, case_id)
    table = DocumentVoid.__table__
    for statement in (delete(table), update(table).values(reason="改写")):
        with pytest.raises(Exception), flow.db.begin() as conn:  # noqa: B017, PT011 - the database refuses
            conn.execute(statement)
    assert void_rows(flow, case_id) == [row]


# -- the CLI ------------------------------------------------------------------------------------------------------
def test_cli_withdraw_and_the_letter_list_says_void(tmp_path):
    import os
    import subprocess

    from tests.test_cli import EXE

    env = {
        **os.environ,
        "DEGREEFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "DEGREEFLOW_NOW": "2026-11-20T09:00",
    }

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=60)
        assert (done.returncode == 0) is ok, done.stderr + done.stdout
        return done

    run("init", "--demo")
    opened = run("case", "open", "photo", "--org", "10593", "--as", "10593XW01", "--json")
    case_id = str(json.loads(opened.stdout)["case_id"])
    people = json.dumps([{"name": "韦小宝", "major": "汉语言文学", "cert_no": "1059342025000031", "serial_no": "A0031"}],
                        ensure_ascii=False)  # fmt: skip
    run("case", "fire", case_id, "submit", "--as", "10593XW01", "-f", "academic_year=2025-2026",
        "-f", "category=普通高校本科毕业生学士", "-f", f"people={people}")  # fmt: skip
    refused = run("case", "fire", case_id, "withdraw", "--as", "10593XW01", ok=False)
    assert "撤回理由" in refused.stdout + refused.stderr
    done = run("case", "fire", case_id, "withdraw", "--as", "10593XW01", "--note", "照片批次有误")
    assert "filed → draft" in done.stdout
    listed = run("letter", "list", case_id)
    assert "已作废" in listed.stdout
    rows = json.loads(run("letter", "list", case_id, "--json").stdout)
    assert rows[0]["void"]["reason"] == "撤回（省级办理前）：照片批次有误"
    cancelled = run("case", "fire", case_id, "cancel", "--as", "10593XW02", "--note", "本学期无需补报")
    assert "draft → cancelled" in cancelled.stdout
    shown = json.loads(run("case", "show", case_id, "--json").stdout)
    assert shown["state"] == "cancelled" and shown["closed_at"]


# -- over HTTP ----------------------------------------------------------------------------------------------------
def test_api_withdraw_lists_the_void_document_and_its_pdf_carries_the_mark(flow, tmp_path):
    case_id = to_province(flow, "supplement")
    with serve(flow, tmp_path / "data") as base:
        unit = Api(base, "10593XW01")
        answer = unit.post(f"/cases/{case_id}/steps/withdraw", json={"data": {"withdraw_reason": "表1 有误"}})
        assert answer.status_code == 200, answer.text
        (document,) = unit.get(f"/cases/{case_id}/documents").json()
        assert document["void"]["reason"] == "撤回（省级办理前）：表1 有误"
        pdf = unit.get(f"/documents/{document['id']}.pdf")
        assert pdf.status_code == 200
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert "作废" in text and document["number"] in text
        # After the withdrawal the province has nothing to act on.
        province = Api(base, "prov45")
        refused = province.post(f"/cases/{case_id}/steps/approve", json={})
        assert refused.status_code == 409

        # The case page lists it as void, without showing keys.
        browser = Browser(base)
        browser.login("10593XW01")
        page = browser.get(f"/cases/{case_id}").text
        documents = page.split('id="documents"', 1)[1].split("</section>", 1)[0]
        assert "已作废" in documents and document["number"] in documents and "表1 有误" in documents


def _step_form(page: str, trigger: str) -> dict[str, str]:
    form = page.split(f'id="step-{trigger}"', 1)[1].split("</form>", 1)[0]
    return {"version": re.search(r'name="version" value="(\d+)"', form)[1]}


def test_web_asks_for_confirmation_before_cancel_and_reject(flow, tmp_path):
    draft = open_case(flow, "supplement")
    applied = to_province(flow, "supplement")
    with serve(flow, tmp_path / "data") as base:
        unit = Browser(base)
        unit.login("10593XW01")
        page = unit.get(f"/cases/{draft}").text
        assert "提交后请在下一页确认" in page.split('id="step-cancel"', 1)[1].split("</form>", 1)[0]
        form = _step_form(page, "cancel")
        # A missing reason is said on the case page at once (nothing to confirm yet).
        missing = unit.post(f"/cases/{draft}/steps/cancel", form)
        assert missing.status_code == 422 and "作废理由" in missing.text
        # The button leads to a confirmation page; nothing has changed yet.
        before = snapshot(flow, draft)
        asked = unit.post(f"/cases/{draft}/steps/cancel", {**form, "note": "重复建案"})
        assert asked.status_code == 200 and "请确认：作废本案件" in asked.text
        assert "此操作不可撤回" in asked.text and "已作废" in asked.text and "重复建案" in asked.text
        assert f'href="/cases/{draft}"' in asked.text  # 返回，不办理
        for key in ("cancel_reason", "withdraw", "cancelled"):
            assert f">{key}<" not in asked.text  # no keys shown
        assert snapshot(flow, draft) == before
        # Confirmed: the step is taken with what was typed.
        confirm = asked.text.split('id="confirm-step"', 1)[1].split("</form>", 1)[0]
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm))
        assert hidden["confirmed"] == "1" and hidden["note"] == "重复建案"
        done = unit.post(
            f"/cases/{draft}/steps/cancel", {k: v for k, v in hidden.items() if k != "csrf_token"}
        )
        assert done.status_code == 303, done.text
        assert flow.show(draft)["state"] == "cancelled"
        assert flow.show(draft)["history"][-1]["payload"] == {"cancel_reason": "重复建案"}

        # The province's 驳回 asks too; 批准 does not.
        province = Browser(base)
        province.login("prov45")
        page = province.get(f"/cases/{applied}").text
        form = _step_form(page, "reject")
        asked = province.post(f"/cases/{applied}/steps/reject", {**form, "note": "材料不全"})
        assert asked.status_code == 200 and "请确认：驳回补报申请" in asked.text
        assert flow.show(applied)["state"] == "applied"
        done = province.post(f"/cases/{applied}/steps/reject", {**form, "note": "材料不全", "confirmed": "1"})
        assert done.status_code == 303 and flow.show(applied)["state"] == "rejected"


def test_web_withdraw_needs_no_second_confirmation(flow, tmp_path):
    case_id = to_province(flow, "supplement")
    with serve(flow, tmp_path / "data") as base:
        unit = Browser(base)
        unit.login("10593XW01")
        form = _step_form(unit.get(f"/cases/{case_id}").text, "withdraw")
        done = unit.post(f"/cases/{case_id}/steps/withdraw", {**form, "note": "名单有误"})
        assert done.status_code == 303
        assert flow.show(case_id)["state"] == "draft"


def test_a_2020_filing_batch_withdrawn_before_the_province_reviews_it(flow, clock, tmp_path):
    from tests.test_filing import COLLECTOR, SCAN, VERIFIER, _at, batch_2020, deadline, open_filing

    flow.attachments_dir = tmp_path / "attachments"
    _at(clock, "2024-06-03T09:00")
    case_id = open_filing(flow, "2024-05-30", resolution_date="2024-05-30")
    flow.add_attachment(case_id, COLLECTOR, "决议.pdf", SCAN, 1 << 20, purpose="conferral_resolution")
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": batch_2020()})
    flow.fire(case_id, "verify", VERIFIER, payload={"resolution_no": "西南大学学位〔2024〕7号"})
    assert deadline(flow, case_id, "province_review")["status"] == "running"
    assert flow.fire(case_id, "withdraw", VERIFIER, note="第2条专业代码有误").to_state == "draft"
    assert deadline(flow, case_id, "province_review")["status"] == "cancelled"
    _at(clock, "2024-08-30T09:00")  # long past the province's 30 days: nothing to remind or escalate
    report, _ = flow.sweep()
    assert case_id not in {f["case_id"] for f in report.findings}
    # Reported again: the province gets a fresh 30 days.
    flow.fire(case_id, "submit", COLLECTOR, payload={"data": batch_2020()})
    flow.fire(case_id, "verify", VERIFIER)
    assert deadline(flow, case_id, "province_review")["status"] == "running"
