"""Crash test, long form: SIGKILL the web or scheduler process N times (default 1,000) at random moments while a
driver walks cases through the API, restart it each time, then check the invariants of tests/crash_harness.py
(acknowledged steps exactly once with their audit events, hash chains, gapless document numbers, each breach
escalated once). The test suite runs the same harness with 50 kills.

Usage: ``python bench/bench_crash.py [--kills 1000] [--seed 1] [--db URL] [--dir DIR]`` (default database: a
fresh SQLite file). Prints one JSON object; exits 1 if any invariant is broken.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import START  # noqa: E402
from tests.crash_harness import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file in --dir)")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench_crash_"))
    url = args.db or f"sqlite:///{work}/crash.db"
    report = run(url, START, work / "work", args.kills, args.seed,
                 log=lambda m: print(f"[bench_crash] {m}", file=sys.stderr, flush=True))  # fmt: skip
    report["database"] = url.split("://")[0]
    report["ok"] = not report["problems"]
    print(json.dumps(report, ensure_ascii=False, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
