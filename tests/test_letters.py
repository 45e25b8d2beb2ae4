"""Letters and forms: content, PDF text, layout sanity, numbering, immutability, glyph coverage."""

from __future__ import annotations

import dataclasses
import gc
import io
import shutil
import subprocess
import threading

import pytest
from jinja2 import meta
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from cases import letters
from cases.service import DegreeFlow
from db import make_engine, transaction
from degreeflow.pdf import FontError, PdfRenderer
from tests.helpers import PHOTO, fire, open_case

# A complete walk that issues every kind of document at least once.
FULL_WALK = {
    "supplement": [("submit", "collector"), ("approve", "province"), ("submit_data", "verifier"), ("accept", "province")],
    "amendment": [("submit", "collector"), ("approve", "province")],
    "errata": [],  # key-field errata below
    "revocation": [("submit", "collector"), ("verify", "verifier")],
    "photo": [("submit", "collector")],
    "authentication": [("check", "center"), ("send_to_unit", "center"), ("answer", "verifier"), ("issue_report", "center")],
}  # fmt: skip


@pytest.fixture(scope="module")
def pdf() -> PdfRenderer:
    return PdfRenderer()


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _flat(text_: str) -> str:
    return "".join(text_.split())


def _issue_everything(flow: DegreeFlow) -> dict[str, int]:
    for case_type, steps in FULL_WALK.items():
        case_id = open_case(flow, case_type)
        for trigger, part in steps:
            fire(flow, case_id, case_type, trigger, part)
    errata = open_case(flow, "errata")
    fire(flow, errata, "errata", "submit", "collector", field="conferral_date", old_value="20250620",
         new_value="20250621", reason="日期录入错误")  # fmt: skip
    fire(flow, errata, "errata", "reject", "province", reason="未附学位评定委员会决议")
    return {d["kind"]: d["id"] for d in flow.documents()}


def test_every_kind_is_issued_on_its_transition(sqlite_flow):
    issued = _issue_everything(sqlite_flow)
    assert set(issued) == set(letters.KINDS)
    numbers = [d["number"] for d in sqlite_flow.documents()]
    assert len(numbers) == len(set(numbers))
    assert (
        "西大学位〔2026〕1号" in numbers
        and "桂学位办〔2026〕1号" in numbers
        and "学位中心〔2026〕1号" in numbers
    )


def test_pdf_text_has_numbers_names_dates_and_wording(sqlite_flow, pdf):
    _issue_everything(sqlite_flow)
    docs: dict = {}
    for document in sqlite_flow.documents():
        docs.setdefault(document["kind"], document)
    expectations = {
        "supplement_application": ["广西大学学位评定委员会", "关于申请补报学位授予信息的请示", "广西壮族自治区学位委员会办公室：",
                                   "覃秋月", "1059342023001101", "莫文杰", "申请补报学位获得者名单", "2026年11月20日",
                                   "学位评定委员会主席（签字）", "妥否，请批示。"],
        "province_approval": ["广西壮族自治区学位委员会办公室文件", "批复", "同意你单位补报2名学位获得者的学位授予信息",
                              "西大学位〔2026〕1号"],
        "province_filing": ["国务院学位委员会办公室：", "抄送：教育部学位与研究生教育发展中心。", "备案"],
        "amendment_application": ["申请修改学位备案信息情况表", "姓名", "刘洋", "刘阳", "错字", "身份证复印件"],
        "errata_application": ["关于申请勘误学位授予信息关键字段的请示", "获学位日期", "20250621", "5个工作日"],
        "province_rejection": ["复函", "不同意", "未附学位评定委员会决议"],
        "revocation_report": ["关于撤销钱某某学位的报告", "1063542021000321", "2026年11月18日", "西南大学学位〔2026〕3号",
                              "申请撤销学位备案信息名单", "国务院学位委员会办公室、重庆市学位委员会办公室："],
        "photo_letter": ["补报电子照片的学位获得者名单", "学年度：2025-2026", "类别：普通高校本科毕业生学士", "补报数：1",
                         "韦小宝", "1059342025000031", "流水号：A0031", "学位授予单位（盖章）"],
        "verification_feedback": ["学位信息核查反馈表", "孙小明", "1061142020000555", "10个工作日", "信息一致", "查无此人"],
        "authentication_report": ["中国学位认证报告", "孙小明", "重庆大学", "核查结果：信息一致"],
    }  # fmt: skip
    for kind, expected in expectations.items():
        document, html = sqlite_flow.document_html(docs[kind]["id"])
        content = _flat(_pdf_text(pdf.pdf(html)))
        for fragment in expected + [document["number"]]:
            assert _flat(fragment) in content, (kind, fragment)
        assert "— 1 —".replace(" ", "") in content or "—1—" in content, kind


def test_first_page_is_not_blank(sqlite_flow, pdf, tmp_path):
    if not shutil.which("pdftoppm"):
        pytest.fail("pdftoppm (poppler-utils) is needed: make test installs it")
    from PIL import Image

    case_id = open_case(sqlite_flow, "photo")
    fire(sqlite_flow, case_id, "photo", "submit", "collector")
    _, html = sqlite_flow.document_html(sqlite_flow.latest_document(case_id, "photo_letter"))
    (tmp_path / "letter.pdf").write_bytes(pdf.pdf(html))
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(tmp_path / "letter.pdf"),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    image = Image.open(next(tmp_path.glob("page*.png"))).convert("RGB")
    pixels = [image.getpixel((x, y)) for x in range(image.width) for y in range(image.height)]
    ink = sum(1 for r, g, b in pixels if r + g + b < 600)
    red = sum(1 for r, g, b in pixels if r > 150 and g < 90 and b < 90)
    assert ink > 500, "page 1 is blank"
    assert red > 50, "the red organ mark and separator line are missing"


def test_collector_pause_is_shared_by_threads():
    from degreeflow.pdf import _collector_paused

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with _collector_paused():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with _collector_paused():
            second_in.set()
            first_out.wait(10)
            seen.append(gc.isenabled())  # the first rendering has ended, this one still runs

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == [False]
    assert gc.isenabled()


def test_long_form_repeats_its_header_and_never_splits_a_row(sqlite_flow, pdf):
    """Form 1 over several pages: the header row on every page with rows, each row whole on one page (rows of
    up to 11 lines, which WeasyPrint would split without `break-inside: avoid`), every row printed."""
    majors = [
        "汉语言文学",
        "马克思主义理论与思想政治教育及中国近现代史基本问题研究方向",
        "中国少数民族语言文学（壮语言文学方向）" * 3,
    ]
    records = [
        {"name": f"学生{i:03d}", "cert_no": f"10593420230{i:05d}", "degree_type": "学士",
         "major": f"{majors[i % 3]}第{i}组", "conferral_date": "2023-06-30"}
        for i in range(1, 81)
    ]  # fmt: skip
    case_id = open_case(sqlite_flow, "supplement")
    fire(sqlite_flow, case_id, "supplement", "submit", "collector", records=records)
    _, html = sqlite_flow.document_html(sqlite_flow.latest_document(case_id, "supplement_application"))
    pages = [_flat(page.extract_text()) for page in PdfReader(io.BytesIO(pdf.pdf(html))).pages]
    with_rows = [text for text in pages if "学生0" in text]
    assert len(with_rows) >= 3
    assert all("学位证书编号" in text for text in with_rows)
    for row in records:
        holding = [text for text in pages if row["cert_no"] in text]
        assert len(holding) == 1, row["cert_no"]
        assert row["name"] in holding[0] and row["major"] in holding[0], f"row {row['name']} is split"


def test_colophon_prints_organ_left_and_date_right_in_reading_order(pdf):
    context = {
        **_minimal("province_filing"),
        "printer": "广西壮族自治区学位委员会办公室",
        "print_date": "2026年11月20日印发",
    }
    data = pdf.pdf(letters.render_html("province_filing", context))
    text = _pdf_text(data)
    assert "广西壮族自治区学位委员会办公室 2026年11月20日印发" in text  # one line, organ first
    fragments: list[tuple[float, str]] = []
    PdfReader(io.BytesIO(data)).pages[-1].extract_text(
        visitor_text=lambda t, cm, tm, font, size: (
            fragments.append((cm[4] + tm[4], t)) if "印发" in t else None
        )
    )
    assert fragments and fragments[0][0] > 300, "the printing date is set flush right"


def _minimal(kind: str) -> dict:
    spec = letters.KINDS[kind]
    values = {}
    for f in dataclasses.fields(spec.context):
        if f.type in ("bool",):
            values[f.name] = False
        elif f.type in ("int",):
            values[f.name] = 0
        elif f.type.startswith("tuple"):
            values[f.name] = []
        else:
            values[f.name] = ""
    return values


@pytest.mark.parametrize("kind", sorted(letters.KINDS))
def test_template_uses_exactly_the_documented_fields(kind):
    spec = letters.KINDS[kind]
    env = letters.environment()
    used: set[str] = set()
    for name in (spec.template, "base.html"):
        source = env.loader.get_source(env, name)[0]
        used |= meta.find_undeclared_variables(env.parse(source))
    fields = {f.name for f in dataclasses.fields(spec.context)}
    assert used - {"css", "kind"} == fields, (
        f"{kind}: undocumented {used - fields - {'css', 'kind'}}, unprinted {fields - used}"
    )


@pytest.mark.parametrize("kind", sorted(letters.KINDS))
def test_minimal_context_renders(kind, pdf):
    html = letters.render_html(kind, _minimal(kind))
    assert "<html" in html
    assert pdf.pdf(html).startswith(b"%PDF")


def test_markup_in_data_is_printed_as_text(sqlite_flow, pdf):
    case_id = open_case(sqlite_flow, "photo")
    people = [{**PHOTO["people"][0], "name": "<script>alert(1)</script>", "major": "法学&经济学"}]
    fire(sqlite_flow, case_id, "photo", "submit", "collector", people=people)
    _, html = sqlite_flow.document_html(sqlite_flow.latest_document(case_id, "photo_letter"))
    assert "<script>" not in html and "&lt;script&gt;" in html and "法学&amp;经济学" in html
    content = _flat(_pdf_text(pdf.pdf(html)))  # the narrow grid cell may wrap the name
    assert "<script>alert(1)</script>" in content and "法学&经济学" in content


def test_a_character_no_font_has_stops_rendering(sqlite_flow, pdf):
    case_id = open_case(sqlite_flow, "photo")
    people = [{**PHOTO["people"][0], "name": "王\ue000"}]  # a private-use character: no font has it
    fire(sqlite_flow, case_id, "photo", "submit", "collector", people=people)
    _, html = sqlite_flow.document_html(sqlite_flow.latest_document(case_id, "photo_letter"))
    with pytest.raises(FontError) as refused:
        pdf.pdf(html)
    assert "U+E000" in refused.value.message
    assert gc.isenabled(), "the garbage collector paused for rendering must resume after a refusal"


def test_rendering_pauses_the_collector_and_resumes_it(pdf):
    seen: list[bool] = []
    original = pdf._engine

    def engine():  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return original()

    pdf._engine = engine
    try:
        html = letters.render_html("province_filing", _minimal("province_filing"))
        pdf.pdf(html)
        pdf.packet([html, html])
        pdf.write(pdf.document(html))
        assert seen and not any(seen)
        assert gc.isenabled()
        gc.disable()
        pdf.pdf(html)
        assert not gc.isenabled(), "a collector the caller paused stays paused"
    finally:
        gc.enable()
        del pdf._engine


def test_missing_fonts_are_reported():
    with pytest.raises(FontError, match="fonts-noto-cjk"):
        PdfRenderer("NoSuchFontFamily")


def test_documents_are_immutable_and_hashed(flow):
    case_id = open_case(flow, "photo")
    fire(flow, case_id, "photo", "submit", "collector")
    (document,) = flow.documents(case_id)
    with flow.db.connect() as conn:
        row = conn.execute(text("select kind, number, context, template_sha256, sha256 from documents")).one()
    context = row.context if isinstance(row.context, dict) else __import__("json").loads(row.context)
    assert letters.document_hash(row.kind, row.number, context, row.template_sha256) == row.sha256
    assert document["event_id"] is not None and document["template_current"]
    with pytest.raises(DatabaseError, match="append-only"), transaction(flow.db) as conn:
        conn.execute(text("UPDATE documents SET number = 'x'"))


def test_reissue_makes_a_new_number_pointing_to_the_old(flow):
    case_id = open_case(flow, "photo")
    fire(flow, case_id, "photo", "submit", "collector")
    (first,) = flow.documents(case_id)
    from workflow import Forbidden

    with pytest.raises(Forbidden):
        flow.reissue(first["id"], "10611XW01")  # another unit
    again = flow.reissue(first["id"], "10593XW02")
    assert again["replaces"] == first["number"] and again["number"] != first["number"]
    second = flow.documents(case_id)[-1]
    assert second["replaces_id"] == first["id"]


def test_refused_step_issues_nothing_and_uses_no_number(flow):
    case_id = open_case(flow, "photo")
    with pytest.raises(Exception):  # noqa: B017,PT011 - any refusal
        fire(flow, case_id, "photo", "submit", "collector", category="不存在的类别")
    fire(flow, case_id, "photo", "submit", "collector")
    assert [d["number"] for d in flow.documents(case_id)] == ["西大学位〔2026〕1号"]


def test_numbers_have_no_gaps_or_duplicates_under_concurrency(flow, db_url):
    cases = [open_case(flow, "photo") for _ in range(12)]
    errors: list[Exception] = []

    def worker(ids: list[int]) -> None:
        engine = make_engine(db_url)
        other = DegreeFlow(engine, flow.clock)
        try:
            for case_id in ids:
                other.fire(case_id, "submit", "10593XW01", payload=PHOTO)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(cases[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    seqs = sorted(int(d["number"].split("〕")[1].rstrip("号")) for d in flow.documents())
    assert seqs == list(range(1, 13))
