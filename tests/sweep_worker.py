"""Run one deadline sweep in its own process (used by the tests for restarts and for concurrent sweepers).

usage: python -m tests.sweep_worker DB_URL NOW [--crash-after K] [--batch-size B]
With --crash-after K the process dies (os._exit, no cleanup) inside the sweep's transaction after its K-th
finding, as a power cut or a kill -9 would.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime

from cases.service import DegreeFlow
from db import FixedClock, make_engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("now")
    parser.add_argument("--crash-after", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    flow = DegreeFlow(make_engine(args.db_url), FixedClock(datetime.fromisoformat(args.now)))
    flow.sweeper.batch_size = args.batch_size
    seen = 0

    def crash(kind: str, deadline_id: int) -> None:
        nonlocal seen
        seen += 1
        if args.crash_after and seen >= args.crash_after:
            os._exit(3)

    report, _ = flow.sweep(on_finding=crash)
    print(json.dumps({k: v for k, v in report.to_dict().items() if k != "findings"}))


if __name__ == "__main__":
    main()
