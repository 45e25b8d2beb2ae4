"""Several instances on one PostgreSQL database behave like one (issue 7 item 2): two `degreeflow serve
--no-scheduler` processes and two `degreeflow scheduler run` processes, all real, on loopback.

* document numbers issued through both servers at once: no gap, no duplicate;
* two reviewers confirming one case at once through different servers: one success, one 409;
* an authentication comparison requested twice at once: done once;
* overdue deadlines swept by both schedulers for several rounds: each breach found, told and escalated once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cases.service import DegreeFlow
from db import DeadlineFinding, Document, OutboxMessage, drop_schema, make_engine
from degreeflow import demo
from tests.conftest import START, _pg_url_or_skip
from tests.helpers import OPEN_DATA, attach_required
from tests.live import Api, free_port, wait_ready

CLI = str(Path(sys.executable).parent / "degreeflow")
SECRET = "k" * 48


@pytest.fixture
def pg(clock, tmp_path):  # type: ignore[no-untyped-def]
    url = _pg_url_or_skip()
    engine = make_engine(url)
    drop_schema(engine)
    flow = DegreeFlow(engine, clock)
    flow.init_schema(migrate=True)
    demo.seed(flow, cases=False)
    flow.add_user("prov50b", "冉静", "reviewer", "50")
    flow.set_password("prov50b", demo.DEMO_PASSWORD)
    yield url, flow
    engine.dispose()


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DEGREEFLOW_SECRET_KEY": SECRET, "DEGREEFLOW_DATA_DIR": str(tmp_path / "data")}


def _start_servers(url: str, tmp_path: Path, n: int = 2) -> tuple[list[subprocess.Popen[str]], list[str]]:
    procs, bases = [], []
    for _ in range(n):
        port = free_port()
        procs.append(subprocess.Popen(
            [CLI, "--db", url, "--now", START.isoformat(), "serve", "--no-scheduler", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp_path), cwd=tmp_path,
        ))  # fmt: skip
        bases.append(f"http://127.0.0.1:{port}")
    for base in bases:
        wait_ready(base)
    return procs, bases


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.communicate(timeout=30)


def _open_reported(flow: DegreeFlow, n: int) -> list[int]:
    ids = []
    for i in range(n):
        data = {**OPEN_DATA["revocation"], "cert_no": f"10635420210{i:05d}"}
        case_id = flow.open_case("revocation", "10635", "10635XW01", data).case_id
        flow.fire(case_id, "submit", "10635XW01", payload={"resolution_no": f"西南大学学位〔2026〕{i + 3}号"})
        attach_required(flow, case_id, "verify")
        ids.append(case_id)
    return ids


def test_two_servers_issue_gapless_numbers_and_refuse_a_lost_update(pg, tmp_path):
    url, flow = pg
    cases = _open_reported(flow, 16)  # waiting for the second person's check, which issues the report
    procs, bases = _start_servers(url, tmp_path)
    try:
        verifiers = [Api(base, "10635XW02") for base in bases]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: verifiers[i % 2].post(f"/cases/{cases[i]}/steps/verify", json={}),
                                    range(len(cases))))  # fmt: skip
        assert [a.status_code for a in answers] == [200] * len(cases), [
            a.text for a in answers if a.status_code != 200
        ]
        with flow.db.connect() as conn:
            seqs = (
                conn.execute(select(Document.__table__.c.seq).order_by(Document.__table__.c.seq))
                .scalars()
                .all()
            )
        assert seqs == list(range(1, len(cases) + 1))  # one per case, no gap, no duplicate

        # Two reviewers act on the same version of one case through different servers.
        case_id = cases[0]
        version = flow.show(case_id)["version"]
        reviewers = [Api(bases[0], "prov50"), Api(bases[1], "prov50b")]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(
                lambda r: r.post(f"/cases/{case_id}/steps/confirm", json={"version": version, "note": "同意"}),
                reviewers,
            ))  # fmt: skip
        assert sorted(a.status_code for a in answers) == [200, 409]
        refused = next(a for a in answers if a.status_code == 409).json()["error"]
        assert refused["code"] == "conflict" and "刷新" in refused["message"]
        history = flow.show(case_id)["history"]
        assert [e["trigger"] for e in history].count("confirm") == 1

        # An authentication request compared twice at once (two Center officers, two servers): once.
        auth = flow.open_case("authentication", "10611", "xwzx01", OPEN_DATA["authentication"]).case_id
        flow.add_user("xwzx02", "高远", "officer", "XWZX")
        flow.set_password("xwzx02", demo.DEMO_PASSWORD)
        officers = [Api(bases[0], "xwzx01"), Api(bases[1], "xwzx02")]
        version = flow.show(auth)["version"]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(
                lambda o: o.post(f"/cases/{auth}/steps/check", json={"version": version}), officers,
            ))  # fmt: skip
        assert sorted(a.status_code for a in answers) == [200, 409]
        assert [e["trigger"] for e in flow.show(auth)["history"]].count("check") == 1
        assert flow.verify_audit().ok
    finally:
        _stop(procs)


def test_two_schedulers_escalate_each_breach_once(pg, tmp_path):
    url, flow = pg
    late = []
    for i in range(12):  # decided long ago: the report is late as soon as the case is opened
        data = {**OPEN_DATA["revocation"], "cert_no": f"10635420210{i:05d}", "decision_date": "2026-10-01"}
        late.append(flow.open_case("revocation", "10635", "10635XW01", data).case_id)
    schedulers = [
        subprocess.Popen([CLI, "--db", url, "--now", START.isoformat(), "scheduler", "run", "--interval", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp_path), cwd=tmp_path)
        for _ in range(2)
    ]  # fmt: skip
    try:
        findings = DeadlineFinding.__table__
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with flow.db.connect() as conn:
                if conn.execute(select(func.count()).select_from(findings)).scalar_one() >= len(late):
                    break
            time.sleep(0.3)
        time.sleep(3)  # several more rounds of both schedulers: nothing may be done twice
    finally:
        _stop(schedulers)
    with flow.db.connect() as conn:
        found = conn.execute(select(findings.c.case_id, findings.c.kind)).all()
        outbox = OutboxMessage.__table__
        told = conn.execute(
            select(outbox.c.case_id, outbox.c.kind, func.count()).group_by(outbox.c.case_id, outbox.c.kind)
        ).all()
    assert sorted(found) == sorted((case_id, "breach") for case_id in late)
    assert {(case_id, kind) for case_id, kind, _ in told} == {
        (c, k) for c in late for k in ("breach", "escalation")
    }
    assert all(count == 1 for _case, _kind, count in told)
