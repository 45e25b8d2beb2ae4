"""The deadline sweep: reminders, due today, breaches escalated exactly once, restarts and two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import DeadlineFinding, OutboxMessage
from db.clock import SHANGHAI
from tests.helpers import fire, open_case

ROOT = Path(__file__).resolve().parent.parent


def _at(clock, text):
    clock.set(datetime.fromisoformat(text).replace(tzinfo=SHANGHAI))


def _counts(flow):
    with flow.db.connect() as conn:
        findings = conn.execute(
            select(DeadlineFinding.kind, func.count()).group_by(DeadlineFinding.kind)  # type: ignore[arg-type]
        ).all()
        messages = conn.execute(select(func.count()).select_from(OutboxMessage.__table__)).scalar()
    return dict(findings), messages


def _submitted_supplement(flow, clock):
    _at(clock, "2026-11-20T09:00")
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")  # province decides in 30 days: Mon 2026-12-21
    return case_id


def test_reminder_due_today_and_breach_each_once(flow, clock):
    case_id = _submitted_supplement(flow, clock)
    assert flow.show(case_id)["deadlines"][0]["due_date"] == "2026-12-21"
    _at(clock, "2026-12-15T09:00")  # 4 working days before: nothing yet
    assert flow.sweep()[0].findings == []
    _at(clock, "2026-12-16T09:00")  # 17, 18, 21 December: within 3 working days
    assert [f["kind"] for f in flow.sweep()[0].findings] == ["reminder"]
    assert flow.sweep()[0].findings == []
    _at(clock, "2026-12-21T08:00")
    assert [f["kind"] for f in flow.sweep()[0].findings] == ["due_today"]
    _at(clock, "2026-12-21T23:59:59")  # still the last day
    assert flow.sweep()[0].findings == []
    _at(clock, "2026-12-22T00:00:01")
    report = flow.sweep()[0]
    assert [f["kind"] for f in report.findings] == ["breach"]
    assert report.escalations == 1
    for _ in range(3):
        assert flow.sweep()[0].findings == []
    assert _counts(flow) == ({"reminder": 1, "due_today": 1, "breach": 1}, 4)
    # The province was reminded and told of the breach; the national office got the escalation.
    assert [m["kind"] for m in flow.inbox("prov45")] == ["breach", "due_today", "reminder"]
    (escalation,) = flow.inbox("xwb01")
    assert escalation["kind"] == "escalation" and "广西大学" in escalation["subject"]
    assert flow.inbox("10593XW01") == []
    (deadline,) = flow.deadlines(overdue=True)
    assert deadline["status"] == "breached" and deadline["case_id"] == case_id


def test_catch_up_after_downtime_reports_the_breach_not_stale_reminders(flow, clock):
    _submitted_supplement(flow, clock)
    _at(clock, "2027-01-05T10:00")
    report = flow.sweep()[0]
    assert [f["kind"] for f in report.findings] == ["breach"]


def test_a_case_opened_after_its_limit_is_late_at_once_and_the_unit_is_escalated(flow, clock):
    _at(clock, "2026-11-20T09:00")
    case_id = open_case(flow, "revocation", decision_date="2026-10-01")  # 10 days passed long ago
    (deadline,) = flow.show(case_id)["deadlines"]
    assert deadline["status"] == "breached"
    report = flow.sweep()[0]
    assert [f["kind"] for f in report.findings] == ["breach"] and report.escalations == 1
    assert [m["kind"] for m in flow.inbox("prov50")] == ["escalation"]  # the unit's supervisor
    assert [m["kind"] for m in flow.inbox("10635XW02")] == ["breach"]  # the unit itself
    assert flow.sweep()[0].findings == []
    fire(flow, case_id, "revocation", "submit", "collector")
    fire(flow, case_id, "revocation", "verify", "verifier")
    assert flow.show(case_id)["deadlines"][0]["status"] == "breached"  # submitted late stays on record


def test_paused_clock_does_not_breach(flow, clock):
    _at(clock, "2026-11-20T09:00")
    case_id = open_case(flow, "authentication")
    fire(flow, case_id, "authentication", "check", "center")
    fire(flow, case_id, "authentication", "send_to_unit", "center")
    _at(clock, "2026-12-10T09:00")  # center_total would be past due had it run; it is paused
    kinds = {(f["kind"], d["name"]) for f in flow.sweep()[0].findings for d in flow.show(case_id)["deadlines"]
             if d["id"] == f["deadline_id"]}  # fmt: skip
    assert ("breach", "unit_answer") in kinds
    assert not any(name == "center_total" for _kind, name in kinds)


def _many_due(flow, clock, count):
    _at(clock, "2026-11-20T09:00")
    for _ in range(count):
        open_case(flow, "photo")  # no deadline
        case_id = open_case(flow, "errata")
        fire(flow, case_id, "errata", "submit", "collector", field="degree_type", old_value="工学学士",
             new_value="理学学士")  # fmt: skip  # key field: province decides in 5 working days (2026-11-27)


def _worker(db_url, now, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sweep_worker", db_url, now, *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_two_processes_sweeping_at_once_escalate_exactly_once(flow, clock, db_url):
    _many_due(flow, clock, 40)
    workers = [_worker(db_url, "2026-12-01T09:00", "--batch-size", "7") for _ in range(2)]
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        results.append(json.loads(stdout))
    assert sum(r["breaches"] for r in results) == 40
    assert sum(r["escalations"] for r in results) == 40
    assert _counts(flow) == ({"breach": 40}, 80)


def test_restart_in_the_middle_of_a_sweep_loses_and_duplicates_nothing(flow, clock, db_url):
    _many_due(flow, clock, 25)
    crashed = _worker(db_url, "2026-12-01T09:00", "--batch-size", "10", "--crash-after", "15")
    crashed.communicate(timeout=120)
    assert crashed.returncode == 3
    # The first batch of 10 committed; the second died half-way and rolled back whole.
    assert _counts(flow) == ({"breach": 10}, 20)
    _at(clock, "2026-12-01T09:01")
    report = flow.sweep()[0]
    assert report.breaches == 15
    assert _counts(flow) == ({"breach": 25}, 50)
    assert flow.sweep()[0].findings == []


@pytest.mark.parametrize("processes", [2])
def test_two_scheduler_processes_run_the_sweep_once(flow, clock, db_url, tmp_path, processes):
    """`degreeflow scheduler run` in two real processes, against the same database."""
    _many_due(flow, clock, 10)
    env = {**os.environ, "DEGREEFLOW_DATABASE_URL": db_url, "DEGREEFLOW_NOW": "2026-12-01T09:00"}
    exe = str(Path(sys.executable).parent / "degreeflow")
    procs = [
        subprocess.Popen(
            [exe, "scheduler", "run", "--interval", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(processes)
    ]
    try:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _counts(flow)[0].get("breach", 0) < 10:
            time.sleep(0.5)
        time.sleep(3)  # several more runs of both schedulers
    finally:
        for proc in procs:
            proc.terminate()
        logs = [proc.communicate(timeout=30)[0] for proc in procs]
    assert _counts(flow) == ({"breach": 10}, 20), logs
    assert all("deadline sweep" in log for log in logs), logs
    with flow.db.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("select id from apscheduler_jobs")).scalars().all() == [
            "degreeflow-deadline-sweep"
        ]
