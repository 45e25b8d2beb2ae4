"""Two sessions fire on the same case at once: exactly one wins, the other gets a conflict."""

from __future__ import annotations

import threading

import pytest

from cases.service import DegreeFlow
from db import make_engine
from tests.helpers import PHOTO, open_case, snapshot
from workflow import Conflict, WorkflowError


def _race(flow: DegreeFlow, db_url: str, clock, attempts):  # type: ignore[no-untyped-def]
    """Run each attempt (trigger, user, payload) in its own thread and database session, released together."""
    case_id = open_case(flow, "photo")
    version = flow.show(case_id)["version"]
    barrier = threading.Barrier(len(attempts))
    outcomes: list[object] = [None] * len(attempts)

    def run(index: int, trigger: str, user: str, payload: dict) -> None:
        engine = make_engine(db_url)  # a separate engine: a separate connection pool and session
        other = DegreeFlow(engine, clock)
        try:
            barrier.wait(timeout=10)
            outcomes[index] = other.fire(case_id, trigger, user, payload=payload, expected_version=version)
        except WorkflowError as error:
            outcomes[index] = error
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, args=(i, *attempt)) for i, attempt in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return case_id, outcomes


@pytest.mark.parametrize("rounds", [5])
def test_exactly_one_of_two_concurrent_fires_wins(flow, db_url, clock, rounds):
    for _ in range(rounds):
        case_id, outcomes = _race(
            flow, db_url, clock, [("submit", "10593XW01", PHOTO), ("submit", "10593XW02", PHOTO)]
        )
        wins = [o for o in outcomes if not isinstance(o, Exception)]
        losses = [o for o in outcomes if isinstance(o, Exception)]
        assert len(wins) == 1, outcomes
        assert len(losses) == 1 and isinstance(losses[0], Conflict), outcomes
        shown = flow.show(case_id)
        assert shown["state"] == "filed"
        assert [h["trigger"] for h in shown["history"]] == ["open", "submit"]
        assert shown["version"] == 2
        assert flow.verify_audit(case_id).ok


def test_stale_version_is_refused_and_changes_nothing(flow):
    case_id = open_case(flow, "photo")
    before = snapshot(flow, case_id)
    with pytest.raises(Conflict) as refused:
        flow.fire(case_id, "submit", "10593XW01", payload=PHOTO, expected_version=7)
    assert refused.value.rule == "stale_version"
    assert snapshot(flow, case_id) == before
