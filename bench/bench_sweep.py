"""Benchmark: one deadline sweep over many open deadlines; its cost must follow the number due, not the number open.

Requirement: with 1,000,000 open deadlines in SQLite, one sweep that finds the due ones takes well under a
second, and its cost grows with the number due, not the number open.

What is measured
----------------
For each size N of ``--open`` (default 1,000,000) and of ``--small-open`` (default 100,000), a base SQLite
*file* is built once: ``db.make_engine`` + ``db.engine.create_schema`` (every index of the real schema), the
calendar from the ``chinesecalendar`` package (``seed_from_package``), a national office, the Degree Center,
a province (50) and a unit (10635, under the province), one user, then N open deadlines on N/1000 open cases,
bulk-inserted with the stdlib ``sqlite3`` module. Every deadline is ``running``, not stopped, not flagged,
not provisional, owned by the unit or the province (alternately), and due after the reminder window
(2026-11-26 .. 2026-12-31, ``due_at`` = the end of that day in Asia/Shanghai, as the engine computes it).

For each number due D in ``--due`` (default 0, 100, 1000, 10000) the base file is copied and D of its
deadlines, spread evenly over the ids, are moved into the due zone (they stay among the N open ones):
half past due (a breach each), a quarter due today (a ``due_today`` and a ``reminder`` each) and the rest due
within the reminder window (a ``reminder`` each). Then, on a fresh ``db.make_engine`` (WAL,
synchronous=FULL, foreign keys on, exactly as in production), with the calendar cache warmed
(``CachedCalendar.get()``), one call of ``Sweeper(engine, CachedCalendar(engine)).sweep(now)`` is timed
(``seconds``), with ``now`` = 2026-11-20 09:00 Asia/Shanghai. ``findings`` is what that sweep reported
(checked against the expected count and against the ``deadline_findings`` table). ``second_sweep_seconds``
times a second sweep right after, which finds nothing: the steady cost of sweeping N open deadlines.

``candidate_query_ms`` is the best-of-5 time of each candidate query alone on that copy before the sweep
(read-only, the first batch of each pass): the cost of *finding* the due rows, as opposed to recording them.

Query plans: first, on a copy per N with a few due, a sweep runs with a ``before_cursor_execute`` listener
that records the SQL and parameters of its candidate queries (the provisional recompute query and the three
passes: breach, due_today, reminder); each is run through ``EXPLAIN QUERY PLAN`` with the same parameters
(``query_plans``, for the large N). Any ``SCAN ...`` line (a whole table or index read) is listed in
``full_scans``. No ``ANALYZE`` is run: these are the plans a production database without statistics gets.

Goal checks (``goal_checks``; ``meets_goal`` is all of them): no full scan; the same plans at both sizes; for
each D, the time at the large N is at most 2x the time at the small N (``ratio_large_over_small_open_by_due``;
a cost that followed N would give about 10x); and every sweep at the large N takes under 1 s.

Usage: ``python bench/bench_sweep.py [--open 1000000] [--small-open 100000] [--due 0,100,1000,10000]
[--quick] [--dir DIR]``. ``--quick`` is ``--open 20000 --small-open 5000 --due 0,10,100``. Prints one JSON
object to stdout (progress goes to stderr); exits 0 whether or not the goal is met (``meets_goal``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import sqlalchemy  # noqa: E402
from sqlalchemy import event, insert  # noqa: E402

from db import make_engine, transaction  # noqa: E402
from db.clock import SHANGHAI, end_of_day, to_utc  # noqa: E402
from db.engine import create_schema  # noqa: E402
from db.models import Organisation, User  # noqa: E402
from scheduler.calendar import CachedCalendar, seed_from_package  # noqa: E402
from scheduler.sweep import Sweeper  # noqa: E402

GOAL = "well under 1 s at 1,000,000 open; grows with due, not open"
GOAL_SECONDS = 1.0
MAX_OPEN_RATIO = 2.0  # time at the large size over time at the small size, same number due
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
DEADLINES_PER_CASE = 1000
# Not due: after the reminder window (3 working days after Friday 2026-11-20 is Wednesday 2026-11-25).
FUTURE_FIRST = date(2026, 11, 26)
FUTURE_DAYS = 36  # .. 2026-12-31
PAST_DAYS = 19  # breaches are due 2026-11-01 .. 2026-11-19
PLAN_DUE = 100  # due deadlines in the copy whose sweep's SQL is captured for the plans


def log(message: str) -> None:
    print(f"[bench_sweep] {message}", file=sys.stderr, flush=True)


def _sa_datetime(value: datetime) -> str:
    """How SQLAlchemy's SQLite DateTime stores a value (UTC wall time, no offset)."""
    return to_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sa_date(value: date) -> str:
    return value.isoformat()


def _open_raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


# -- the base file: N open deadlines, none due -----------------------------------------------------------
def build_base(path: Path, n_open: int) -> dict[str, Any]:
    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{path}")
    try:
        create_schema(engine)
        orgs = Organisation.__table__
        users = User.__table__
        stamp = to_utc(NOW) - timedelta(days=400)
        with transaction(engine) as conn:
            seed_from_package(conn, stamp)

            def org(code: str, name: str, kind: str, parent: int | None) -> int:
                values = {"code": code, "name": name, "kind": kind, "parent_id": parent, "created_at": stamp}
                return conn.execute(insert(orgs).values(**values)).inserted_primary_key[0]

            org("XWB", "国务院学位委员会办公室", "national", None)
            org("XWZX", "教育部学位与研究生教育发展中心", "center", None)
            province = org("50", "重庆市学位委员会办公室", "province", None)
            unit = org("10635", "西南大学", "unit", province)
            user = conn.execute(
                insert(users).values(
                    username="10635XW01", name="李明", role="collector", org_id=unit, active=True,
                    created_at=stamp,
                )
            ).inserted_primary_key[0]  # fmt: skip
    finally:
        engine.dispose()

    n_cases = max(1, -(-n_open // DEADLINES_PER_CASE))
    conn = _open_raw(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # setup only; the measured engine uses synchronous=FULL
        conn.execute("PRAGMA cache_size=-524288")  # 512 MiB for building the indexes
        opened = _sa_datetime(stamp)
        genesis = "0" * 64
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO cases (id, type, state, rule_set, org_id, payload, version, opened_by, opened_at,"
            " updated_at, closed_at, last_seq, head_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (case_id, "photo", "filed", "2013", unit, "{}", 1, user, opened, opened, None, 1, genesis)
                for case_id in range(1, n_cases + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO deadlines (id, case_id, name, label, owner, days, working, start_date, basis_date,"
            " basis_days, due_date, due_at, provisional, status, remaining_days, started_event_id,"
            " stopped_event_id, stopped_at, reminded_at, due_today_at, breached_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _future_deadlines(n_open, n_cases),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count = conn.execute("SELECT count(*) FROM deadlines WHERE stopped_at IS NULL").fetchone()[0]
    finally:
        conn.close()
    if count != n_open:
        raise RuntimeError(f"base file has {count} open deadlines, expected {n_open}")
    return {"cases": n_cases, "build_seconds": round(time.perf_counter() - started, 2),
            "file_mb": round(path.stat().st_size / 2**20, 1)}  # fmt: skip


def _future_deadlines(n_open: int, n_cases: int) -> Iterator[tuple[Any, ...]]:
    """Rows in the order of their due time (as they would mostly arrive), none due on NOW."""
    per_day = -(-n_open // FUTURE_DAYS)
    due_ats = [_sa_datetime(end_of_day(FUTURE_FIRST + timedelta(days=d))) for d in range(FUTURE_DAYS)]
    for i in range(n_open):
        offset = i // per_day
        due = FUTURE_FIRST + timedelta(days=offset)
        start = _sa_date(due - timedelta(days=28))
        owner = "unit" if i % 2 == 0 else "province"
        yield (
            i + 1, 1 + i % n_cases, "review", "审核", owner, 20, 1, start, start, 20, _sa_date(due),
            due_ats[offset], 0, "running", None, None, None, None, None, None, None,
        )  # fmt: skip


# -- one configuration: copy the base, make D of its deadlines due ---------------------------------------
def due_plan(d: int) -> dict[str, int]:
    breach = d // 2
    today = d // 4
    return {"breach": breach, "due_today": today, "reminder": d - breach - today}


def make_due(path: Path, n_open: int, d: int, horizon: date) -> dict[str, int]:
    """Move D deadlines, spread evenly over the ids, into the due zone; returns the findings expected."""
    plan = due_plan(d)
    today = NOW.astimezone(SHANGHAI).date()
    reminder_days = [today + timedelta(days=k) for k in range(1, (horizon - today).days + 1)]
    kinds = ["breach"] * plan["breach"] + ["due_today"] * plan["due_today"] + ["reminder"] * plan["reminder"]
    step = max(1, n_open // d) if d else 1
    rows = []
    for i, kind in enumerate(kinds):
        if kind == "breach":
            due = today - timedelta(days=1 + i % PAST_DAYS)
        elif kind == "due_today":
            due = today
        else:
            due = reminder_days[i % len(reminder_days)]
        rows.append((_sa_date(due), _sa_datetime(end_of_day(due)), 1 + i * step))
    conn = _open_raw(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("UPDATE deadlines SET due_date = ?, due_at = ? WHERE id = ?", rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return {"breach": plan["breach"], "due_today": plan["due_today"],
            "reminder": plan["reminder"] + plan["due_today"]}  # fmt: skip


def copy_base(base: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(base, target)


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def reminder_horizon(base: Path) -> date:
    engine = make_engine(f"sqlite:///{base}")
    try:
        horizon, _ = CachedCalendar(engine).get().due(NOW.astimezone(SHANGHAI).date(), 3, True)
    finally:
        engine.dispose()
    return horizon


def measure(path: Path, n_open: int, d: int, expected: dict[str, int]) -> dict[str, Any]:
    engine = make_engine(f"sqlite:///{path}")
    try:
        calendar = CachedCalendar(engine)
        calendar.get()  # warm: the timed section is the sweep
        sweeper = Sweeper(engine, calendar)
        start = time.perf_counter()
        report = sweeper.sweep(NOW)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        again = sweeper.sweep(NOW)
        second = time.perf_counter() - start
        with engine.connect() as conn:
            stored = dict(
                conn.exec_driver_sql("SELECT kind, count(*) FROM deadline_findings GROUP BY kind").all()
            )
            open_count = conn.exec_driver_sql(
                "SELECT count(*) FROM deadlines WHERE stopped_at IS NULL"
            ).scalar_one()
    finally:
        engine.dispose()
    got = {"breach": report.breaches, "due_today": report.due_today, "reminder": report.reminders}
    if got != expected or {k: stored.get(k, 0) for k in expected} != expected:
        raise RuntimeError(f"open={n_open} due={d}: expected {expected}, sweep {got}, table {stored}")
    if again.findings or open_count != n_open:
        raise RuntimeError(
            f"open={n_open} due={d}: second sweep found {len(again.findings)}; open {open_count}"
        )
    return {
        "open": n_open,
        "due": d,
        "seconds": round(seconds, 4),
        "findings": len(report.findings),
        "by_kind": got,
        "escalations": report.escalations,
        "messages": report.messages,
        "ms_per_finding": round(1000 * seconds / len(report.findings), 3) if report.findings else None,
        "second_sweep_seconds": round(second, 4),
    }


# -- the candidate queries and their plans ---------------------------------------------------------------
def _candidate_kind(statement: str) -> str | None:
    flat = " ".join(statement.split())
    if not flat.startswith("SELECT") or "FROM deadlines" not in flat:
        return None
    if "deadlines.provisional IS 1" in flat:
        return "provisional"
    if "JOIN cases" not in flat:
        return None
    if "deadlines.breached_at IS NULL" in flat:
        return "breach"
    if "deadlines.due_today_at IS NULL" in flat:
        return "due_today"
    if "deadlines.reminded_at IS NULL" in flat:
        return "reminder"
    return None


def capture_plans(path: Path) -> dict[str, Any]:
    """Sweep once with a listener recording the candidate queries; return their plans and solo times."""
    captured: dict[str, tuple[str, tuple[Any, ...]]] = {}
    engine = make_engine(f"sqlite:///{path}")

    def listener(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        kind = _candidate_kind(statement)
        if kind is not None and kind not in captured:
            captured[kind] = (statement, tuple(parameters))

    try:
        calendar = CachedCalendar(engine)
        calendar.get()
        event.listen(engine, "before_cursor_execute", listener)
        Sweeper(engine, calendar).sweep(NOW)
        event.remove(engine, "before_cursor_execute", listener)
    finally:
        engine.dispose()
    missing = {"provisional", "breach", "due_today", "reminder"} - set(captured)
    if missing:
        raise RuntimeError(f"candidate queries not seen during the sweep: {sorted(missing)}")

    plans: dict[str, Any] = {}
    conn = _open_raw(path)
    try:
        for kind in ("provisional", "breach", "due_today", "reminder"):
            statement, params = captured[kind]
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params)]
            plans[kind] = {"sql": " ".join(statement.split()), "params": list(params), "plan": plan}
    finally:
        conn.close()
    return plans


def time_candidates(path: Path, plans: dict[str, Any], repeat: int = 5) -> dict[str, float]:
    """Best-of-`repeat` time of each candidate query alone (ms), on a copy with due rows not yet swept."""
    conn = _open_raw(path)
    try:
        result = {}
        for kind, info in plans.items():
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                conn.execute(info["sql"], info["params"]).fetchall()
                best = min(best, time.perf_counter() - start)
            result[kind] = round(best * 1000, 3)
    finally:
        conn.close()
    return result


def full_scans(plan: list[str]) -> list[str]:
    """Plan lines that read a whole table or a whole index (SCAN ...), rather than searching a range of one."""
    return [line for line in plan if line.startswith("SCAN ")]


def run_size(
    workdir: Path, n_open: int, dues: list[int]
) -> tuple[dict[str, Any], list[dict[str, Any]], dict]:
    base = workdir / f"base-{n_open}.db"
    log(f"building {n_open} open deadlines ...")
    info = build_base(base, n_open)
    log(f"built in {info['build_seconds']} s ({info['file_mb']} MiB)")
    horizon = reminder_horizon(base)
    target = workdir / "sweep.db"
    # The candidate queries (SQL and parameters) and their plans, from a sweep on a copy with a few due.
    copy_base(base, target)
    make_due(target, n_open, min(PLAN_DUE, n_open), horizon)
    plans = capture_plans(target)
    runs = []
    for d in dues:
        copy_base(base, target)
        expected = make_due(target, n_open, d, horizon)
        query_ms = time_candidates(target, plans)  # read-only, before the sweep: the first batch of each pass
        run = measure(target, n_open, d, expected)
        run["candidate_query_ms"] = query_ms
        runs.append(run)
        log(f"open={n_open} due={d}: {run['seconds']} s, {run['findings']} findings, queries {query_ms} ms")
    remove_db(target)
    remove_db(base)
    info["horizon"] = horizon.isoformat()
    return info, runs, plans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--open", type=int, default=1_000_000, help="open deadlines (the large size)")
    parser.add_argument("--small-open", type=int, default=100_000, help="open deadlines (the small size)")
    parser.add_argument("--due", default="0,100,1000,10000", help="comma-separated numbers due")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: --open 20000 --small-open 5000 --due 0,10,100"
    )
    parser.add_argument(
        "--dir", default=None, help="directory for the temporary databases (default: system tmp)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.open, args.small_open, args.due = 20_000, 5_000, "0,10,100"
    dues = [int(x) for x in args.due.split(",") if x.strip()]
    sizes = [args.open] + ([args.small_open] if args.small_open and args.small_open != args.open else [])
    for n in sizes:
        if n < 1 or any(d < 0 or d > n for d in dues):
            parser.error("every --due must be between 0 and the number open")

    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    plans_by_size: dict[int, dict[str, Any]] = {}
    builds: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="degreeflow-bench-sweep-", dir=args.dir) as tmp:
        for n in sizes:
            info, size_runs, plans = run_size(Path(tmp), n, dues)
            builds[str(n)] = info
            runs.extend(size_runs)
            plans_by_size[n] = plans

    large = plans_by_size[args.open]
    query_plans = {
        kind: {"sql": p["sql"], "params": p["params"], "plan": p["plan"]} for kind, p in large.items()
    }
    scans = {
        f"{n}:{kind}": full_scans(p["plan"])
        for n, plans in plans_by_size.items()
        for kind, p in plans.items()
        if full_scans(p["plan"])
    }
    plans_equal = all(
        [p["plan"] for p in plans.values()] == [p["plan"] for p in large.values()]
        for plans in plans_by_size.values()
    )

    def seconds(n: int, d: int) -> float | None:
        return next((r["seconds"] for r in runs if r["open"] == n and r["due"] == d), None)

    # Cost vs open: the same D at both sizes (10x the open deadlines should cost about the same, not 10x).
    vs_open = {
        str(d): round(seconds(args.open, d) / seconds(args.small_open, d), 2)
        for d in dues
        if len(sizes) > 1 and seconds(args.small_open, d)
    }
    under = {str(r["due"]): r["seconds"] < GOAL_SECONDS for r in runs if r["open"] == args.open}
    checks = {
        "no_full_scan": not scans,
        "plans_equal_across_sizes": plans_equal,
        "open_does_not_matter": all(ratio <= MAX_OPEN_RATIO for ratio in vs_open.values()),
        "under_1s_at_large_open_by_due": under,
    }
    result = {
        "benchmark": "sweep",
        "now": NOW.isoformat(),
        "runs": runs,
        "query_plans": query_plans,
        "full_scans": scans,
        "ratio_large_over_small_open_by_due": vs_open,
        "goal": GOAL,
        "goal_checks": checks,
        "meets_goal": bool(
            not scans and plans_equal and checks["open_does_not_matter"] and all(under.values())
        ),
        "builds": builds,
        "sqlite_version": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "cpus": os.cpu_count(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
