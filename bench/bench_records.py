"""Benchmark: validating and importing degree records (学位授予信息), against a plain sqlite-utils insert; query latency.

What is measured
----------------
N valid records are generated from ``VALID`` of tests/test_degree_record.py (keyed by the Chinese column
names), each with its own certificate number (``10635`` + ``3`` (工学硕士) + ``2024`` + a 6-digit sequence), its
own resident ID number (area 110105, a birth date that is the record's 出生日期, a 3-digit sequence whose parity
is the record's 性别, and the GB 11643 check digit from ``stdnum.cn.ric``) and one conferral date (one batch).
They are written to one UTF-8 CSV file in a temporary directory; generation is not timed. Every measurement
reads that same file, on its own fresh SQLite *file* database; before each, untimed, garbage is collected and
``os.sync()`` writes out what earlier phases left in the page cache (a phase pays for its own disk writes only):

* ``validate_rows_per_s``: ``DegreeFlow.records_validate(path)`` on a database made by ``db.make_engine`` with
  ``init_schema`` and ``demo.seed(flow, cases=False)``: reading the file (``record_files.iter_rows``, a stream), the
  record and batch checks and the look-up of numbers already filed (``records.check_for_import``). The run
  fails if any problem is reported.
* ``import_rows_per_s``: ``DegreeFlow.records_import(path, "10635", as_user="xwzx01")`` on another such
  database: reading, the same checks, and storing every row in one transaction, i.e. "validation + import" as
  ``degreeflow records import`` runs it (the Degree Center's import, public at once, so that the queries find
  the records; the file's SHA-256 for the import's audit row is part of the timed work). The number of stored rows is checked after the clock stops. The
  service reads the file once (``records.import_file``): a CSV file of at least ``record_workers.MIN_BYTES``
  is checked in ``record_workers.workers()`` worker processes (``DEGREEFLOW_RECORD_WORKERS``; 0 = in the
  process), which send back what each row inserts (``record_workers.row_values``); the main process looks up
  numbers already filed, binds, inserts and commits.
* ``import_one_pass_rows_per_s``: ``records.import_file(...)`` called directly inside ``db.transaction`` on a
  third such database (the same work without the service around it: a second sample of the same path;
  ``--skip-one-pass`` leaves it out).
* ``plain_sqlite_utils_rows_per_s``: ``sqlite_utils.Database(path).table("degree_records_plain")
  .insert_all(csv.DictReader(file), batch_size=B)`` of the same file on a third fresh file, what
  ``sqlite-utils insert --csv`` does: default pragmas (rollback journal, synchronous=FULL), the table created
  from the first rows, one transaction per chunk. sqlite-utils caps a chunk at 999 // columns rows (35 for
  the 28 columns here) whatever B is, so this is one commit per 35 rows. ``plain_one_transaction_rows_per_s``
  is the same call inside ``db.atomic()`` (one commit, as the import does) for reference; the goal uses
  the former, as the issue asks.
* ``query_ms``: after the import, ``flow.query_certificate(cert, name, client="10635", member=True)`` for Q
  random existing certificates (each answer must be ``found``), one call = one write transaction (the
  query log row) on the database of N records; p50/p95/p99/max in milliseconds after a short warm-up.
  ``query_anonymous_ms``: the same for anonymous callers, each from a distinct client address (so the
  per-minute limit, which they still check, never refuses them).

``peak_rss_mb_after`` gives the process's peak resident memory after each phase (it never goes down, so a
phase's own peak is visible only where it raises the figure).

Goal (the issue): validation + import (``import_rows_per_s``) at least 50,000 rows/s, within 3x of the
plain insert (``ratio_plain_over_import <= 3``), query p99 under 5 ms in-process (for member and for
anonymous queries).

Usage: ``python bench/bench_records.py [--n 1000000 | --quick] [--queries 2000] [--anonymous 500]
[--batch-size 1000] [--seed 1] [--dir DIR] [--skip-plain-atomic]``. ``--quick`` is ``--n 20000``.
Prints one JSON object to stdout (progress goes to stderr); exits 0 whether or not the goal is met
(``meets_goal`` says which; ``meets_goal_one_pass`` the same with the one-pass import). The import streams the
file: memory grows only with what the rules across records keep per row (certificate numbers, bachelor's keys).
The default size needs several GB of temporary files; ``--quick`` takes about 15 s.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import sqlalchemy  # noqa: E402
import sqlite_utils  # noqa: E402
from stdnum.cn import ric  # noqa: E402

from cases import record_files, record_workers, records  # noqa: E402
from cases.service import DegreeFlow  # noqa: E402
from db import make_engine, transaction  # noqa: E402
from degreeflow import demo  # noqa: E402
from tests.test_degree_record import VALID  # noqa: E402

GOAL_IMPORT_ROWS_PER_S = 50_000.0
GOAL_MAX_RATIO = 3.0
GOAL_QUERY_P99_MS = 5.0

UNIT = "10635"
CENTER_USER = (
    "xwzx01"  # the Degree Center (demo account): its import is the national database, public at once
)
CERT_PREFIX = "10635" + "3" + "2024"  # unit, level digit (硕士), conferral year
AREA = "110105"
FIRST_BIRTH_DATE = date(1996, 1, 1)
MAX_N = 1_000_000  # the certificate number's sequence has 6 digits
QUICK_N = 20_000
WARMUP_QUERIES = 50

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红晓东海燕文斌"


def _log(message: str) -> None:
    print(f"[bench_records] {message}", file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


# -- the records ------------------------------------------------------------------------------------------
def cert_of(i: int) -> str:
    return f"{CERT_PREFIX}{i:06d}"


def name_of(i: int) -> str:
    return SURNAMES[i % len(SURNAMES)] + GIVEN[(i // len(SURNAMES)) % len(GIVEN)]


def person_of(i: int) -> tuple[str, str, str]:
    """(出生日期, 性别, 身份证件号码) of record i: 1000 sequence numbers per birth date, parity = gender."""
    born = FIRST_BIRTH_DATE + timedelta(days=i // 1000)
    sequence = i % 1000
    birth = born.strftime("%Y%m%d")
    first17 = f"{AREA}{birth}{sequence:03d}"
    number = first17 + ric.calc_check_digit(first17 + "0")  # the function ignores the last character
    return birth, ("男" if sequence % 2 else "女"), number


def record_of(i: int) -> dict[str, str]:
    birth, gender, id_number = person_of(i)
    return {
        **VALID,
        "姓名": name_of(i),
        "性别": gender,
        "出生日期": birth,
        "身份证件号码": id_number,
        "考生号": f"24{i:012d}",
        "学位证书编号": cert_of(i),
    }


def write_csv(path: Path, n: int) -> list[str]:
    columns = list(VALID)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for i in range(n):
            writer.writerow(record_of(i))
    return columns


def _self_check(n: int) -> None:
    """The generator makes records the checks accept (a few, outside every timed section)."""
    from cases.degree_record import check_record

    for i in {0, 1, 999, 1000, n // 2, n - 1}:
        if not 0 <= i < n:
            continue
        record = record_of(i)
        if not ric.is_valid(record["身份证件号码"]):
            raise RuntimeError(f"generated ID number {record['身份证件号码']} is not valid")
        problems = check_record(record)
        if problems:
            raise RuntimeError(f"generated record {i} is refused: {problems}")


def _settle() -> None:
    """Before a timed phase: collect garbage and write out what earlier phases left in the page cache (their
    databases, the generated file), so that no phase pays for the disk writes of another (untimed)."""
    gc.collect()
    os.sync()


# -- the three measurements -------------------------------------------------------------------------------
def _flow(db_path: Path) -> DegreeFlow:
    flow = DegreeFlow(make_engine(f"sqlite:///{db_path}"))
    flow.init_schema()
    demo.seed(flow, cases=False)
    return flow


def bench_validate(workdir: Path, csv_path: Path, n: int) -> dict[str, float]:
    flow = _flow(workdir / "validate.db")
    try:
        _settle()
        start = time.perf_counter()
        result = flow.records_validate(csv_path)
        seconds = time.perf_counter() - start
    finally:
        flow.db.dispose()
    if result["rows"] != n or result["problems"]:
        raise RuntimeError(f"validate: {result['rows']} rows, problems {result['problems'][:3]}")
    return {"seconds": seconds, "per_s": n / seconds}


def bench_import(workdir: Path, csv_path: Path, n: int) -> tuple[DegreeFlow, dict[str, float]]:
    """Returns the flow (database of n records, left open for the queries) and the timing."""
    flow = _flow(workdir / "import.db")
    _settle()
    start = time.perf_counter()
    result = flow.records_import(csv_path, UNIT, as_user=CENTER_USER)
    seconds = time.perf_counter() - start
    if result["stored"] != n or result["skipped"]:
        raise RuntimeError(f"import: {result}")
    with flow.db.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM degree_records").scalar_one()
    if stored != n:
        raise RuntimeError(f"import: {stored} rows in degree_records, expected {n}")
    return flow, {"seconds": seconds, "per_s": n / seconds}


def bench_import_one_pass(workdir: Path, csv_path: Path, n: int) -> dict[str, float]:
    flow = _flow(workdir / "import_one_pass.db")
    try:
        _settle()
        start = time.perf_counter()
        with transaction(flow.db) as conn:
            stored, problems = records.import_file(
                conn, record_files.iter_rows(csv_path), UNIT, flow.clock.now(), f"import:{csv_path.name}"
            )
            if problems:
                raise RuntimeError(f"import_file: problems {problems[:3]}")
        seconds = time.perf_counter() - start
        with flow.db.connect() as conn:
            count = conn.exec_driver_sql("SELECT count(*) FROM degree_records").scalar_one()
    finally:
        flow.db.dispose()
    if stored != n or count != n:
        raise RuntimeError(f"import_file: stored {stored}, {count} rows in degree_records, expected {n}")
    return {"seconds": seconds, "per_s": n / seconds}


def bench_plain(db_path: Path, csv_path: Path, n: int, batch_size: int, atomic: bool) -> dict[str, float]:
    db = sqlite_utils.Database(db_path)
    try:
        _settle()
        start = time.perf_counter()
        with csv_path.open(encoding="utf-8", newline="") as handle:
            rows = csv.DictReader(handle)
            table = db.table("degree_records_plain")
            if atomic:
                with db.atomic():
                    table.insert_all(rows, batch_size=batch_size)
            else:
                table.insert_all(rows, batch_size=batch_size)
        seconds = time.perf_counter() - start
        stored = db.execute("SELECT count(*) FROM degree_records_plain").fetchone()[0]
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = db.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        db.close()
    if stored != n:
        raise RuntimeError(f"plain: {stored} rows, expected {n}")
    return {"seconds": seconds, "per_s": n / seconds, "journal_mode": journal, "synchronous": synchronous}


# -- query latency ----------------------------------------------------------------------------------------
def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": round(cuts[49], 3), "p95": round(cuts[94], 3), "p99": round(cuts[98], 3),
            "max": round(ms[-1], 3), "mean": round(statistics.fmean(ms), 3), "count": len(ms)}  # fmt: skip


def _clients() -> Iterator[str]:
    i = 0
    while True:
        yield f"198.{18 + i // 65536 % 2}.{i // 256 % 256}.{i % 256}"
        i += 1


def bench_queries(
    flow: DegreeFlow, n: int, members: int, anonymous: int, rng: random.Random
) -> dict[str, Any]:
    query = flow.query_certificate
    clients = _clients()
    for i in rng.sample(range(n), min(n, WARMUP_QUERIES)):
        query(cert_of(i), name_of(i), client=UNIT, member=True)
        query(cert_of(i), name_of(i), client=next(clients), member=False)

    def run(count: int, member: bool) -> list[float]:
        picks = [rng.randrange(n) for _ in range(count)]
        samples = []
        for i in picks:
            cert, name, client = cert_of(i), name_of(i), UNIT if member else next(clients)
            start = time.perf_counter()
            answer = query(cert, name, client=client, member=member)
            samples.append(time.perf_counter() - start)
            if answer["status"] != "found":
                raise RuntimeError(f"query {cert} {name} ({'member' if member else client}): {answer}")
        return samples

    member_samples = run(members, True)
    anonymous_samples = run(anonymous, False) if anonymous else []
    return {
        "member": _percentiles(member_samples),
        "anonymous": _percentiles(anonymous_samples) if len(anonymous_samples) >= 2 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=MAX_N, help=f"records to generate (at most {MAX_N:,})")
    parser.add_argument("--quick", action="store_true", help=f"--n {QUICK_N}")
    parser.add_argument("--queries", type=int, default=2000, help="timed member queries")
    parser.add_argument(
        "--anonymous", type=int, default=500, help="timed anonymous queries (distinct clients)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="batch_size= for sqlite-utils insert_all"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the query sample")
    parser.add_argument("--dir", default=None, help="directory for the temporary files (default: system tmp)")
    parser.add_argument("--skip-plain-atomic", action="store_true",
                        help="do not also time the plain insert inside one transaction")  # fmt: skip
    parser.add_argument("--skip-one-pass", action="store_true",
                        help="do not also time the one-pass import (records.import_file)")  # fmt: skip
    args = parser.parse_args(argv)
    n = QUICK_N if args.quick else args.n
    if not 2 <= n <= MAX_N:
        parser.error(f"--n must be between 2 and {MAX_N}")
    if args.queries < 2 or args.anonymous < 0:
        parser.error("--queries must be at least 2 and --anonymous at least 0")
    rng = random.Random(args.seed)

    peaks: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="degreeflow-bench-records-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "records.csv"
        _self_check(n)
        _log(f"generating {n:,} records")
        start = time.perf_counter()
        columns = write_csv(csv_path, n)
        generate_s = time.perf_counter() - start
        csv_bytes = csv_path.stat().st_size
        peaks["generate"] = _peak_rss_mb()

        _log(f"validate ({generate_s:.1f} s to generate {csv_bytes / 1e6:.1f} MB)")
        validate = bench_validate(workdir, csv_path, n)
        peaks["validate"] = _peak_rss_mb()
        _log(f"validate: {validate['per_s']:,.0f} rows/s; import")
        flow, imported = bench_import(workdir, csv_path, n)
        peaks["import"] = _peak_rss_mb()
        gc.collect()
        one_pass = None
        if not args.skip_one_pass:
            _log(f"import: {imported['per_s']:,.0f} rows/s; one-pass import")
            one_pass = bench_import_one_pass(workdir, csv_path, n)
            peaks["import_one_pass"] = _peak_rss_mb()
        _log(f"import: {imported['per_s']:,.0f} rows/s; plain sqlite-utils insert")
        plain = bench_plain(workdir / "plain.db", csv_path, n, args.batch_size, atomic=False)
        peaks["plain"] = _peak_rss_mb()
        plain_atomic = None
        if not args.skip_plain_atomic:
            _log(f"plain: {plain['per_s']:,.0f} rows/s; plain insert in one transaction")
            plain_atomic = bench_plain(workdir / "plain_atomic.db", csv_path, n, args.batch_size, atomic=True)
        _log("queries")
        try:
            latency = bench_queries(flow, n, args.queries, args.anonymous, rng)
        finally:
            flow.db.dispose()
        peaks["queries"] = _peak_rss_mb()

    ratio = plain["per_s"] / imported["per_s"]
    member_p99 = latency["member"]["p99"]
    anonymous_p99 = latency["anonymous"]["p99"] if latency["anonymous"] else None
    checks = {
        "import_rows_per_s": imported["per_s"] >= GOAL_IMPORT_ROWS_PER_S,
        "ratio_plain_over_import": ratio <= GOAL_MAX_RATIO,
        "query_p99_member": member_p99 < GOAL_QUERY_P99_MS,
        "query_p99_anonymous": anonymous_p99 is None or anonymous_p99 < GOAL_QUERY_P99_MS,
    }
    result = {
        "benchmark": "records",
        "n": n,
        "validate_rows_per_s": round(validate["per_s"], 1),
        "import_rows_per_s": round(imported["per_s"], 1),
        "plain_sqlite_utils_rows_per_s": round(plain["per_s"], 1),
        "ratio_plain_over_import": round(ratio, 2),
        "import_one_pass_rows_per_s": round(one_pass["per_s"], 1) if one_pass else None,
        "ratio_plain_over_import_one_pass": round(plain["per_s"] / one_pass["per_s"], 2)
        if one_pass
        else None,
        "query_ms": latency["member"],
        "query_anonymous_ms": latency["anonymous"],
        "plain_one_transaction_rows_per_s": round(plain_atomic["per_s"], 1) if plain_atomic else None,
        "ratio_plain_one_transaction_over_import": (
            round(plain_atomic["per_s"] / imported["per_s"], 2) if plain_atomic else None
        ),
        "validate_seconds": round(validate["seconds"], 3),
        "import_seconds": round(imported["seconds"], 3),
        "import_one_pass_seconds": round(one_pass["seconds"], 3) if one_pass else None,
        "record_workers": record_workers.workers(),
        "csv_checked_in_workers": csv_bytes >= record_workers.MIN_BYTES and record_workers.workers() > 0,
        "plain_seconds": round(plain["seconds"], 3),
        "plain_one_transaction_seconds": round(plain_atomic["seconds"], 3) if plain_atomic else None,
        "plain_settings": {
            "batch_size_requested": args.batch_size,
            "rows_per_chunk": max(1, min(args.batch_size, 999 // len(columns))),
            "journal_mode": plain["journal_mode"],
            "synchronous": plain["synchronous"],
        },
        "generate_seconds": round(generate_s, 3),
        "csv_mb": round(csv_bytes / 1e6, 1),
        "columns": len(columns),
        "peak_rss_mb_after": peaks,
        "sqlite_version": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite_utils": _version("sqlite-utils"),
        "cpus": os.cpu_count(),
        "goal": {
            "import_rows_per_s_min": GOAL_IMPORT_ROWS_PER_S,
            "ratio_plain_over_import_max": GOAL_MAX_RATIO,
            "query_p99_ms_max": GOAL_QUERY_P99_MS,
            "checks": checks,
        },
        "meets_goal": all(checks.values()),
        "meets_goal_one_pass": (
            one_pass["per_s"] >= GOAL_IMPORT_ROWS_PER_S
            and plain["per_s"] / one_pass["per_s"] <= GOAL_MAX_RATIO
            and checks["query_p99_member"]
            and checks["query_p99_anonymous"]
            if one_pass
            else None
        ),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return None


if __name__ == "__main__":
    sys.exit(main())
