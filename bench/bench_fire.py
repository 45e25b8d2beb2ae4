"""Benchmark: workflow transitions per second through `WorkflowEngine.fire`, against the raw SQLite limit.

What is measured
----------------
* ``fire_per_s``: successful calls of ``flow.engine.fire(...)`` per second on a fresh SQLite *file* database
  made by ``db.make_engine`` (WAL, synchronous=FULL, foreign keys on, BEGIN IMMEDIATE per write
  transaction). Photo cases are opened before the clock starts; the timed section fires ``submit`` (unit
  collector, with a Form 4 payload) on each case and then ``acknowledge`` (province) on each case, so every
  transition is one ``fire`` call and one transaction. Each ``fire`` does everything it does in production:
  load the case and the actor, check permissions, validate the payload, run the ``transitions`` machine,
  hash the audit event, update the case (guarded by ``version``), insert the event, issue the photo letter
  on ``submit`` (document number and document row), and close deadlines when the case reaches a terminal state.
* ``raw_per_s``: the same writes a transition makes (one ``UPDATE cases ... WHERE id = ? AND version = ?``
  and one ``INSERT INTO case_events`` with the same columns and similar values; on ``submit`` also the
  document-number upsert and the document row), each transition in its own
  ``BEGIN IMMEDIATE ... COMMIT``, issued directly through the stdlib ``sqlite3`` module on a separate fresh
  file with the same schema (made by ``db.engine.create_schema``) and the same pragmas (WAL,
  synchronous=FULL, foreign_keys=ON). This is the ceiling set by SQLite and the disk (one WAL fsync per
  commit); the engine cannot beat it.
* ``ratio_raw_over_fire``: ``raw_per_s / fire_per_s``, the overhead of the engine (SQLAlchemy, the
  reads, validation, hashing) over the bare writes.

Goal: ``fire_per_s >= 1000`` and ``ratio_raw_over_fire <= 4`` on a 2-core machine.

Usage: ``python bench/bench_fire.py [--n 2000] [--repeat 1] [--dir DIR]``. Prints one JSON object to
stdout; exits 0 whether or not the goal is met (``meets_goal`` says which). With ``--repeat R`` both
measurements run R times on fresh files (fire, then raw, alternately) and the medians are reported, which
steadies the numbers on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import sqlalchemy  # noqa: E402

from cases.service import DegreeFlow  # noqa: E402
from db import make_engine  # noqa: E402
from db.engine import create_schema  # noqa: E402
from degreeflow import demo  # noqa: E402

GOAL_FIRE_PER_S = 1000.0
GOAL_MAX_RATIO = 4.0
WARMUP_CASES = 20

UNIT = "10593"
COLLECTOR = "10593XW01"
PROVINCE = "prov45"
SUBMIT_PAYLOAD = {
    "academic_year": "2025-2026",
    "category": "普通高校本科毕业生学士",
    "people": [
        {"name": "韦小宝", "major": "汉语言文学", "cert_no": "1059342025000031", "serial_no": "A0031"}
    ],
}


def _split(n: int) -> tuple[int, int]:
    """n transitions = `submit` on every case, then `acknowledge` on the first n - cases of them."""
    cases = math.ceil(n / 2)
    return cases, n - cases


# -- through the engine ---------------------------------------------------------------------------------
def bench_fire(workdir: Path, n: int) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{workdir / 'bench.db'}")
    try:
        flow = DegreeFlow(engine)
        flow.init_schema()
        demo.seed(flow)
        fire = flow.engine.fire

        # Warm up (statement caches, lazily built machinery) outside the timed section.
        for _ in range(WARMUP_CASES):
            case_id = flow.open_case("photo", UNIT, COLLECTOR, {}).case_id
            fire(case_id, "submit", COLLECTOR, payload=SUBMIT_PAYLOAD)
            fire(case_id, "acknowledge", PROVINCE)

        n_cases, n_ack = _split(n)
        case_ids = [flow.open_case("photo", UNIT, COLLECTOR, {}).case_id for _ in range(n_cases)]

        done = 0
        start = time.perf_counter()
        for case_id in case_ids:
            if fire(case_id, "submit", COLLECTOR, payload=SUBMIT_PAYLOAD).to_state != "filed":
                raise RuntimeError(f"case {case_id}: submit did not reach 'filed'")
            done += 1
        middle = time.perf_counter()
        for case_id in case_ids[:n_ack]:
            if fire(case_id, "acknowledge", PROVINCE).to_state != "recorded":
                raise RuntimeError(f"case {case_id}: acknowledge did not reach 'recorded'")
            done += 1
        end = time.perf_counter()
        if done != n:
            raise RuntimeError(f"fired {done} transitions, expected {n}")

        # Sanity check outside the timed section: every transition left exactly one event.
        with engine.connect() as conn:
            events = conn.exec_driver_sql(
                "SELECT count(*) FROM case_events WHERE case_id >= ? AND seq > 1", (case_ids[0],)
            ).scalar_one()
        if events != n:
            raise RuntimeError(f"found {events} transition events, expected {n}")
    finally:
        engine.dispose()
    return {
        "seconds": end - start,
        "per_s": n / (end - start),
        "submit_per_s": n_cases / (middle - start),
        "acknowledge_per_s": (n_ack / (end - middle)) if n_ack else 0.0,
    }


# -- the raw limit --------------------------------------------------------------------------------------
def _sa_datetime(value: datetime) -> str:
    """How SQLAlchemy's SQLite DateTime stores a value."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def bench_raw(workdir: Path, n: int) -> dict[str, float]:
    path = workdir / "raw.db"
    schema_engine = make_engine(f"sqlite:///{path}")
    create_schema(schema_engine)
    schema_engine.dispose()

    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        cur = conn.cursor()

        n_cases, n_ack = _split(n)
        stamp = _sa_datetime(datetime.now(UTC))
        genesis = "0" * 64
        cur.execute("BEGIN IMMEDIATE")
        cur.execute(
            "INSERT INTO organisations (code, name, kind, parent_id, created_at, organ_code) VALUES (?, ?, ?, ?, ?, ?)",
            (UNIT, "广西大学", "unit", None, stamp, "西大学位"),
        )
        org_id = cur.lastrowid
        cur.execute(
            "INSERT INTO users (username, name, role, org_id, active, created_at, phone, mobile, fax, address)"
            " VALUES (?, ?, ?, ?, ?, ?, '', '', '', '')",
            (COLLECTOR, "黄海燕", "collector", org_id, 1, stamp),
        )
        user_id = cur.lastrowid
        case_ids = []
        for _ in range(n_cases):
            cur.execute(
                "INSERT INTO cases (type, state, rule_set, org_id, payload, version, opened_by, opened_at,"
                " updated_at, closed_at, last_seq, head_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ("photo", "draft", "2013", org_id, "{}", 1, user_id, stamp, stamp, None, 1, genesis),
            )
            case_ids.append(cur.lastrowid)
        cur.execute("COMMIT")

        merged = json.dumps(SUBMIT_PAYLOAD)  # what SQLAlchemy's JSON type writes
        hashes = [f"{i:064x}" for i in range(3)]
        update_sql = (
            "UPDATE cases SET state = ?, payload = ?, version = ?, updated_at = ?, closed_at = ?, last_seq = ?,"
            " head_hash = ? WHERE cases.id = ? AND cases.version = ?"
        )
        insert_sql = (
            'INSERT INTO case_events (case_id, seq, at, actor_id, actor_name, "trigger", from_state, to_state,'
            " note, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        # A submit also issues the photo letter: the number upsert and the document row, as the engine does.
        number_sql = (
            "INSERT INTO doc_sequences (org_id, year, last) VALUES (?, ?, 1) ON CONFLICT (org_id, year)"
            " DO UPDATE SET last = doc_sequences.last + 1 RETURNING last"
        )
        document_sql = (
            "INSERT INTO documents (case_id, event_id, org_id, kind, title, year, seq, number, context,"
            " template_sha256, sha256, issued_at, issued_by, replaces_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
        )
        letter_context = json.dumps(
            {
                "title": "关于补报学位获得者电子照片的函",
                "people": SUBMIT_PAYLOAD["people"],
                "padding": "x" * 900,
            }
        )  # about the size of a stored letter context
        # (trigger, from, to, event payload, closes the case, version before, seq after)
        phases = [
            ("submit", "draft", "filed", merged, False, 1, 2, case_ids),
            ("acknowledge", "filed", "recorded", "{}", True, 2, 3, case_ids[:n_ack]),
        ]

        done = 0
        start = time.perf_counter()
        for trigger, source, dest, event_payload, closes, version, seq, ids in phases:
            for case_id in ids:
                now = _sa_datetime(datetime.now(UTC))
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(
                    update_sql,
                    (
                        dest,
                        merged,
                        version + 1,
                        now,
                        now if closes else None,
                        seq,
                        hashes[seq - 1],
                        case_id,
                        version,
                    ),
                )
                if cur.rowcount != 1:
                    raise RuntimeError(f"raw case {case_id}: version guard failed")
                cur.execute(
                    insert_sql,
                    (case_id, seq, now, user_id, "黄海燕", trigger, source, dest, "", event_payload,
                     hashes[seq - 2], hashes[seq - 1]),
                )  # fmt: skip
                if trigger == "submit":
                    event_id = cur.lastrowid
                    number = cur.execute(number_sql, (org_id, 2026)).fetchone()[0]
                    cur.execute(document_sql, (case_id, event_id, org_id, "photo_letter", "关于补报学位获得者电子照片的函",
                                               2026, number, f"西大学位〔2026〕{number}号", letter_context, hashes[0],
                                               hashes[1], now, user_id, None)).fetchone()  # fmt: skip
                cur.execute("COMMIT")
                done += 1
        end = time.perf_counter()
        if done != n:
            raise RuntimeError(f"raw: wrote {done} transitions, expected {n}")
    finally:
        conn.close()
    return {"seconds": end - start, "per_s": n / (end - start)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="transitions to time, for each of fire and raw")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each measurement; medians are reported"
    )
    parser.add_argument(
        "--dir", default=None, help="directory for the temporary databases (default: system tmp)"
    )
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be at least 2")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    fires: list[dict[str, float]] = []
    raws: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="degreeflow-bench-", dir=args.dir) as tmp:
        for run in range(args.repeat):
            workdir = Path(tmp) / f"run{run}"
            workdir.mkdir()
            fires.append(bench_fire(workdir, args.n))
            raws.append(bench_raw(workdir, args.n))

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    fire_per_s = median(fires, "per_s")
    raw_per_s = median(raws, "per_s")
    ratio = raw_per_s / fire_per_s
    result = {
        "benchmark": "fire",
        "n": args.n,
        "fire_per_s": round(fire_per_s, 1),
        "raw_per_s": round(raw_per_s, 1),
        "ratio_raw_over_fire": round(ratio, 2),
        "sqlite_version": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "repeat": args.repeat,
        "fire_seconds": round(median(fires, "seconds"), 3),
        "raw_seconds": round(median(raws, "seconds"), 3),
        "fire_submit_per_s": round(median(fires, "submit_per_s"), 1),
        "fire_acknowledge_per_s": round(median(fires, "acknowledge_per_s"), 1),
        "sqlalchemy": sqlalchemy.__version__,
        "cpus": os.cpu_count(),
        "goal": {"fire_per_s_min": GOAL_FIRE_PER_S, "ratio_max": GOAL_MAX_RATIO},
        "meets_goal": fire_per_s >= GOAL_FIRE_PER_S and ratio <= GOAL_MAX_RATIO,
    }
    if args.repeat > 1:
        result["runs"] = [
            {"fire_per_s": round(f["per_s"], 1), "raw_per_s": round(r["per_s"], 1)}
            for f, r in zip(fires, raws, strict=True)
        ]
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
