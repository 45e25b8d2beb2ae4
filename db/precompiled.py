"""Core statements compiled once per dialect and run on the DBAPI cursor of a SQLAlchemy connection.

Why: on the hot path of a transition, SQLAlchemy's per-execution machinery (cache-key look-up, execution
context, result wrapping) costs about ten times what SQLite itself spends on the same statement (measured:
a transaction with one SELECT, 230 µs through `Connection.execute` against 23 µs on the driver). These
statements stay SQLAlchemy Core statements: SQLAlchemy compiles them for each dialect and supplies the
type processors (JSON, datetimes, booleans), and they run inside the caller's SQLAlchemy transaction, so
atomicity is unchanged. Only a fixed set of statements with plain named parameters is supported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.expression import Select

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter order for positional paramstyles
    positional: bool
    binds: dict[str, Processor]
    results: tuple[Processor, ...]
    keys: tuple[str, ...]


class Precompiled:
    """`returning`: the columns a write returns (its RETURNING clause), to type its result row."""

    def __init__(self, statement: ClauseElement, returning: tuple[Any, ...] = ()):
        self.statement = statement
        self.returning = returning
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        compiled = self.statement.compile(dialect=dialect)
        binds = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        columns = (
            list(self.statement.selected_columns) if isinstance(self.statement, Select) else self.returning
        )
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        keys = tuple(c.key for c in columns)
        found = _Compiled(
            sql=compiled.string,
            names=tuple(compiled.positiontup or ()),
            positional=compiled.positional,
            binds=binds,
            results=results,
            keys=keys,
        )
        self._compiled[dialect.name] = found
        return found

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, _Compiled]:
        compiled = self._for(conn.dialect)
        binds = compiled.binds
        processed = {}
        for name, processor in binds.items():
            value = params[name]
            processed[name] = processor(value) if processor is not None and value is not None else value
        arguments: Any = (
            tuple(processed[name] for name in compiled.names) if compiled.positional else processed
        )
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
        except conn.dialect.loaded_dbapi.Error as error:
            cursor.close()
            # The same exception SQLAlchemy would raise, so callers see one error family.
            raise DBAPIError.instance(
                compiled.sql, arguments, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from error
        return cursor, compiled

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a write; returns the row count."""
        cursor, _ = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run a query; returns all its rows, processed."""
        cursor, compiled = self._run(conn, params)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [
            tuple(p(v) if p is not None else v for p, v in zip(compiled.results, row, strict=True))
            for row in rows
        ]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run a query (or a write with RETURNING); returns its first row, processed, or None."""
        cursor, compiled = self._run(conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        return tuple(p(v) if p is not None else v for p, v in zip(compiled.results, row, strict=True))
