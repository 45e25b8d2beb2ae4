"""Engine factory and the unit of work.

SQLite (the default) runs in WAL mode with synchronous=FULL, so an acknowledged step survives a power cut.
Write transactions on SQLite start with BEGIN IMMEDIATE: they take the write lock before reading, so two
writers never both read a version and then fail with a busy snapshot. PostgreSQL uses READ COMMITTED with
conditional updates (optimistic locking on `cases.version`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlmodel import SQLModel

from db import models  # noqa: F401  (registers the tables)

# The audit trail and issued documents are append-only: the database refuses UPDATE and DELETE.
_IMMUTABLE = ("case_events", "documents", "document_voids", "record_import_confirmations")
_APPEND_ONLY_SQLITE = [
    statement
    for table in _IMMUTABLE
    for statement in (
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""",
    )
]
# The audit row of a records import is written before its records (they refer to it) and completed once, in the
# same transaction, with the rows taken: it may change only while its status is still 'importing'.
_IMPORT_AUDIT_SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS record_imports_no_update BEFORE UPDATE ON record_imports
        WHEN OLD.status <> 'importing' BEGIN SELECT RAISE(ABORT, 'record_imports is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS record_imports_no_delete BEFORE DELETE ON record_imports
        BEGIN SELECT RAISE(ABORT, 'record_imports is append-only'); END""",
]
_IMPORT_AUDIT_PG = [
    """CREATE OR REPLACE FUNCTION degreeflow_import_audit() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'UPDATE' AND OLD.status = 'importing' THEN RETURN NEW; END IF;
         RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
       END; $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS record_imports_append_only ON record_imports",
    """CREATE TRIGGER record_imports_append_only BEFORE UPDATE OR DELETE ON record_imports
        FOR EACH ROW EXECUTE FUNCTION degreeflow_import_audit()""",
]
_APPEND_ONLY_PG = [
    """CREATE OR REPLACE FUNCTION degreeflow_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql""",
] + [
    statement
    for table in _IMMUTABLE
    for statement in (
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION degreeflow_append_only()""",
    )
]


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Every transaction ends in an explicit commit or rollback (see `transaction`), so the pool need not
        # roll back again when a connection is returned: that would cost every step a round trip.
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_reset_on_return=None,
            json_serializer=_json_text,
        )
        _install_sqlite_hooks(engine, in_memory=database in ("", ":memory:"))
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, echo=echo, pool_pre_ping=True, json_serializer=_json_text)


def _json_text(value: object) -> str:
    """JSON columns keep Chinese text as it is (not \\uXXXX escapes): a third of the size on disk."""
    return json.dumps(value, ensure_ascii=False)


def _install_sqlite_hooks(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: this runs once per transaction on the hot path.
        statement = "BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN"
        conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]


_WRITERS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def _writer(engine: Engine) -> Engine:
    """The engine with `immediate=True` (BEGIN IMMEDIATE on SQLite), made once; it shares the pool."""
    writer = _WRITERS.get(engine)
    if writer is None:
        writer = _WRITERS[engine] = engine.execution_options(immediate=True)
    return writer


@contextmanager
def transaction(engine: Engine, *, write: bool = True) -> Iterator[Connection]:
    """One unit of work: everything inside commits together or not at all."""
    with (_writer(engine) if write else engine).connect() as conn, conn.begin():
        yield conn


def create_schema(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)
    if engine.dialect.name == "sqlite":
        statements = _APPEND_ONLY_SQLITE + _IMPORT_AUDIT_SQLITE
    else:
        statements = _APPEND_ONLY_PG + _IMPORT_AUDIT_PG
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def drop_schema(engine: Engine) -> None:
    """Remove every table (used by the tests). On PostgreSQL the whole `public` schema goes, so
    tables of another version of the schema cannot be left behind holding foreign keys."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        return
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
