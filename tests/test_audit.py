"""The append-only, hash-chained audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from db import transaction
from tests.helpers import fire, open_case


def _walk_photo(flow):
    """Three events and no documents (a non-key errata), so events can be tampered with in isolation."""
    case_id = open_case(flow, "errata")
    fire(flow, case_id, "errata", "submit", "collector")
    fire(flow, case_id, "errata", "confirm", "verifier")
    return case_id


def test_chain_verifies(flow):
    first = _walk_photo(flow)
    second = _walk_photo(flow)
    report = flow.verify_audit()
    assert report.ok and report.cases == 2 and report.events == 6
    history = flow.show(first)["history"]
    assert history[0]["trigger"] == "open" and len({h["hash"] for h in history}) == 3
    assert flow.verify_audit(second).ok


def test_events_cannot_be_updated_or_deleted(flow):
    case_id = _walk_photo(flow)
    for statement in (
        "UPDATE case_events SET note = 'x' WHERE case_id = :id",
        "DELETE FROM case_events WHERE case_id = :id",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction(flow.db) as conn:
            conn.execute(text(statement), {"id": case_id})
    assert flow.verify_audit().ok


def _drop_guard(conn, dialect):
    if dialect == "sqlite":
        conn.execute(text("DROP TRIGGER case_events_no_update"))
        conn.execute(text("DROP TRIGGER case_events_no_delete"))
    else:
        conn.execute(text("DROP TRIGGER case_events_append_only ON case_events"))


def test_tampering_is_detected(flow):
    case_id = _walk_photo(flow)
    other = _walk_photo(flow)
    with transaction(flow.db) as conn:
        _drop_guard(conn, flow.db.dialect.name)  # someone with database access bypasses the guard
        conn.execute(
            text("UPDATE case_events SET actor_name = '他人' WHERE case_id = :id AND seq = 2"),
            {"id": case_id},
        )
    report = flow.verify_audit()
    assert not report.ok
    assert {(p.case_id, p.seq) for p in report.problems} == {(case_id, 2)}
    assert flow.verify_audit(other).ok


def test_deleted_event_breaks_the_chain(flow):
    case_id = _walk_photo(flow)
    with transaction(flow.db) as conn:
        _drop_guard(conn, flow.db.dialect.name)
        conn.execute(text("DELETE FROM case_events WHERE case_id = :id AND seq = 2"), {"id": case_id})
    problems = flow.verify_audit(case_id).problems
    assert problems and problems[0].seq == 3


def test_precompiled_statements_raise_sqlalchemy_errors(flow):
    from sqlalchemy.exc import IntegrityError

    from workflow.engine import _insert_event

    case_id = _walk_photo(flow)
    event = flow.show(case_id)["history"][0]
    with pytest.raises(IntegrityError), transaction(flow.db) as conn:  # (case_id, seq) is unique
        _insert_event(conn, {"case_id": case_id, "seq": 1, "at": flow.clock.now(), "actor_id": event["actor_id"],
                             "actor_name": "x", "trigger": "open", "from_state": "", "to_state": "draft", "note": "",
                             "payload": {}, "prev_hash": "0" * 64, "hash": "f" * 64})  # fmt: skip
    assert flow.verify_audit(case_id).ok
