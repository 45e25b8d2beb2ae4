"""Benchmark: official letters to PDF (WeasyPrint, CJK fonts loaded once per process).

What is measured
----------------
Documents are issued the way production issues them: a fresh SQLite file made by ``db.make_engine``, the demo
organisations and users (``degreeflow.demo.seed(flow, cases=False)``), a ``FixedClock``, and real transitions
through ``DegreeFlow`` (open a case, ``submit``, then the province's ``approve``). Each document's HTML comes
from ``flow.document_html(id)``; only ``PdfRenderer`` is timed, never the database.

* ``cold_first_letter_s``: in a *fresh* Python process (``sys.executable -c``), after the imports, the time
  from ``PdfRenderer()`` (font resolution, cmaps, any font working copy) through the first ``.pdf(html)``
  of a one-page letter (WeasyPrint's own lazy set-up and font loading included). ``child_wall_s`` is the
  child's whole wall time seen from this process (interpreter start, imports, rendering, exit);
  ``child_import_s`` the imports alone. With ``--cold-runs R`` the medians of R children are reported.
* ``warm_letters_per_s``: N one-page letters (distinct documents: N approvals, each with its own number),
  rendered one PDF each by one ``PdfRenderer`` in this process after one warm-up render.
* ``packet_letters_per_s``: the same N letters in one PDF through ``PdfRenderer.packet(htmls)``;
  ``packet_bytes_per_letter`` is that PDF's size divided by N.
* ``one_page_pdf_bytes``: mean size of the N one-page PDFs; ``application_pdf``: size and pages of a
  supplement application (letter + Form 1, the 2-row payload of tests/helpers.py).
* ``form_300_rows``: a supplement application whose Form 1 has 300 rows, issued by ``submit``, rendered
  warm with ``.pdf(html)``: seconds, pages, and whether the table header (学位证书编号) is printed on every page
  that carries rows of the form (``thead { display: table-header-group }``), and whether all 300 rows are
  in the PDF text. ``seconds`` is the median of ``--form-repeat`` renders (default 3: one render on a shared
  machine is noisy); ``runs_s`` lists them all.

``PdfRenderer`` pauses Python's cyclic garbage collector while it renders (``degreeflow/pdf.py``,
``_collector_paused``); the cycles a rendering leaves go in the first (young-generation) collection after it
resumes, normally before the call returns, so inside the timed figures.

The one-page letter is the first of these that comes out as exactly one page (checked with pypdf), so the
benchmark keeps working while the layout changes: a supplement approval from 广西大学 (10593, 广西壮族自治区学位委员会
办公室), a supplement rejection from 广西大学, a supplement approval from 重庆大学 (10611, 重庆市学位委员会办公室), an
amendment approval from 重庆大学. ``letter.candidates`` gives the pages of each one tried; every one of the N
timed letters is checked to be one page after the clock stops.

Goal (the issue): at least 10 one-page letters/s warm in one process, 30/s in a packet, under 150 KB
(150,000 bytes) per one-page letter, a 300-row form in under 1.5 s. ``meets_goal`` also requires the form's
header to repeat on every page with rows.

Usage: ``python bench/bench_letters.py [--n 50] [--rows 300] [--cold-runs 3] [--form-repeat 3] [--dir DIR]``.
Prints one JSON object to stdout; exits 0 whether or not the goal is met (``meets_goal`` says which).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from pypdf import PdfReader  # noqa: E402

from cases.service import DegreeFlow  # noqa: E402
from db import FixedClock, make_engine  # noqa: E402
from db.clock import SHANGHAI  # noqa: E402
from degreeflow import demo  # noqa: E402
from degreeflow.pdf import PdfRenderer  # noqa: E402

GOAL_WARM_PER_S = 10.0
GOAL_PACKET_PER_S = 30.0
GOAL_ONE_PAGE_BYTES = 150_000
GOAL_FORM_SECONDS = 1.5
FORM_HEADER = "学位证书编号"
START = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)  # a Friday morning in Beijing, as in the tests


# -- issuing documents through real transitions ---------------------------------------------------------
def _supplement_rows(unit: str, count: int, start: int = 1) -> list[dict[str, str]]:
    """Form 1 rows; certificate numbers start with the unit code (cases/record.py cert_no_of_unit)."""
    return [{"name": f"学生{i:04d}", "cert_no": f"{unit}420230{i:05d}"} for i in range(start, start + count)]


def _supplement_submit(unit: str) -> dict[str, Any]:
    return {
        "omission_reason": "漏报",
        "resolution_no": "学位〔2023〕15号",
        "records": _supplement_rows(unit, 2),
    }


AMENDMENT_OPEN = {"cert_no": "1061142019000123", "conferral_date": "2019-06-30"}
AMENDMENT_SUBMIT = {
    "field": "name", "old_value": "刘洋", "new_value": "刘阳", "reason": "错字", "proofs": ["身份证复印件"],
}  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """A one-page letter: how to issue one (open a case, fire steps) and which document to take."""

    label: str
    case_type: str
    unit: str
    province_user: str
    kind: str
    open_data: dict[str, Any] = field(default_factory=dict)
    submit: dict[str, Any] = field(default_factory=dict)
    decision: tuple[str, dict[str, Any]] = ("approve", {})

    def issue(self, flow: DegreeFlow) -> int:
        case_id = flow.open_case(self.case_type, self.unit, f"{self.unit}XW01", self.open_data).case_id
        flow.fire(case_id, "submit", f"{self.unit}XW01", payload=self.submit)
        trigger, payload = self.decision
        flow.fire(case_id, trigger, self.province_user, payload=payload)
        return flow.latest_document(case_id, self.kind)


CANDIDATES = (
    Candidate("supplement approval, 10593 广西大学", "supplement", "10593", "prov45", "province_approval",
              submit=_supplement_submit("10593")),
    Candidate("supplement rejection, 10593 广西大学", "supplement", "10593", "prov45", "province_rejection",
              submit=_supplement_submit("10593"), decision=("reject", {"reason": "材料不全"})),
    Candidate("supplement approval, 10611 重庆大学", "supplement", "10611", "prov50", "province_approval",
              submit=_supplement_submit("10611")),
    Candidate("amendment approval, 10611 重庆大学", "amendment", "10611", "prov50", "province_approval",
              open_data=AMENDMENT_OPEN, submit=AMENDMENT_SUBMIT),
)  # fmt: skip


def make_flow(workdir: Path) -> DegreeFlow:
    flow = DegreeFlow(make_engine(f"sqlite:///{workdir / 'b.db'}"), FixedClock(START))
    flow.init_schema()
    demo.seed(flow, cases=False)
    return flow


def pdf_pages(data: bytes) -> list[Any]:
    return list(PdfReader(io.BytesIO(data)).pages)


def flat(text: str) -> str:
    return "".join(text.split())


def embedded_fonts(data: bytes) -> list[str]:
    names: set[str] = set()
    for page in pdf_pages(data):
        fonts = page.get("/Resources", {}).get("/Font", {})
        for ref in fonts.values():
            names.add(str(ref.get_object().get("/BaseFont", "?")))
    return sorted(names)


# -- cold: a fresh process ------------------------------------------------------------------------------
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from degreeflow.pdf import PdfRenderer
t1 = time.perf_counter()
html = open(sys.argv[2], encoding="utf-8").read()
t2 = time.perf_counter()
renderer = PdfRenderer()
t3 = time.perf_counter()
data = renderer.pdf(html)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "renderer_s": t3 - t2, "first_pdf_s": t4 - t3,
                  "cold_first_letter_s": t4 - t2, "bytes": len(data)}))
"""


def bench_cold(html_path: Path) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(html_path)],
        capture_output=True, text=True, check=False, timeout=300, cwd=str(ROOT),
    )  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"cold child failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "child_wall_s": wall}


# -- warm, packet, form ---------------------------------------------------------------------------------
def choose_letter(flow: DegreeFlow, renderer: PdfRenderer) -> tuple[Candidate, dict[str, int], str]:
    """The first candidate whose letter is one page; its PDF rendering doubles as the warm-up."""
    tried: dict[str, int] = {}
    for candidate in CANDIDATES:
        html = flow.document_html(candidate.issue(flow))[1]
        pages = len(pdf_pages(renderer.pdf(html)))
        tried[candidate.label] = pages
        if pages == 1:
            return candidate, tried, html
    raise RuntimeError(f"no candidate letter is one page: {tried}")


def bench_warm(renderer: PdfRenderer, htmls: list[str]) -> tuple[float, list[bytes]]:
    pdfs: list[bytes] = []
    start = time.perf_counter()
    for html in htmls:
        pdfs.append(renderer.pdf(html))
    seconds = time.perf_counter() - start
    return seconds, pdfs


def bench_packet(renderer: PdfRenderer, htmls: list[str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    data = renderer.packet(htmls)
    return time.perf_counter() - start, data


def bench_form(flow: DegreeFlow, renderer: PdfRenderer, rows: int, repeat: int) -> dict[str, Any]:
    unit = "10593"
    records = [
        {"name": f"学生{i:04d}", "cert_no": f"10593420230{i:05d}", "degree_type": "学士", "major": "汉语言文学",
         "conferral_date": "2023-06-30"}
        for i in range(1, rows + 1)
    ]  # fmt: skip
    payload = {"omission_reason": "漏报", "resolution_no": "学位〔2023〕15号", "records": records}
    case_id = flow.open_case("supplement", unit, f"{unit}XW01", {}).case_id
    flow.fire(case_id, "submit", f"{unit}XW01", payload=payload)
    html = flow.document_html(flow.latest_document(case_id, "supplement_application"))[1]

    runs = []
    data = b""
    for _ in range(repeat):
        start = time.perf_counter()
        data = renderer.pdf(html)
        runs.append(time.perf_counter() - start)

    # Where the time goes (outside the timed runs): glyph check, layout, PDF writing.
    start = time.perf_counter()
    renderer.check_glyphs(html)
    check_s = time.perf_counter() - start
    start = time.perf_counter()
    document = renderer.document(html)
    layout_s = time.perf_counter() - start
    start = time.perf_counter()
    renderer.write(document)
    write_s = time.perf_counter() - start

    pages = [flat(page.extract_text()) for page in pdf_pages(data)]
    cert_numbers = [r["cert_no"] for r in records]
    with_rows = [i for i, text in enumerate(pages) if any(c in text for c in cert_numbers)]
    found = sum(1 for c in cert_numbers if any(c in text for text in pages))
    return {
        "rows": rows,
        "seconds": round(statistics.median(runs), 3),
        "pages": len(pages),
        "form_pages": len(with_rows),
        "first_form_page": (with_rows[0] + 1) if with_rows else None,
        "header_on_every_form_page": bool(with_rows) and all(FORM_HEADER in pages[i] for i in with_rows),
        "pages_without_header": [i + 1 for i in with_rows if FORM_HEADER not in pages[i]],
        "rows_found_in_pdf": found,
        "bytes": len(data),
        "runs_s": [round(r, 3) for r in runs],
        "breakdown_s": {"check_glyphs": round(check_s, 3), "layout": round(layout_s, 3),
                        "write_pdf": round(write_s, 3)},
    }  # fmt: skip


def harfbuzz_subset_found() -> bool:
    """WeasyPrint's own test (weasyprint/pdf/fonts.py, Font.subset): the library loaded and HarfBuzz >= 4.1.0;
    otherwise it falls back to fontTools for subsetting."""
    from weasyprint.text.ffi import harfbuzz, harfbuzz_subset

    return bool(harfbuzz_subset) and bool(harfbuzz.hb_version_atleast(4, 1, 0))


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=50, help="one-page letters, warm and in the packet")
    parser.add_argument("--rows", type=int, default=300, help="rows of the large Form 1")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes for the cold time (median)")
    parser.add_argument("--form-repeat", type=int, default=3, help="timed renders of the form (median)")
    parser.add_argument(
        "--dir", default=None, help="directory for the temporary database (default: system tmp)"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.rows < 1 or args.cold_runs < 1 or args.form_repeat < 1:
        parser.error("--n, --rows, --cold-runs and --form-repeat must be at least 1")

    total_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="degreeflow-bench-letters-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        flow = make_flow(workdir)
        try:
            start = time.perf_counter()
            renderer = PdfRenderer()
            renderer_s = time.perf_counter() - start
            start = time.perf_counter()
            candidate, tried, warmup_html = choose_letter(flow, renderer)  # includes the warm-up render
            first_render_s = time.perf_counter() - start

            # Cold, in fresh processes, on the chosen letter.
            html_path = workdir / "letter.html"
            html_path.write_text(warmup_html, encoding="utf-8")
            colds = [bench_cold(html_path) for _ in range(args.cold_runs)]

            # N distinct letters of the chosen kind (issuing is not timed).
            start = time.perf_counter()
            htmls = [flow.document_html(candidate.issue(flow))[1] for _ in range(args.n)]
            issue_s = time.perf_counter() - start
            renderer.pdf(htmls[0])  # warm-up on the kind actually timed

            warm_s, pdfs = bench_warm(renderer, htmls)
            letter_pages = [len(pdf_pages(p)) for p in pdfs]
            if any(p != 1 for p in letter_pages):
                raise RuntimeError(f"timed letters are not all one page: {sorted(set(letter_pages))}")

            packet_s, packet = bench_packet(renderer, htmls)
            packet_pages = len(pdf_pages(packet))
            if packet_pages != args.n:
                raise RuntimeError(f"packet of {args.n} one-page letters has {packet_pages} pages")

            # A multi-page application with its form (letter + Form 1, two rows).
            app_case = flow.open_case("supplement", "10593", "10593XW01", {}).case_id
            flow.fire(app_case, "submit", "10593XW01", payload=_supplement_submit("10593"))
            application = renderer.pdf(
                flow.document_html(flow.latest_document(app_case, "supplement_application"))[1]
            )

            form = bench_form(flow, renderer, args.rows, args.form_repeat)

            start = time.perf_counter()
            PdfRenderer()
            second_renderer_s = time.perf_counter() - start
        finally:
            flow.db.dispose()

    def median(key: str) -> float:
        return statistics.median(c[key] for c in colds)

    warm_per_s = args.n / warm_s
    packet_per_s = args.n / packet_s
    one_page_bytes = statistics.mean(len(p) for p in pdfs)
    packet_bytes = len(packet) / args.n
    goal = {
        "warm_letters_per_s_min": GOAL_WARM_PER_S,
        "packet_letters_per_s_min": GOAL_PACKET_PER_S,
        "one_page_pdf_bytes_max": GOAL_ONE_PAGE_BYTES,
        "form_rows": 300,
        "form_seconds_max": GOAL_FORM_SECONDS,
    }
    meets = {
        "warm": warm_per_s >= GOAL_WARM_PER_S,
        "packet": packet_per_s >= GOAL_PACKET_PER_S,
        "size": one_page_bytes < GOAL_ONE_PAGE_BYTES,
        "form": form["seconds"] < GOAL_FORM_SECONDS and args.rows >= 300,
        "form_header": form["header_on_every_form_page"] and form["rows_found_in_pdf"] == args.rows,
    }
    import weasyprint

    result = {
        "benchmark": "letters",
        "n": args.n,
        "cold_first_letter_s": round(median("cold_first_letter_s"), 3),
        "child_wall_s": round(median("child_wall_s"), 3),
        "warm_letters_per_s": round(warm_per_s, 1),
        "packet_letters_per_s": round(packet_per_s, 1),
        "one_page_pdf_bytes": round(one_page_bytes),
        "packet_bytes_per_letter": round(packet_bytes),
        "form_300_rows": form,
        "goal": goal,
        "meets_goal": all(meets.values()),
        "meets": meets,
        "weasyprint": weasyprint.__version__,
        "harfbuzz_subset": harfbuzz_subset_found(),
        "letter": {"kind": candidate.kind, "source": candidate.label, "candidates_pages": tried,
                   "embedded_fonts": embedded_fonts(pdfs[0])},
        "cold": {
            "runs": args.cold_runs,
            "child_import_s": round(median("import_s"), 3),
            "renderer_s": round(median("renderer_s"), 3),
            "first_pdf_s": round(median("first_pdf_s"), 3),
            "cold_first_letter_runs_s": [round(c["cold_first_letter_s"], 3) for c in colds],
            "child_wall_runs_s": [round(c["child_wall_s"], 3) for c in colds],
        },
        "warm_seconds": round(warm_s, 3),
        "warm_ms_per_letter": round(1000 * warm_s / args.n, 1),
        "packet_seconds": round(packet_s, 3),
        "packet_bytes": len(packet),
        "one_page_pdf_bytes_min_max": [min(len(p) for p in pdfs), max(len(p) for p in pdfs)],
        "application_pdf": {"bytes": len(application), "pages": len(pdf_pages(application))},
        "in_process": {"renderer_s": round(renderer_s, 3), "first_renders_s": round(first_render_s, 3),
                       "first_renders": sum(1 for _ in tried), "second_renderer_s": round(second_renderer_s, 3),
                       "issue_n_letters_s": round(issue_s, 3)},
        "uharfbuzz": _version("uharfbuzz"),
        "pydyf": _version("pydyf"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "total_s": round(time.perf_counter() - total_start, 1),
    }  # fmt: skip
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
