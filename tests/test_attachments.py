"""Attachments a step's letter lists are required for that step, and the letter lists what was attached (issue 15
item 6): the revocation resolution for `verify`, the conferral resolution for the supplement application, at
least one proof for an amendment, the resolution scan for a 2020 filing report. SQLite and PostgreSQL; the CLI
(tests/test_cli.py) and the JSON API (tests/test_web.py) have their own walks."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from pypdf import PdfReader

from cases import attachments, filing, letters, registry
from cases.service import DegreeFlow
from degreeflow.pdf import PdfRenderer
from tests.helpers import PDF, STEP_DATA, fire, open_case, snapshot, users_for
from tests.live import Browser, serve
from workflow import InvalidPayload, ProcessDefinition, Step

# (case type, the step that needs it, who does it, the purpose, the letter it issues, that letter's own form)
NEEDS = [
    (
        "revocation",
        "verify",
        "verifier",
        "revocation_resolution",
        "revocation_report",
        "申请撤销学位备案信息名单",
    ),
    (
        "supplement",
        "submit",
        "collector",
        "conferral_resolution",
        "supplement_application",
        "申请补报学位获得者名单",
    ),
    ("amendment", "submit", "collector", "proof", "amendment_application", "申请修改学位备案信息情况表"),
]


def _at_step(flow: DegreeFlow, case_type: str, trigger: str) -> int:
    case_id = open_case(flow, case_type)
    if case_type == "revocation":
        fire(
            flow, case_id, "revocation", "submit", "collector"
        )  # the collector's report, waiting for its check
    return case_id


def _upload(
    flow: DegreeFlow, case_id: int, purpose: str, name: str = "扫描件.pdf", body: bytes = b""
) -> None:
    flow.add_attachment(case_id, users_for(_unit(flow, case_id))["collector"], name, PDF + body, 1 << 20,
                        purpose=purpose)  # fmt: skip


def _unit(flow: DegreeFlow, case_id: int) -> str:
    return str(flow.show(case_id)["org"])


def _fire(flow: DegreeFlow, case_id: int, case_type: str, trigger: str, part: str) -> Any:
    return flow.fire(case_id, trigger, users_for(_unit(flow, case_id))[part],
                     payload=STEP_DATA.get((case_type, trigger), {}))  # fmt: skip


def _listed(flow: DegreeFlow, document_id: int) -> list[str]:
    """The attachment list as the issued document stores it."""
    return list(flow.document_html(document_id)[0]["context"]["attachments"])


@pytest.fixture
def stored(flow, tmp_path):  # type: ignore[no-untyped-def]
    flow.attachments_dir = tmp_path / "attachments"
    return flow


@pytest.mark.parametrize(("case_type", "trigger", "part", "purpose", "kind", "form"), NEEDS)
def test_the_step_is_refused_without_its_attachment_naming_it_and_accepted_with_it(
    stored, case_type, trigger, part, purpose, kind, form
):
    flow = stored
    case_id = _at_step(flow, case_type, trigger)
    before = snapshot(flow, case_id)
    label = attachments.PURPOSES[purpose].label
    with pytest.raises(InvalidPayload) as refused:
        _fire(flow, case_id, case_type, trigger, part)
    error = refused.value
    assert (error.rule, error.field, error.details["missing"]) == (
        "attachment_required",
        "attachments",
        [purpose],
    )
    assert f"《{label}》" in error.message and "尚未上传" in error.message
    assert snapshot(flow, case_id) == before and flow.documents(case_id) == []
    # A file uploaded for another purpose (or with none) is not the one the step needs.
    _upload(flow, case_id, "other", "说明.pdf")
    with pytest.raises(InvalidPayload) as still:
        _fire(flow, case_id, case_type, trigger, part)
    assert still.value.rule == "attachment_required" and snapshot(flow, case_id) == before
    _upload(flow, case_id, purpose)
    result = _fire(flow, case_id, case_type, trigger, part)
    assert result.from_state == ("unit_check" if case_type == "revocation" else "draft")
    (document,) = flow.documents(case_id)
    assert document["kind"] == kind
    assert _listed(flow, document["id"]) == [form, label]  # the form it carries, then what was attached


def test_the_letter_lists_exactly_what_was_attached_in_its_pdf(stored):
    flow = stored
    case_id = open_case(flow, "amendment")
    _upload(flow, case_id, "proof", "身份证件复印件.pdf", b"1")
    _upload(flow, case_id, "proof", "学位证书复印件.pdf", b"2")
    _upload(flow, case_id, "other", "内部说明.pdf", b"3")  # kept on file, not enclosed
    _fire(flow, case_id, "amendment", "submit", "collector")
    (document,) = flow.documents(case_id)
    assert _listed(flow, document["id"]) == ["申请修改学位备案信息情况表", "证明材料（2 份）"]
    _, html = flow.document_html(document["id"])
    text = "".join(
        "".join(page.extract_text() for page in PdfReader(io.BytesIO(PdfRenderer().pdf(html))).pages).split()
    )
    assert "附件：1.申请修改学位备案信息情况表" in text and "2.证明材料（2份）" in text
    assert "其他材料" not in text and "内部说明" not in text


def test_a_letter_claims_no_attachment_that_is_not_there():
    parties = letters.Parties(
        unit=type("Org", (), {"name": "西南大学", "id": 1, "code": "10635", "organ_code": "西大"})(),
        province=None, national=None, center=None,
    )  # fmt: skip
    payload = {"name": "钱某某", "cert_no": "1063542021000321", "conferral_date": "2021-06-25",
               "decision_date": "2026-11-18", "resolution_no": "西南大学学位〔2026〕3号"}  # fmt: skip
    for attached, expected in [({}, ["申请撤销学位备案信息名单"]), ({"other": 3, "": 1}, ["申请撤销学位备案信息名单"]),
                               ({"revocation_resolution": 1}, ["申请撤销学位备案信息名单", "学位评定委员会关于撤销学位的决议"])]:  # fmt: skip
        context = letters.build_context(
            "revocation_report", case_type="revocation", rule_set="2020", payload=payload, parties=parties,
            number="西大〔2026〕1号", today=date(2026, 11, 20), earlier={}, attached=attached,
        )  # fmt: skip
        assert list(context.attachments) == expected


def test_the_purpose_is_chosen_from_the_vocabulary_and_fits_the_file(stored):
    flow = stored
    case_id = open_case(flow, "revocation")
    with pytest.raises(InvalidPayload) as unknown:
        flow.add_attachment(case_id, "10635XW01", "决议.pdf", PDF, 1 << 20, purpose="决议")
    assert (unknown.value.rule, unknown.value.field) == ("attachment_purpose", "purpose")
    assert "revocation_resolution（学位评定委员会关于撤销学位的决议）" in unknown.value.message
    xlsx = b"PK\x03\x04 workbook"
    with pytest.raises(InvalidPayload) as not_a_scan:
        flow.add_attachment(case_id, "10635XW01", "决议.xlsx", xlsx, 1 << 20, purpose="revocation_resolution")
    assert not_a_scan.value.rule == "file_type" and "扫描件" in not_a_scan.value.message
    assert flow.attachments(case_id) == []  # nothing stored by a refused upload
    flow.add_attachment(case_id, "10635XW01", "名册.xlsx", xlsx, 1 << 20, purpose="other")
    flow.add_attachment(case_id, "10635XW01", "决议.pdf", PDF, 1 << 20, purpose="revocation_resolution")
    assert [(a["purpose"], a["purpose_label"]) for a in flow.attachments(case_id)] == [
        ("other", "其他材料"), ("revocation_resolution", "学位评定委员会关于撤销学位的决议")]  # fmt: skip


def test_what_each_step_needs_is_data_and_checked_at_start_up():
    defn = registry.DEFINITIONS
    assert defn["revocation"].candidates("unit_check", "verify")[0].attachments_needed("2013") == (
        "revocation_resolution",
    )
    assert defn["supplement"].candidates("draft", "submit")[0].attachments_needed("2020") == (
        "conferral_resolution",
    )
    assert defn["amendment"].candidates("draft", "submit")[0].attachments_needed("2020") == ("proof",)
    # A 2020 filing report goes with the resolution's scan (seed 002 art. 12(4)); the 2024 platform has none.
    verify = filing.DEFINITION.candidates("unit_check", "verify")
    assert {s.attachments_needed("2020") for s in verify} == {("conferral_resolution",)}
    assert {s.attachments_needed("2024") for s in verify} == {()}
    assert registry.check_all() == []
    loose = ProcessDefinition(
        name="t", label="t", states={"a": "a", "b": "b"}, initial="a", terminal=frozenset({"b"}),
        open_actors=("unit",), steps=(Step("go", "a", "b", ("unit",), attachments=("proof", "nonsense")),),
    )  # fmt: skip
    problems = attachments.definition_problems({"t": loose})
    assert any("nonsense" in p for p in problems) and any(
        "without attachments.required" in p for p in problems
    )


def test_the_case_page_shows_what_a_step_needs_and_takes_the_upload_with_its_purpose(flow, tmp_path):
    case_id = _at_step(flow, "revocation", "verify")
    with serve(flow, tmp_path / "data") as base:
        verifier = Browser(base)
        verifier.login("10635XW02")
        page = verifier.get(f"/cases/{case_id}").text
        needs = page.split('id="verify-attachments"', 1)[1].split("</div>", 1)[0]
        assert "学位评定委员会关于撤销学位的决议" in needs and "未上传" in needs
        refused = verifier.post(
            f"/cases/{case_id}/steps/verify", {"version": str(flow.show(case_id)["version"])}
        )
        assert refused.status_code == 422
        next_to_step = refused.text.split('id="verify-attachments"', 1)[1].split("</div>", 1)[0]
        assert 'class="field-error"' in next_to_step and "尚未上传" in next_to_step
        collector = Browser(base)
        collector.login("10635XW01")
        page = collector.get(f"/cases/{case_id}").text
        assert '<option value="revocation_resolution" selected>' in page  # the missing one is preselected
        url = f"/cases/{case_id}/attachments"
        wrong = collector.post(
            url, {"purpose": "nonsense"}, files={"file": ("决议.pdf", PDF, "application/pdf")}
        )
        assert wrong.status_code == 422 and "不是可选用途" in wrong.text
        done = collector.post(url, {"purpose": "revocation_resolution"},
                              files={"file": ("决议.pdf", PDF, "application/pdf")})  # fmt: skip
        assert done.status_code == 303
        page = verifier.get(f"/cases/{case_id}").text
        assert "已上传 1 份" in page.split('id="verify-attachments"', 1)[1].split("</div>", 1)[0]
        accepted = verifier.post(
            f"/cases/{case_id}/steps/verify", {"version": str(flow.show(case_id)["version"])}
        )
        assert accepted.status_code == 303
    assert flow.show(case_id)["state"] == "reported"
    assert _listed(flow, flow.documents(case_id)[0]["id"])[1] == "学位评定委员会关于撤销学位的决议"
