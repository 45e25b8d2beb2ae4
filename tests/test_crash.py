"""Kill the web and scheduler processes (SIGKILL) 50 times at random moments under load; nothing acknowledged
is lost or done twice (see tests/crash_harness.py for the invariants). The 1,000-kill run is bench/bench_crash.py."""

from __future__ import annotations

from tests.conftest import START
from tests.crash_harness import run


def test_fifty_kills_lose_nothing_and_do_nothing_twice(tmp_path):
    report = run(f"sqlite:///{tmp_path}/crash.db", START, tmp_path / "work", kills=50, seed=3)
    assert report["problems"] == []
    assert sum(report["kills"].values()) == 50 and min(report["kills"].values()) >= 10
    # Not vacuous: work was acknowledged, letters issued and breaches escalated while processes died.
    assert report["acknowledged_steps"] >= 100 and report["documents"] >= 10 and report["breaches"] >= 5
    assert report["client_errors"]  # some requests really were cut off by a kill
