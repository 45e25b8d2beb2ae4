"""Schema migrations (Alembic), run programmatically: `degreeflow db upgrade` / `current` / `check`.

The scripts live in db/migrations/versions. A database made before migrations existed (tables but no
`alembic_version`) is adopted only if its schema already equals the models; otherwise the upgrade refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from db import models  # noqa: F401  (registers the tables)

HERE = Path(__file__).resolve().parent / "migrations"
IGNORED_TABLES = {"apscheduler_jobs", "alembic_version"}


class MigrationError(Exception):
    code = "migration_refused"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "rule": "schema_migration", "message": self.message}


def _config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def differences(engine: Engine) -> list[Any]:
    """What differs between the database and the models (empty when they agree)."""

    def include(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        if type_ == "table" and name in IGNORED_TABLES:
            return False
        # An index the models create on one database only (`Index(...).ddl_if(dialect=...)`).
        only = getattr(getattr(obj, "_ddl_if", None), "dialect", None) if not reflected else None
        return only is None or only == engine.dialect.name

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include, "compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def upgrade(engine: Engine, revision: str = "head") -> dict[str, Any]:
    """Bring the schema to `revision` (default: the latest). Returns the revisions before and after."""
    before = current(engine)
    if before is None and inspect(engine).has_table("cases"):
        problems = differences(engine)
        if problems:
            raise MigrationError(
                "数据库由未使用迁移的旧版本创建，且表结构与当前版本不同，无法自动升级："
                f"{len(problems)} 处差异（如 {problems[0]}）。请先备份，再新建数据库并导入数据。"
            )
        with engine.begin() as conn:
            command.stamp(_config(conn), "head")
        return {"before": None, "after": current(engine), "adopted": True}
    with engine.begin() as conn:
        command.upgrade(_config(conn), revision)
    return {"before": before, "after": current(engine), "adopted": False}
