"""Fixtures: the same integration tests run on a real SQLite file and on the real PostgreSQL server.

PostgreSQL: DEGREEFLOW_TEST_PG_URL (default: postgres@127.0.0.1:5432/test). Where the server is not reachable
the PostgreSQL variants skip, except when DEGREEFLOW_REQUIRE_PG=1 (set by .ci/run), where they fail.
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from sqlalchemy import text

from cases.service import DegreeFlow
from db import FixedClock, drop_schema, make_engine
from db.clock import SHANGHAI
from degreeflow import demo

PG_URL = os.environ.get("DEGREEFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("DEGREEFLOW_REQUIRE_PG") == "1"
# A Friday morning in Beijing.
START = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)


def _pg_url_or_skip() -> str:
    engine = make_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here but not reachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    finally:
        engine.dispose()
    return PG_URL


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
