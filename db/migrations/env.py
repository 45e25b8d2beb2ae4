"""Alembic environment: the connection comes from `db.migrate` (config.attributes["connection"]); the target is
the SQLModel metadata of db/models.py. Run through `degreeflow db upgrade`, not the alembic command."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from db import models  # noqa: F401  (registers the tables)

IGNORED_TABLES = {"apscheduler_jobs"}  # APScheduler's own job table, created by it (scheduler.runner)


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    return not (type_ == "table" and name in IGNORED_TABLES)


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite goes through batch mode
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
