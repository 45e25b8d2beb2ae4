"""Load test: the work-queue page with 100,000 cases in the database, against the real server on loopback.

What is measured
----------------
A fresh SQLite file gets the schema, the demo organisations and users, 97 more units spread over the three demo
provinces (100 units in all), and N cases (default 100,000) written in bulk: types in equal shares, states drawn
from each type's states (terminal ones closed), and for every open case one running deadline due between 20
days ago and 30 days ahead. The cases are inserted directly (not fired through the engine, which would take
the better part of an hour); the queue reads only the case, organisation and deadline tables, which look the
same either way. Setup is not timed.

The server is the real one: `degreeflow serve --no-scheduler --workers W` in its own process(es), on 127.0.0.1
and a free port, with the same fixed "now" as the data, for W = 1 and 2 (the machine has two cores), with the
settings of this environment (``server_settings`` in the output: by default each process computes one read at a
time, `DEGREEFLOW_WEB_READS=1`). Each session signs in as a browser does (GET /login for the CSRF token, POST
/login). The load:

* closed loop, U = 20 connections each requesting back to back with no think time: `wrk -t2 -c20 --latency`
  when wrk is installed (C, so the generator takes little of the two cores), else U Python threads. Reported
  per user kind: requests/s and latency p50/p90/p99 in ms, for a province reviewer (`prov50`: a third of all
  cases are in its scope), a unit collector (`10635XW01`) and the national office (`xwb01`), and for
  `/api/v1/queue`. wrk checks the status only; the page content is checked once before.
* with think time: U users, each loading `/queue` as prov50 and then reading it for 0.5-1.5 x THINK seconds
  (default 1 s), as people at their desks do; W = 2, for twice the duration. wrk does this with a `delay()`
  script when installed (the latency excludes the wait), else U Python threads (whose own GIL contention, on
  the same two cores, shows in their tail: measured 100-200 ms p99 where wrk measured 30-40 ms).

Goal (issue 6): p99 under 100 ms at 20 concurrent users on the work-queue page. `meets_goal` applies it to the
stricter closed loop with W = 2 (20 connections without a pause: some 250 page loads a second, the traffic of
far more than 20 people); `meets_goal_with_think_time` to 20 users at their desks.

Usage: ``python bench/bench_web.py [--cases 100000] [--users 20] [--duration 15] [--workers 1 2]
[--generator auto|wrk|python] [--think 1.0] [--quick]``; ``--quick`` is 10,000 cases and 5 s. Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from cases import registry  # noqa: E402
from cases.service import DegreeFlow  # noqa: E402
from db import FixedClock, make_engine  # noqa: E402
from db.clock import SHANGHAI  # noqa: E402
from degreeflow import demo  # noqa: E402
from degreeflow.settings import Settings  # noqa: E402
from tests.live import free_port, wait_ready  # noqa: E402

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
GOAL_P99_MS = 100.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def log(message: str) -> None:
    print(f"[bench_web] {message}", file=sys.stderr, flush=True)


def build(path: Path, n: int, seed: int) -> dict[str, Any]:
    flow = DegreeFlow(make_engine(f"sqlite:///{path}"), FixedClock(NOW))
    flow.init_schema()
    demo.seed(flow, cases=False)
    provinces = ["11", "45", "50"]
    for i in range(97):
        flow.add_org(f"{19000 + i}", f"测试大学{i:02d}", "unit", provinces[i % 3], f"测大{i:02d}")
    flow.db.dispose()
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    units = [row[0] for row in conn.execute("select id from organisations where kind = 'unit'")]
    opener = conn.execute("select id from users where username = '10635XW01'").fetchone()[0]
    types = list(registry.DEFINITIONS)
    now_utc = NOW.astimezone(UTC).replace(tzinfo=None)
    case_rows, deadline_rows = [], []
    for case_id in range(1, n + 1):
        case_type = types[case_id % len(types)]
        defn = registry.DEFINITIONS[case_type]
        state = rng.choice(list(defn.states))
        closed = state in defn.terminal
        opened = now_utc - timedelta(days=rng.randint(0, 400), minutes=rng.randint(0, 1440))
        payload = {"cert_no": f"{rng.randint(10000, 99999)}42021{case_id:07d}", "name": f"学生{case_id}"}
        case_rows.append((case_id, case_type, state, "2020", rng.choice(units), json.dumps(payload, ensure_ascii=False),
                          2, opener, opened, opened, opened if closed else None, 1, "x" * 64,
                          defn.reference_of(payload), defn.summary_of(payload)))  # as the engine keeps them # fmt: skip
        if not closed:
            due = NOW.date() + timedelta(days=rng.randint(-20, 30))
            due_at = datetime(due.year, due.month, due.day, 15, 59, 59)  # 23:59:59 in Beijing, as UTC
            deadline_rows.append((case_id, "limit", "办理时限", "province", 30, True, due - timedelta(days=40),
                                  due - timedelta(days=40), 30, due, due_at, False,
                                  "breached" if due < NOW.date() else "running"))  # fmt: skip
    with conn:
        conn.executemany(
            "insert into cases (id, type, state, rule_set, org_id, payload, version, opened_by, opened_at, "
            "updated_at, closed_at, last_seq, head_hash, reference, summary) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            case_rows,
        )
        conn.executemany(
            "insert into deadlines (case_id, name, label, owner, days, working, start_date, basis_date, basis_days, "
            "due_date, due_at, provisional, status) values (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            deadline_rows,
        )
        conn.execute("analyze")  # without statistics the planner walks the (status, due_at) index per case
        # What db.derived.refresh_next_due keeps on every step, for all rows at once.
        conn.execute(
            "update cases set next_due_at = (select min(due_at) from deadlines d where d.case_id = cases.id "
            "and d.stopped_at is null and d.status in ('running', 'breached'))"
        )
    conn.execute("analyze")
    conn.close()
    return {"cases": n, "open_cases": len(deadline_rows), "units": len(units)}


def start_server(db: Path, port: int, workdir: Path, workers: int = 1) -> subprocess.Popen[str]:
    cli = str(Path(sys.executable).parent / "degreeflow")
    env = {**os.environ, "DEGREEFLOW_SECRET_KEY": "b" * 48, "DEGREEFLOW_DATA_DIR": str(workdir / "data")}
    server = subprocess.Popen(
        [cli, "--db", f"sqlite:///{db}", "--now", NOW.isoformat(), "serve", "--no-scheduler", "--port", str(port),
         "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=workdir,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}")
    except RuntimeError:
        server.kill()
        raise RuntimeError(
            "server did not start: " + (server.stdout.read() if server.stdout else "")
        ) from None
    return server


def signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = CSRF.search(client.get("/login").text)[1]  # type: ignore[index]
    response = client.post("/login", data={"csrf_token": token, "username": username,
                                           "password": demo.DEMO_PASSWORD, "next": "/queue"})  # fmt: skip
    assert response.status_code == 303, response.text
    return client


def load(
    base: str, username: str, path: str, marker: str, users: int, duration: float, think: float = 0.0
) -> dict[str, Any]:
    clients = [signed_in(base, username) for _ in range(users)]
    for client in clients:  # warm-up
        client.get(path)
    latencies: list[list[float]] = [[] for _ in range(users)]
    errors = [0] * users
    stop = time.perf_counter() + duration
    sample: dict[str, int] = {}

    def run(index: int) -> None:
        client = clients[index]
        while time.perf_counter() < stop:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or marker not in response.text:
                errors[index] += 1
            else:
                latencies[index].append(elapsed)
                sample.setdefault("bytes", len(response.content))
            if think:
                time.sleep(rng.uniform(0.5 * think, 1.5 * think))

    rng = random.Random(7)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(users)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    for client in clients:
        client.close()
    every = sorted(x for per in latencies for x in per)
    if not every:
        return {"errors": sum(errors)}

    def pct(p: float) -> float:
        return round(every[min(len(every) - 1, int(p * len(every)))] * 1000, 1)

    return {
        "generator": f"python threads, think time {think:g} s" if think else "python threads",
        "user": username, "path": path, "concurrent_users": users, "requests": len(every), "errors": sum(errors),
        "requests_per_s": round(len(every) / wall, 1), "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
        "max_ms": round(every[-1] * 1000, 1), "mean_ms": round(statistics.fmean(every) * 1000, 1),
        "response_bytes": sample.get("bytes"),
    }  # fmt: skip


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(
    base: str, username: str, path: str, marker: str, users: int, duration: float, think: float = 0.0
) -> dict[str, Any]:
    """The same load with wrk (C, two threads): the generator then takes little of the machine's two cores.
    With `think`, each connection waits 0.5-1.5 x THINK seconds between requests (wrk's `delay()` hook; the
    wait is not part of the latency)."""
    client = signed_in(base, username)
    page = client.get(path)
    assert page.status_code == 200 and marker in page.text, page.status_code
    cookie = client.cookies["degreeflow_session"]
    client.close()
    script: list[str] = []
    if think:
        lua = Path(tempfile.mkdtemp(prefix="bench_web_wrk_")) / "think.lua"
        lua.write_text(
            f"function delay()\n  return math.random({int(think * 500)}, {int(think * 1500)})\nend\n"
        )
        script = ["-s", str(lua)]
    done = subprocess.run(
        ["wrk", "-t2", f"-c{users}", f"-d{int(duration)}s", "--latency", *script,
         "-H", f"Cookie: degreeflow_session={cookie}", base + path], capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout
    pattern = r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$"
    found = {p: float(v) * _UNIT[u] for p, v, u in re.findall(pattern, out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {
        "generator": f"wrk -t2, think time {think:g} s" if think else "wrk -t2",
        "user": username, "path": path, "concurrent_users": users,
        "requests": int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        "errors": int(bad[1]) if bad else 0, "socket_errors": errors[0] if errors else None,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        "p50_ms": round(found["50"], 1), "p90_ms": round(found["90"], 1), "p99_ms": round(found["99"], 1),
        "response_bytes": len(page.content),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="server worker processes to try"
    )
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--think",
        type=float,
        default=1.0,
        help="also run U users who each read the page for about THINK seconds between loads",
    )
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.cases, args.duration = 10_000, 5.0
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="bench_web_"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "web.db"
    if db.exists():
        db.unlink()
    log(f"writing {args.cases} cases to {db}")
    t0 = time.perf_counter()
    data = build(db, args.cases, args.seed)
    data["setup_s"] = round(time.perf_counter() - t0, 1)
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    measure = wrk if use_wrk else load
    results = []
    for workers in args.workers:
        port = free_port()
        server = start_server(db, port, workdir, workers)
        base = f"http://127.0.0.1:{port}"
        try:
            for username, path, marker in [("prov50", "/queue", "待我办理"), ("10635XW01", "/queue", "待我办理"),
                                           ("xwb01", "/queue", "待我办理"), ("prov50", "/api/v1/queue", '"total"')]:  # fmt: skip
                log(
                    f"{workers} worker(s), {args.users} users × {args.duration:.0f} s: GET {path} as {username}"
                )
                result = measure(base, username, path, marker, args.users, args.duration)
                result["server_workers"] = workers
                results.append(result)
                log(json.dumps(result, ensure_ascii=False))
            if args.think and workers == max(args.workers):
                log(f"{args.users} users with ~{args.think:g} s think time: GET /queue as prov50")
                result = measure(
                    base, "prov50", "/queue", "待我办理", args.users, 2 * args.duration, args.think
                )
                result["server_workers"] = workers
                results.append(result)
                log(json.dumps(result, ensure_ascii=False))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    page = [r for r in results if r.get("path") == "/queue" and r["server_workers"] == max(args.workers)
            and "think" not in r.get("generator", "")]  # fmt: skip
    thinking = [r for r in results if "think" in r.get("generator", "")]
    settings = Settings(secret_key="b" * 48)
    print(json.dumps({
        "benchmark": "web work queue", "date": date.today().isoformat(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "data": data,
        # what a server process computes at once (DEGREEFLOW_WEB_READS / _THREADS from this environment, else default)
        "server_settings": {"web_reads": settings.web_reads, "web_threads": settings.web_threads},
        "results": results, "goal_p99_ms": GOAL_P99_MS,
        "meets_goal": bool(page) and all(r.get("errors") == 0 and r["p99_ms"] < GOAL_P99_MS for r in page),
        "meets_goal_with_think_time": bool(thinking)
        and all(r.get("errors") == 0 and r["p99_ms"] < GOAL_P99_MS for r in thinking),
    }, ensure_ascii=False, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
