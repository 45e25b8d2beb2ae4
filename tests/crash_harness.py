"""Crash harness (issue 7 item 3): SIGKILL the web or the scheduler process at random moments during a stream
of transitions, document issues and sweeps, restart it, and check the invariants afterwards.

Processes are the real ones (`degreeflow serve --no-scheduler`, `degreeflow scheduler run --interval 1`) on one
database. A driver thread walks revocation cases through the JSON API as people would: open (some opened after
their limit, so the sweep has breaches to escalate), submit, verify (issues a numbered report), confirm, revoke.
Every step sends the case version it saw; after an error (the server died mid-request) the driver reloads the
case and goes on from its real state. Only answered requests (HTTP 2xx) enter the ledger.

Invariants checked by `check(...)`:
* every acknowledged transition is in the database exactly once, with its audit event at the version it
  reported, and no case has a trigger twice (the walk never repeats one);
* events of each case are numbered 1..n without a gap and every hash chain verifies;
* document numbers of each organisation and year are 1..n: none skipped, none duplicated;
* every breached deadline was found and escalated exactly once (one finding, one message to the unit, one to
  its supervisor).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from cases.service import DegreeFlow
from db import CaseEvent, DeadlineFinding, Document, FixedClock, OutboxMessage, make_engine
from db.models import Deadline
from degreeflow import demo
from tests.live import free_port, wait_ready

CLI = str(Path(sys.executable).parent / "degreeflow")
SECRET = "c" * 48
WALK = [("submit", "10635XW01", {"resolution_no": "西南大学学位〔2026〕9号"}), ("verify", "10635XW02", {}),
        ("confirm", "prov50", {}), ("revoke", "xwb01", {})]  # fmt: skip
NEXT = {"draft": 0, "unit_check": 1, "reported": 2, "confirmed": 3}


@dataclass
class Ledger:
    acked: list[tuple[int, str, int]] = field(default_factory=list)  # (case, trigger, version after)
    opened: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


class Cluster:
    def __init__(self, url: str, now: str, workdir: Path):
        self.url, self.now, self.workdir = url, now, workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DEGREEFLOW_SECRET_KEY": SECRET,
            "DEGREEFLOW_DATA_DIR": str(workdir / "data"),
        }
        self.web: subprocess.Popen[bytes] | None = None
        self.scheduler: subprocess.Popen[bytes] | None = None

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([CLI, "--db", self.url, "--now", self.now, *args], env=self.env, cwd=self.workdir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def start_web(self) -> None:
        self.web = self._spawn("serve", "--no-scheduler", "--port", str(self.port))
        wait_ready(self.base)

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("scheduler", "run", "--interval", "1")

    def kill(self, which: str) -> None:
        proc = self.web if which == "web" else self.scheduler
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for proc in (self.web, self.scheduler):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


class Driver(threading.Thread):
    """Walks cases through the API until told to stop; survives the server dying under it."""

    def __init__(self, base: str, seed: int):
        super().__init__(daemon=True)
        self.base, self.rng = base, random.Random(seed)
        self.ledger = Ledger()
        self.stop_event = threading.Event()
        self.clients: dict[str, tuple[httpx.Client, str]] = {}
        self.serial = 0

    def _client(self, username: str) -> httpx.Client:
        if username not in self.clients:
            client = httpx.Client(base_url=self.base + "/api/v1", timeout=10)
            answer = client.post("/session", json={"username": username, "password": demo.DEMO_PASSWORD})
            answer.raise_for_status()
            client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
            self.clients[username] = (client, "")
        return self.clients[username][0]

    def _call(self, username: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            return self._client(username).request(method, path, **kwargs)
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            self.ledger.errors[type(exc).__name__] += 1
            self.clients.pop(username, None)
            time.sleep(0.05)
            return None

    def _open(self) -> None:
        self.serial += 1
        late = self.rng.random() < 0.3  # decided long ago: late at once, the sweep must escalate it
        data = {"cert_no": f"1063542021{self.serial:06d}", "name": "钱某某", "conferral_date": "2021-06-25",
                "decision_date": "2026-10-01" if late else "2026-11-18"}  # fmt: skip
        answer = self._call("10635XW01", "POST", "/cases", json={"type": "revocation", "data": data})
        if answer is not None and answer.status_code == 201:
            body = answer.json()
            self.ledger.opened.append(body["id"])
            self.ledger.acked.append((body["id"], "open", body["version"]))

    def _advance(self, case_id: int) -> bool:
        """One step on the case from its real state; False when it is finished."""
        shown = self._call("xwb01", "GET", f"/cases/{case_id}")
        if shown is None or shown.status_code != 200:
            return True
        case = shown.json()
        if case["state"] not in NEXT:
            return False
        trigger, user, data = WALK[NEXT[case["state"]]]
        if trigger == "verify" and "revocation_resolution" not in [a["purpose"] for a in case["attachments"]]:
            # The report encloses the committee's resolution: the collector uploads it first.
            scan = {"file": ("撤销决议.pdf", b"%PDF-1.4\n% scan\n", "application/pdf")}
            answer = self._call("10635XW01", "POST", f"/cases/{case_id}/attachments", files=scan,
                                data={"purpose": "revocation_resolution"})  # fmt: skip
            if answer is not None and answer.status_code != 201:
                self.ledger.errors[f"http_{answer.status_code}"] += 1
            return True
        answer = self._call(user, "POST", f"/cases/{case_id}/steps/{trigger}",
                            json={"data": data, "version": case["version"]})  # fmt: skip
        if answer is not None and answer.status_code == 200:
            self.ledger.acked.append((case_id, trigger, answer.json()["version"]))
        elif answer is not None:
            self.ledger.errors[f"http_{answer.status_code}"] += 1
        return True

    def run(self) -> None:
        active: list[int] = []
        while not self.stop_event.is_set():
            if len(active) < 4:
                before = len(self.ledger.opened)
                self._open()
                if len(self.ledger.opened) > before:
                    active.append(self.ledger.opened[-1])
                continue
            case_id = self.rng.choice(active)
            if not self._advance(case_id):
                active.remove(case_id)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)
        for client, _ in self.clients.values():
            client.close()


def prepare(url: str, now: Any) -> DegreeFlow:
    from db import drop_schema

    engine = make_engine(url)
    drop_schema(engine)
    flow = DegreeFlow(engine, FixedClock(now))
    flow.init_schema(migrate=True)
    demo.seed(flow, cases=False)
    return flow


def run(url: str, now: Any, workdir: Path, kills: int, seed: int = 1, log: Any = None) -> dict[str, Any]:
    """Start the cluster, kill and restart processes `kills` times under load, settle, check. Returns a report."""
    workdir.mkdir(parents=True, exist_ok=True)
    flow = prepare(url, now)
    rng = random.Random(seed)
    cluster = Cluster(url, now.isoformat(), workdir)
    cluster.start_web()
    cluster.start_scheduler()
    driver = Driver(cluster.base, seed)
    driver.start()
    started = time.monotonic()
    killed: Counter[str] = Counter()
    try:
        for number in range(kills):
            time.sleep(rng.uniform(0.05, 0.6))
            which = "web" if rng.random() < 0.5 else "scheduler"
            cluster.kill(which)
            killed[which] += 1
            if which == "web":
                cluster.start_web()
            else:
                cluster.start_scheduler()
            if log and (number + 1) % 10 == 0:
                log(f"{number + 1} kills, {len(driver.ledger.acked)} acknowledged steps")
        driver.finish()
        time.sleep(3.5)  # the scheduler sweeps a few more times: whatever a kill interrupted is finished now
    finally:
        driver.finish()
        cluster.stop()
    elapsed = time.monotonic() - started
    problems = check(flow, driver.ledger)
    report = {
        "kills": dict(killed), "seconds": round(elapsed, 1), "cases": len(driver.ledger.opened),
        "acknowledged_steps": len(driver.ledger.acked), "client_errors": dict(driver.ledger.errors),
        "problems": problems, **counts(flow),
    }  # fmt: skip
    flow.db.dispose()
    return report


def counts(flow: DegreeFlow) -> dict[str, int]:
    with flow.db.connect() as conn:
        return {
            "events": conn.execute(select(func.count()).select_from(CaseEvent.__table__)).scalar_one(),
            "documents": conn.execute(select(func.count()).select_from(Document.__table__)).scalar_one(),
            "breaches": conn.execute(
                select(func.count()).select_from(DeadlineFinding.__table__)
                .where(DeadlineFinding.__table__.c.kind == "breach")
            ).scalar_one(),
        }  # fmt: skip


def check(flow: DegreeFlow, ledger: Ledger) -> list[str]:
    problems: list[str] = []
    events = CaseEvent.__table__
    with flow.db.connect() as conn:
        rows = conn.execute(select(events.c.case_id, events.c.seq, events.c.trigger)).all()
        docs = conn.execute(
            select(Document.__table__.c.org_id, Document.__table__.c.year, Document.__table__.c.seq)
        ).all()
        deadlines = Deadline.__table__
        breached = conn.execute(
            select(deadlines.c.id, deadlines.c.case_id).where(deadlines.c.breached_at.is_not(None) | (deadlines.c.status == "breached"))
        ).all()  # fmt: skip
        findings = conn.execute(
            select(DeadlineFinding.__table__.c.deadline_id, DeadlineFinding.__table__.c.kind)
        ).all()
        outbox = OutboxMessage.__table__
        told = conn.execute(select(outbox.c.deadline_id, outbox.c.kind)).all()
    by_case: dict[int, list[tuple[int, str]]] = {}
    for case_id, seq, trigger in rows:
        by_case.setdefault(case_id, []).append((seq, trigger))
    for case_id, items in by_case.items():
        seqs = sorted(seq for seq, _ in items)
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"case {case_id}: event numbers {seqs}")
        repeated = [t for t, n in Counter(t for _, t in items).items() if n > 1]
        if repeated:
            problems.append(f"case {case_id}: triggers recorded twice {repeated}")
    for case_id, trigger, version in ledger.acked:
        # versions count steps: open is version 1 and event 1; each later step adds one of each
        if (version, trigger) not in set(by_case.get(case_id, [])):
            problems.append(f"acknowledged {trigger} of case {case_id} (version {version}) has no event")
    report = flow.verify_audit()
    if not report.ok:
        problems.append(f"hash chains: {report.problems[:3]}")
    per_year: dict[tuple[int, int], list[int]] = {}
    for org_id, year, seq in docs:
        per_year.setdefault((org_id, year), []).append(seq)
    for key, seqs in per_year.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            problems.append(f"document numbers of {key}: {sorted(seqs)[:20]}...")
    found = Counter((d, k) for d, k in findings)
    messages = Counter((d, k) for d, k in told if d is not None)
    for deadline_id, case_id in breached:
        if found[(deadline_id, "breach")] != 1:
            problems.append(
                f"deadline {deadline_id} of case {case_id}: {found[(deadline_id, 'breach')]} breach findings"
            )
        if messages[(deadline_id, "escalation")] != 1 or messages[(deadline_id, "breach")] != 1:
            problems.append(f"deadline {deadline_id}: escalated {messages[(deadline_id, 'escalation')]}x, "
                            f"told {messages[(deadline_id, 'breach')]}x")  # fmt: skip
    return problems
