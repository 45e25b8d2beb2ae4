"""Alembic migrations: an empty database migrated to head has exactly the models' schema (SQLite and
PostgreSQL), with the append-only triggers; `degreeflow db upgrade` is repeatable; an unmigrated database is
adopted only when its schema already agrees."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text, update

from cases.service import DegreeFlow
from db import CaseEvent, create_schema, drop_schema, make_engine
from db.migrate import MigrationError, current, differences, head, upgrade
from degreeflow import demo
from tests.helpers import open_case


@pytest.fixture
def engine(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    drop_schema(engine)
    yield engine
    engine.dispose()


def test_an_empty_database_migrated_to_head_equals_the_models(engine):
    assert current(engine) is None
    done = upgrade(engine)
    assert done == {"before": None, "after": head(), "adopted": False}
    assert differences(engine) == []
    assert upgrade(engine)["before"] == head()  # repeatable: nothing to do the second time


def test_migrated_schema_works_and_keeps_the_audit_trail_append_only(engine, clock):
    flow = DegreeFlow(engine, clock)
    flow.init_schema(migrate=True)
    demo.seed(flow, cases=False)
    case_id = open_case(flow, "revocation")
    assert flow.verify_audit(case_id).ok
    events = CaseEvent.__table__
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(update(events).values(note="tampered"))
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM case_events"))
    assert flow.show(case_id)["history"][0]["note"] == ""


def test_a_database_made_from_the_models_is_adopted_and_a_different_one_refused(engine):
    create_schema(engine)
    assert upgrade(engine) == {"before": None, "after": head(), "adopted": True}
    assert current(engine) == head()
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    drop_schema(other)
    create_schema(other)
    with other.begin() as conn:
        conn.execute(text("DROP INDEX ix_cases_queue"))
    with pytest.raises(MigrationError, match="差异"):
        upgrade(other)
    assert current(other) is None
    other.dispose()


def test_the_cli_migrates_and_checks(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).parent / "degreeflow")
    url = f"sqlite:///{tmp_path}/m.db"
    run = lambda *a: subprocess.run([cli, "--db", url, *a], capture_output=True, text=True, timeout=120)  # noqa: E731
    first = run("db", "upgrade")
    assert first.returncode == 0 and f"（空） → {head()}" in first.stdout
    assert run("db", "current").stdout.strip().endswith(head())
    assert run("db", "check").returncode == 0
    assert run("init", "--demo").returncode == 0
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_cases_queue"))
    engine.dispose()
    drifted = run("db", "check")
    assert drifted.returncode == 12 and "ix_cases_queue" in drifted.stdout


def test_revision_0002_fills_the_reference_of_existing_cases(engine):
    from datetime import UTC, datetime

    upgrade(engine, "0001")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisations (id, code, name, kind, organ_code, created_at) "
                "VALUES (1, '10635', '西南大学', 'unit', '', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, name, role, org_id, active, created_at) "
                "VALUES (1, '10635XW01', '何莹', 'collector', 1, true, :now)"
            ),
            {"now": now},
        )
        for case_id, case_type in [(1, "revocation"), (2, "supplement")]:
            conn.execute(
                text("INSERT INTO cases (id, type, state, rule_set, org_id, payload, version, opened_by, opened_at, "
                     "updated_at, last_seq, head_hash) VALUES (:id, :type, 'draft', '2020', 1, :payload, 1, 1, :now, "
                     ":now, 1, '')"),
                {"id": case_id, "type": case_type, "now": now, "payload": '{"cert_no": "1063542021000321"}'},
            )  # fmt: skip
    upgrade(engine)
    with engine.connect() as conn:
        refs = dict(conn.execute(text("SELECT id, reference FROM cases ORDER BY id")).all())
    assert refs == {1: "1063542021000321", 2: None}  # a supplement lists many people: no single reference
    assert differences(engine) == []


def test_revision_0006_fills_the_summary_lists_show(engine):
    from datetime import UTC, datetime

    from cases import registry

    upgrade(engine, "0005")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    payloads = {
        1: ("revocation", {"cert_no": "1063542021000321", "name": "钱某"}),
        2: ("authentication", {"applicant_name": "孙小明", "name": ""}),
        3: ("supplement", {"records": [{"name": "甲"}, {"name": "乙"}, {"name": "丙"}]}),
        4: ("photo", {"people": [], "changes": [{"field": "name"}]}),
        5: ("errata", {"cert_no": "1063542025000789", "records": "not a list"}),
        6: ("revocation", {"name": "长" * 150}),
    }
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO organisations (id, code, name, kind, organ_code, created_at) "
                 "VALUES (1, '10635', '西南大学', 'unit', '', :now)"), {"now": now},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO users (id, username, name, role, org_id, active, created_at, phone, mobile, fax, "
                 "address) VALUES (1, '10635XW01', '何莹', 'collector', 1, true, :now, '', '', '', '')"), {"now": now},
        )  # fmt: skip
        for case_id, (case_type, payload) in payloads.items():
            conn.execute(
                text("INSERT INTO cases (id, type, state, rule_set, org_id, payload, version, opened_by, opened_at, "
                     "updated_at, last_seq, head_hash) VALUES (:id, :type, 'draft', '2020', 1, :payload, 1, 1, :now, "
                     ":now, 1, '')"),
                {"id": case_id, "type": case_type, "now": now, "payload": json.dumps(payload, ensure_ascii=False)},
            )  # fmt: skip
    upgrade(engine)
    with engine.connect() as conn:
        summaries = dict(conn.execute(text("SELECT id, summary FROM cases ORDER BY id")).all())
    # The same rule as the engine's on every step (ProcessDefinition.summary_of), case by case.
    expected = {i: registry.DEFINITIONS[t].summary_of(p) for i, (t, p) in payloads.items()}
    assert summaries == expected
    assert (
        expected[1] == "钱某" and expected[2] == "孙小明" and expected[3] == "3 条" and expected[4] == "1 条"
    )
    assert expected[5] == "" and len(expected[6]) == 100
    assert differences(engine) == []
