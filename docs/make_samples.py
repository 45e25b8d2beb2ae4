"""Regenerate docs/samples/: one PDF of each kind of document, from a demo database.

usage: python docs/make_samples.py   (from the repository root, with the virtual environment's python)
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cases.service import DegreeFlow  # noqa: E402
from db import FixedClock, make_engine  # noqa: E402
from db.clock import SHANGHAI  # noqa: E402
from degreeflow import demo  # noqa: E402
from degreeflow.pdf import PdfRenderer  # noqa: E402
from tests.test_letters import _issue_everything  # noqa: E402


def main() -> None:
    out = ROOT / "docs" / "samples"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        flow = DegreeFlow(make_engine(f"sqlite:///{tmp}/samples.db"),
                          FixedClock(datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)))  # fmt: skip
        flow.init_schema()
        demo.seed(flow, cases=False)
        issued = _issue_everything(flow)
        renderer = PdfRenderer()
        for kind, document_id in sorted(issued.items()):
            document, html = flow.document_html(document_id)
            target = out / f"{kind}.pdf"
            target.write_bytes(renderer.pdf(html))
            print(f"{target.relative_to(ROOT)}  {document['number']}  {target.stat().st_size // 1024} KB")
        flow.db.dispose()


if __name__ == "__main__":
    main()
