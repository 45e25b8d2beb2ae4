"""Benchmark: end-to-end case lifecycles per second, and query times with 1,000,000 cases (issue 7).

Lifecycles
----------
A lifecycle is one revocation case walked from opening to its terminal state through the service layer, one
transaction per step, letters off (`DegreeFlow(issue_letters=False)`): open (10635XW01), submit (10635XW01),
verify (10635XW02, the second person), confirm (prov50), revoke (xwb01) — 5 transactions, each with its
audit event, deadline rows and optimistic version check. W worker processes (multiprocessing, spawn) each run
lifecycles back to back for D seconds on one database: PostgreSQL with W = 1, 2, 4 and SQLite (WAL, a file)
with W = 1. Reported: lifecycles/s and steps/s, and what limits each run: the workers' CPU seconds per wall
second (2.0 = both cores busy in Python), the CPU of the workers' PostgreSQL server processes (from /proc), and how many steps
were refused with a version conflict (none expected: each worker has its own cases).

Queries at 1,000,000 cases
--------------------------
On PostgreSQL, the same queries are timed (median of R runs, default 31) in two databases: one with 10,000
cases (named after the `--pg` database + `_10k`) and one bulk-loaded with 1,000,000 (synthetic rows as in
bench/bench_web.py, spread over `--units` units (default 100: the 4 demo units and 96 more in the 3 demo
provinces); about 65 % open, each open one with a deadline). Each load ends with VACUUM ANALYZE (the steady
state autovacuum keeps) and a checkpoint. The databases take turns probe by probe, so that a slow moment of
the machine falls on both. Probes: the province reviewer's, a unit's and the national office's work queue, one
case page (`case_for`), the national search by certificate number, and a deadline sweep with nothing
due. The aim: none more than 2x slower.

Usage: ``python bench/bench_lifecycle.py [--seconds 10] [--pg URL] [--skip-million] [--million 1000000]
[--units 100] [--repeat 31] [--skip-lifecycles]``.
Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from cases.service import DegreeFlow  # noqa: E402
from db import FixedClock, drop_schema, make_engine  # noqa: E402
from db.clock import SHANGHAI  # noqa: E402
from degreeflow import demo  # noqa: E402

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def log(message: str) -> None:
    print(f"[bench_lifecycle] {message}", file=sys.stderr, flush=True)


def prepare(url: str) -> None:
    engine = make_engine(url)
    drop_schema(engine)
    flow = DegreeFlow(engine, FixedClock(NOW))
    flow.init_schema(migrate=True)
    demo.seed(flow, cases=False)
    engine.dispose()


def _worker(url: str, worker: int, seconds: float, start_at: float, queue: Any) -> None:
    flow = DegreeFlow(make_engine(url), FixedClock(NOW), issue_letters=False)
    while time.time() < start_at:
        time.sleep(0.001)
    done = steps = conflicts = 0
    serial = 0
    backend = None
    if url.startswith("postgresql"):
        with flow.db.connect() as conn:  # the pool keeps this one connection: its server process is ours
            backend = conn.execute(text("select pg_backend_pid()")).scalar_one()
    backend0 = _proc_cpu(backend)
    cpu0 = time.process_time()
    stop = start_at + seconds
    while time.time() < stop:
        serial += 1
        data = {"cert_no": f"10635420{worker:02d}{serial:06d}", "name": "钱某某", "conferral_date": "2021-06-25",
                "decision_date": "2026-11-18"}  # fmt: skip
        case_id = flow.open_case("revocation", "10635", "10635XW01", data).case_id
        try:
            flow.fire(case_id, "submit", "10635XW01", payload={"resolution_no": "西南大学学位〔2026〕3号"})
            flow.fire(case_id, "verify", "10635XW02")
            flow.fire(case_id, "confirm", "prov50")
            flow.fire(case_id, "revoke", "xwb01")
        except Exception as exc:  # counted, not hidden
            conflicts += 1
            log(f"worker {worker}: {type(exc).__name__}: {exc}")
            continue
        done += 1
        steps += 5
    queue.put(
        {
            "lifecycles": done,
            "steps": steps,
            "refused": conflicts,
            "cpu_s": time.process_time() - cpu0,
            "backend_cpu_s": _proc_cpu(backend) - backend0,
        }
    )
    flow.db.dispose()


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of a process on this machine, from /proc; 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lifecycles(url: str, workers: int, seconds: float) -> dict[str, Any]:
    prepare(url)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 3.0  # every worker has imported and connected by then
    procs = [ctx.Process(target=_worker, args=(url, i, seconds, start_at, queue)) for i in range(workers)]
    for proc in procs:
        proc.start()
    while time.time() < start_at:
        time.sleep(0.01)
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    pg_cpu = sum(r["backend_cpu_s"] for r in results)
    for proc in procs:
        proc.join()
    done = sum(r["lifecycles"] for r in results)
    return {
        "database": url.split("+")[0].split(":")[0], "workers": workers, "seconds": seconds,
        "lifecycles_per_s": round(done / seconds, 1), "steps_per_s": round(sum(r["steps"] for r in results) / seconds, 1),
        "refused": sum(r["refused"] for r in results),
        "worker_cpu_per_wall_s": round(sum(r["cpu_s"] for r in results) / seconds, 2),
        "postgres_cpu_per_wall_s": round(pg_cpu / seconds, 2) if url.startswith("postgresql") else None,
    }  # fmt: skip


# -- queries at a million cases -------------------------------------------------------------------------------
def bulk_cases(url: str, n: int, first_id: int) -> None:
    """Insert n synthetic cases (and a deadline for each open one) with COPY-speed executemany."""
    import random

    from cases import registry

    engine = make_engine(url)
    rng = random.Random(first_id)
    types = list(registry.DEFINITIONS)
    now_utc = NOW.astimezone(UTC)
    with engine.begin() as conn:
        units = [r[0] for r in conn.execute(text("select id from organisations where kind = 'unit'"))]
        opener = conn.execute(text("select id from users where username = '10635XW01'")).scalar_one()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        batch = 20_000
        for start in range(first_id, first_id + n, batch):
            cases, deadlines = [], []
            for case_id in range(start, min(start + batch, first_id + n)):
                t = types[case_id % len(types)]
                defn = registry.DEFINITIONS[t]
                state = rng.choice(list(defn.states))
                closed = state in defn.terminal
                opened = now_utc - timedelta(days=rng.randint(0, 400))
                due = (NOW + timedelta(days=rng.randint(-20, 30))).replace(hour=23, minute=59, second=59)
                cert_no = f"{10000 + case_id % 90000}42021{case_id:07d}"
                payload = json.dumps({"cert_no": cert_no, "name": f"学生{case_id}"}, ensure_ascii=False)
                reference = cert_no if defn.reference_field else None  # as the engine keeps it
                cases.append((case_id, t, state, "2020", rng.choice(units), payload, 2, opener, opened, opened,
                              opened if closed else None, 1, "x" * 64, None if closed else due, reference,
                              f"学生{case_id}"))  # fmt: skip
                if not closed:
                    deadlines.append((case_id, "limit", "办理时限", "province", 30, True, due.date(), due.date(), 30,
                                      due.date(), due, False, "breached" if due < NOW else "running"))  # fmt: skip
            cur.executemany(
                "insert into cases (id, type, state, rule_set, org_id, payload, version, opened_by, opened_at, "
                "updated_at, closed_at, last_seq, head_hash, next_due_at, reference, summary) values "
                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", cases,
            )  # fmt: skip
            cur.executemany(
                "insert into deadlines (case_id, name, label, owner, days, working, start_date, basis_date, "
                "basis_days, due_date, due_at, provisional, status) values (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                deadlines,
            )
            raw.commit()
        cur.execute("select setval(pg_get_serial_sequence('cases', 'id'), (select max(id) from cases))")
        raw.commit()
        # Steady state, as autovacuum keeps a live database: statistics and the visibility map (without it an
        # index-only count reads the table too; autovacuum would otherwise start during the timing).
        raw.driver_connection.autocommit = True
        cur.execute("vacuum analyze")  # every table: the units added before the cases, too
        cur.execute("checkpoint")  # the load's dirty pages written now, not during the timing
    finally:
        raw.close()
        engine.dispose()


def add_units(url: str, total: int) -> None:
    """More units beside the 4 demo ones, spread over the 3 demo provinces (as bench/bench_web.py): the million
    cases are spread over `total` units, as in a province with a hundred units or the national office."""
    flow = DegreeFlow(make_engine(url), FixedClock(NOW))
    provinces = ["11", "45", "50"]
    for i in range(max(total - 4, 0)):
        flow.add_org(f"{19000 + i}", f"测试大学{i:02d}", "unit", provinces[i % 3], f"测大{i:02d}")
    flow.db.dispose()


def sibling_database(url: str, suffix: str) -> str:
    """The URL of a second database on the same server (created if missing): the 10,000-case one."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(url)
    sibling = base.set(database=f"{base.database}{suffix}")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("select 1 from pg_database where datname = :n"), {"n": sibling.database}
        ).first():
            conn.execute(text(f'create database "{sibling.database}"'))
    admin.dispose()
    return sibling.render_as_string(hide_password=False)


def _probes(flow: DegreeFlow) -> dict[str, Any]:
    with flow.db.connect() as conn:
        # A case whose type keeps its certificate number in the indexed reference (amendment, errata, revocation,
        # authentication, spot check): the search a reviewer types. The first 10,000 cases are the same in both
        # databases (same seed), so both probe the same case.
        some_case, cert = conn.execute(
            text(
                "select id, reference from cases where id >= 5000 and reference is not null order by id limit 1"
            )
        ).one()
    return {
        "queue_province_ms": lambda: flow.queue("prov50"),
        "queue_unit_ms": lambda: flow.queue("10635XW01"),
        "queue_national_ms": lambda: flow.queue("xwb01"),
        "case_page_ms": lambda: flow.case_for(some_case, "xwb01"),
        "search_certificate_ms": lambda: flow.search_cases("xwb01", text=cert),
        "sweep_nothing_due_ms": lambda: flow.sweeper.sweep(NOW - timedelta(days=400)),
    }


def time_queries(urls: list[str], repeat: int) -> list[dict[str, float]]:
    """Median time of each probe on each database. The databases take turns probe by probe, so a slow moment
    of the machine (a shared VM) falls on both alike and the ratio stays fair."""
    flows = [DegreeFlow(make_engine(url), FixedClock(NOW)) for url in urls]
    probes = [_probes(flow) for flow in flows]
    runs: list[dict[str, list[float]]] = [{name: [] for name in probes[0]} for _ in flows]
    for name in probes[0]:
        for probe in probes:
            probe[name]()  # warm: compiled statements, prepared plans, the calendar
    for _ in range(repeat):
        for name in probes[0]:
            for probe, times in zip(probes, runs, strict=True):
                t0 = time.perf_counter()
                probe[name]()
                times[name].append((time.perf_counter() - t0) * 1000)
    for flow in flows:
        flow.db.dispose()
    return [{name: round(statistics.median(values), 2) for name, values in times.items()} for times in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pg", default=os.environ.get("DEGREEFLOW_TEST_PG_URL", PG_DEFAULT))
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--units", type=int, default=100, help="units the million cases are spread over")
    parser.add_argument("--skip-lifecycles", action="store_true")
    args = parser.parse_args()
    runs = []
    for workers in () if args.skip_lifecycles else (1, 2, 4):
        log(f"PostgreSQL, {workers} worker(s), {args.seconds:g} s")
        runs.append(lifecycles(args.pg, workers, args.seconds))
        log(json.dumps(runs[-1]))
    if not args.skip_lifecycles:
        with tempfile.TemporaryDirectory() as tmp:
            log("SQLite file, 1 worker")
            runs.append(lifecycles(f"sqlite:///{tmp}/lifecycle.db", 1, args.seconds))
            log(json.dumps(runs[-1]))
    report: dict[str, Any] = {"benchmark": "case lifecycles", "date": datetime.now().date().isoformat(),
                              "cpus": os.cpu_count(), "lifecycles": runs}  # fmt: skip
    if not args.skip_million:
        small_url = sibling_database(args.pg, "_10k")
        for url in (small_url, args.pg):
            prepare(url)
            add_units(url, args.units)
            bulk_cases(url, 10_000, 1)
        log(
            f"10,000 cases in {small_url.rsplit('/', 1)[-1]}; {args.million:,} in {args.pg.rsplit('/', 1)[-1]} (bulk load)"
        )
        t0 = time.perf_counter()
        bulk_cases(args.pg, args.million - 10_000, 10_001)
        load_s = time.perf_counter() - t0
        log("timing, the two databases in turn")
        small, large = time_queries([small_url, args.pg], args.repeat)
        ratios = {k: round(large[k] / small[k], 2) if small[k] else None for k in small}
        report["queries"] = {"at_10000": small, f"at_{args.million}": large, "ratio": ratios,
                             "bulk_load_s": round(load_s, 1),
                             "meets_2x": all(r is not None and r <= 2.0 for r in ratios.values())}  # fmt: skip
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
