"""Fixtures: the same integration tests run on a real SQLite file and on the real PostgreSQL server.

PostgreSQL: DEGREEFLOW_TEST_PG_URL (default: postgres@127.0.0.1:5432/test) names the server and a database to
connect to; each test run creates a database of its own there (`degreeflow_t_<pid>_<random>`) and drops it at the
end, so two runs on one server never interfere. Where the server is not reachable the PostgreSQL variants skip,
except when DEGREEFLOW_REQUIRE_PG=1 (set by .ci/run), where they fail.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cases.service import DegreeFlow
from db import FixedClock, drop_schema, make_engine
from db.clock import SHANGHAI
from degreeflow import demo

SERVER_URL = os.environ.get("DEGREEFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("DEGREEFLOW_REQUIRE_PG") == "1"
# This run's own database on that server (created on first use, dropped when the run ends).
RUN_DATABASE = f"degreeflow_t_{os.getpid()}_{secrets.token_hex(3)}"
PG_URL = make_url(SERVER_URL).set(database=RUN_DATABASE).render_as_string(hide_password=False)
# A Friday morning in Beijing.
START = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
_created: list[str] = []


def _admin_execute(statement: str) -> None:
    engine = create_engine(make_url(SERVER_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _pg_url_or_skip() -> str:
    if _created:
        return PG_URL
    try:
        _admin_execute(f'CREATE DATABASE "{RUN_DATABASE}"')
    except Exception as exc:  # pragma: no cover - depends on the machine
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here but not reachable at {SERVER_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {SERVER_URL}")
    _created.append(RUN_DATABASE)
    return PG_URL


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for name in _created:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _created.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/degreeflow.db"
    url = _pg_url_or_skip()
    engine = make_engine(url)
    drop_schema(engine)
    engine.dispose()
    return url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def flow(db_url: str, clock: FixedClock):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    service = DegreeFlow(engine, clock)
    service.init_schema()
    demo.seed(service, cases=False)
    yield service
    engine.dispose()


@pytest.fixture
def sqlite_flow(tmp_path, clock: FixedClock):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/degreeflow.db")
    service = DegreeFlow(engine, clock)
    service.init_schema()
    demo.seed(service, cases=False)
    yield service
    engine.dispose()
