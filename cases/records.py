"""The registry of filed degree records: import, changes made by cases (with history), online query, matching.

Every write happens in the caller's transaction; cases change records in the transition that reaches the
state where the change applies (amendment/errata `recorded`, revocation `revoked`, photo `recorded`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

from cases import record_workers
from cases.degree_record import COLUMN, BatchChecker, Problem, as_fields, normalise, parse_yyyymmdd
from db.models import (
    DegreeRecord,
    Organisation,
    QueryLog,
    RecordChange,
    RecordImport,
    RecordImportConfirmation,
    User,
)
from workflow import Actor, FireContext, Forbidden, InvalidPayload, NotFound, SeparationOfDuties, Step

RECORDS = DegreeRecord.__table__
CHANGES = RecordChange.__table__
QUERIES = QueryLog.__table__
IMPORTS = RecordImport.__table__
CONFIRMATIONS = RecordImportConfirmation.__table__
CHUNK = 2000


def existing(conn: Connection, cert_numbers: Iterable[str], *, copies: bool = True) -> set[str]:
    """The numbers among these that the registry holds already (`statuses`). Without `copies`, only records that
    are filed (or revoked): a unit's working copy or its unconfirmed import does not count."""
    found = statuses(conn, cert_numbers)
    if copies:
        return set(found)
    return {cert for cert, status in found.items() if status not in COPY_STATUSES}


# A unit's working copy, and a unit's import of its filed data awaiting the second person: in the registry, but
# neither public nor filed (the online query and the comparisons leave them out; a filing case replaces them).
COPY_STATUSES = ("working", "pending")


def statuses(conn: Connection, cert_numbers: Iterable[str]) -> dict[str, str]:
    """The status of each of these numbers the registry holds, looked up `LOOKUP` at a time on the DBAPI cursor
    (SQLAlchemy's expanding IN renders and coerces each value: more than the look-up itself)."""
    found: dict[str, str] = {}
    numbers = list(dict.fromkeys(cert_numbers))
    for start in range(0, len(numbers), LOOKUP):
        chunk = numbers[start : start + LOOKUP]
        sql, names = _lookup_sql(conn.dialect, len(chunk))
        arguments: Any = tuple(chunk) if names is None else dict(zip(names, chunk, strict=True))
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, arguments)
            found.update(cursor.fetchall())
        except conn.dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(
                sql, None, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from error
        finally:
            cursor.close()
    return found


def held_problem(cert: str, status: str, row: int | None) -> Problem:
    """The refusal of a certificate number the registry holds already: filed, or a unit's imported copy."""
    if status in COPY_STATUSES:
        return Problem("cert_no_imported", "cert_no",
                       f"{COLUMN['cert_no']}：{cert} 已由学位授予单位导入学位信息库（工作副本），不能重复导入", row)  # fmt: skip
    return Problem("cert_no_filed", "cert_no", f"{COLUMN['cert_no']}：{cert} 已备案，不能重复导入", row)


LOOKUP = 500
_LOOKUPS: dict[tuple[str, int], tuple[str, tuple[str, ...] | None]] = {}


def _lookup_sql(dialect: Dialect, size: int) -> tuple[str, tuple[str, ...] | None]:
    """SELECT cert_no, status ... WHERE cert_no IN (size parameters), compiled by SQLAlchemy for the dialect;
    the parameter names when the dialect's style is named, else None."""
    key = (dialect.name, size)
    found = _LOOKUPS.get(key)
    if found is None:
        names = [f"n{i}" for i in range(size)]
        statement = select(RECORDS.c.cert_no, RECORDS.c.status).where(
            RECORDS.c.cert_no.in_([bindparam(name) for name in names])
        )
        compiled = statement.compile(dialect=dialect)
        if compiled.positional and tuple(compiled.positiontup or ()) != tuple(names):  # pragma: no cover
            raise RuntimeError("unexpected parameter order")
        found = _LOOKUPS[key] = (compiled.string, None if compiled.positional else tuple(names))
    return found


def check_for_import(
    conn: Connection, rows: Iterable[Mapping[str, str]], org: str | None = None, *, copies: bool = False
) -> list[Problem]:
    """Every problem of a batch, read as a stream: the record checks, the batch rules, the unit, and
    certificate numbers already filed (looked up a chunk at a time). A large CSV file not yet read
    (`record_files.iter_rows`) is checked in worker processes (`cases.record_workers`), same result.

    A unit's imported copies (`COPY_STATUSES`) do not stop a filing or supplement batch (its recording replaces
    them); with `copies` they count as well, as they do for an import (`import_file`)."""
    checker = BatchChecker()
    problems: list[Problem] = []
    pending: list[tuple[str, int]] = []

    def look_up() -> None:
        held = statuses(conn, [cert for cert, _ in pending])
        for cert, row in pending:
            status = held.get(cert)
            if status is not None and (copies or status not in COPY_STATUSES):
                problems.append(held_problem(cert, status, row))
        pending.clear()

    if record_workers.applies(rows):

        def filed(numbers: list[tuple[str, int]]) -> None:
            pending.extend(numbers)
            if len(pending) >= CHUNK:
                look_up()

        problems.extend(record_workers.check_file(rows, org, checker, filed))  # type: ignore[arg-type]
    else:
        for record in rows:
            row = as_fields(record)
            problems.extend(checker.add(row))
            unit_code = row.get("unit_code")
            if org and unit_code and unit_code != org:
                problems.append(Problem("unit_mismatch", "unit_code",
                                        f"{COLUMN['unit_code']}：应为导入单位 {org}，收到“{unit_code}”", checker.row))  # fmt: skip
            cert = row.get("cert_no")
            if cert:
                pending.append((cert, checker.row))
                if len(pending) >= CHUNK:
                    look_up()
    look_up()
    problems.extend(checker.finish())
    return sorted(problems, key=lambda p: (p.row or 0, p.field))


def store(
    conn: Connection,
    rows: Iterable[Mapping[str, str]],
    now: datetime,
    source: str,
    progress: Any = None,
    *,
    status: str = "filed",
    publishable: bool = True,
    import_id: int | None = None,
) -> int:
    """Insert the rows (keyed by field) as filed records in the caller's transaction, `CHUNK` at a time (or, from
    an import, as its `status`, `publishable` and `import_id` say)."""
    plan = _InsertPlan.of(conn.dialect)
    make = plan.row_maker(now, source, status=status, publishable=publishable, import_id=import_id)
    count = 0
    for chunk in _chunks(rows, CHUNK):
        plan.executemany(conn, list(map(make, chunk)))
        count += len(chunk)
        if progress:
            progress(len(chunk))
    return count


def import_file(
    conn: Connection,
    rows: Iterable[Mapping[str, str]],
    org: str | None,
    now: datetime,
    source: str,
    *,
    skip_invalid: bool = False,
    progress: Any = None,
    status: str = "filed",
    publishable: bool = True,
    import_id: int | None = None,
    stats: dict[str, int] | None = None,
) -> tuple[int, list[Problem]]:
    """Check and store in one pass over the rows (a file read once): `check_for_import` and `store` of the
    rows without problems, block by block (a large CSV file checked and prepared in worker processes).

    Returns (rows stored, the problems, exactly as `check_for_import` finds them). Without `skip_invalid`
    nothing more is stored after the first problem; the caller refuses the file — raising, so that its
    transaction rolls back what was stored — when there is any problem, or with `skip_invalid` a problem of
    the batch as a whole (no row). The rows of a double bachelor's pair found wrong at the end are removed.

    The records are stored as `status`, `publishable` and `import_id` say (an import's standing: public, a
    working copy, pending); a number the registry holds in any status is refused. `stats`, when given, gets
    the number of rows read (`rows`)."""
    plan = _InsertPlan.of(conn.dialect)
    bind = plan.binder(now, source, status=status, publishable=publishable, import_id=import_id)
    checker = BatchChecker()
    problems: list[Problem] = []
    held: dict[str, str] = {}  # numbers the registry held before this import -> their status
    stored_bachelors: dict[int, str] = {}  # row -> certificate number, for the pairs checked at the end
    stored = 0
    if record_workers.applies(rows):
        results = record_workers.checked_blocks(rows, org, prepare=True)  # type: ignore[arg-type]
    else:
        chunks = _chunks((as_fields(row) for row in rows), CHUNK)
        results = (record_workers.check_rows(chunk, org, prepare=True) for chunk in chunks)
    for count, found, certs, dates, bachelors, values in results:
        base = checker.row + 1
        block = [replace(p, row=p.row + base) for p in found]
        duplicates = checker.add_numbers(certs, base)
        repeated = {p.row for p in duplicates}
        # Numbers held before this import (a repeated number was looked up where it first appeared).
        held.update(statuses(conn, [c for i, c in enumerate(certs, base) if c and i not in repeated]))
        block += duplicates
        if held:
            block += [held_problem(c, held[c], i) for i, c in enumerate(certs, base) if c in held]
        checker.add_block(base, count, dates, bachelors)
        problems.extend(block)
        if problems and not skip_invalid:
            continue  # the file is refused: the rest is only checked
        bad = {p.row for p in block}
        batch = bind.many(values, bad, base)
        if batch:
            plan.executemany(conn, batch)
            stored += len(batch)
            if progress:
                progress(len(batch))
        for index, *_ in bachelors:
            if base + index not in bad:
                stored_bachelors[base + index] = certs[index]
    late = checker.finish()
    problems.extend(late)
    if skip_invalid:
        remove = {stored_bachelors[p.row] for p in late if p.row in stored_bachelors}
        if remove:
            conn.execute(delete(RECORDS).where(RECORDS.c.cert_no.in_(sorted(remove))))
            stored -= len(remove)
    if stats is not None:
        stats["rows"] = checker.row
    return stored, sorted(problems, key=lambda p: (p.row or 0, p.field))


class _Binding:
    """The parameters of one import's rows (`record_workers.row_values`): constant columns bound once."""

    def __init__(self, plan: _InsertPlan, now: datetime, source: str, status: str = "filed",
                 publishable: bool = True, import_id: int | None = None):  # fmt: skip
        self.plan = plan
        bound = plan._bound
        self.constant = {
            "status": bound("status", status),
            "publishable": bound("publishable", publishable),
            "photo_missing": bound("photo_missing", False),
            "filed_at": bound("filed_at", now),
            "revoked_at": None,
            "source": bound("source", source[:200]),
            "import_id": import_id,
        }
        # SQLite: (the varying values..., the constant ones) in the statement's order, the texts as they are.
        fast = plan.positional and plan.names == _VARYING + _CONSTANT and plan.json_as_is and plan.date_as_is
        self.tail = tuple(self.constant[name] for name in _CONSTANT) if fast else None

    def __call__(self, v: tuple[str, ...]) -> Any:
        if self.tail is not None:
            return (*v, *self.tail)
        plan = self.plan
        data = v[6] if plan.json_as_is else plan._bound("data", json.loads(v[6]))
        conferral = v[5] if plan.date_as_is else plan._bound("conferral_date", date.fromisoformat(v[5]))
        values = {**self.constant, **dict(zip(_VARYING[:5], v[:5], strict=True)),
                  "conferral_date": conferral, "data": data}  # fmt: skip
        return tuple(values[name] for name in plan.names) if plan.positional else values

    def many(self, values: list[tuple[str, ...]], skip: set[int], base: int) -> list[Any]:
        """The parameters of every row, numbered from `base`, not in `skip`."""
        tail = self.tail
        if tail is None:
            return [self(v) for i, v in enumerate(values, base) if i not in skip]
        if skip:
            return [(*v, *tail) for i, v in enumerate(values, base) if i not in skip]
        return [(*v, *tail) for v in values]


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


_INSERT_COLUMNS = tuple(column.key for column in RECORDS.c if column.key != "id")
_VARYING = ("cert_no", "unit_code", "name", "id_number", "degree_type", "conferral_date", "data")
_CONSTANT = ("status", "publishable", "photo_missing", "filed_at", "revoked_at", "source", "import_id")
_JSON_PROBE = {"name": "张伟", "cert_no": "1063532024000123", "gender": "女"}
_DATE_PROBE = date(2024, 6, 30)


class _InsertPlan:
    """The INSERT of filed records, compiled by SQLAlchemy once per dialect (with its bind processors for
    dates, times, booleans and JSON) and run with `executemany` on the DBAPI cursor: the per-row work of
    `Connection.execute` (parameter dictionaries, processors, insertmanyvalues batches) cost more than
    SQLite's own insert."""

    _plans: dict[str, _InsertPlan] = {}

    def __init__(self, dialect: Dialect):
        compiled = insert(RECORDS).inline().compile(dialect=dialect, column_keys=list(_INSERT_COLUMNS))
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names = tuple(compiled.positiontup or ()) if self.positional else _INSERT_COLUMNS
        if set(self.names) != set(_INSERT_COLUMNS):  # pragma: no cover - a schema change not reflected here
            raise RuntimeError(f"unexpected INSERT parameters {self.names}")
        self.processors: dict[str, Callable[[Any], Any] | None] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        # The texts of `record_workers.row_values` are written as they are when the dialect writes a date as
        # its ISO text and JSON with json.dumps(ensure_ascii=False) (the engine's serializer), checked on probes.
        self.json_as_is = self._bound("data", _JSON_PROBE) == json.dumps(_JSON_PROBE, ensure_ascii=False)
        self.date_as_is = self._bound("conferral_date", _DATE_PROBE) == _DATE_PROBE.isoformat()

    @classmethod
    def of(cls, dialect: Dialect) -> _InsertPlan:
        plan = cls._plans.get(dialect.name)
        if plan is None:
            plan = cls._plans[dialect.name] = cls(dialect)
        return plan

    def _bound(self, name: str, value: Any) -> Any:
        processor = self.processors.get(name)
        return processor(value) if processor is not None and value is not None else value

    def binder(self, now: datetime, source: str, **standing: Any) -> _Binding:
        """From `record_workers.row_values` to the INSERT's parameters (a tuple in its order, or a dict)."""
        return _Binding(self, now, source, **standing)

    def row_maker(self, now: datetime, source: str, **standing: Any) -> Callable[[Mapping[str, str]], Any]:
        """From a checked row keyed by field to the INSERT's parameters (`binder` of `row_values`)."""
        bind = self.binder(now, source, **standing)
        json_text = record_workers.JsonText()

        def make(row: Mapping[str, str]) -> Any:
            # Rows come checked (a case's data step); `row_values` takes the date's digits as they are.
            if parse_yyyymmdd(row.get("conferral_date", "")) is None:
                raise ValueError(f"conferral_date {row.get('conferral_date')!r} is not a YYYYMMDD date")
            return bind(record_workers.row_values(row, json_text))

        return make

    def executemany(self, conn: Connection, batch: list[Any]) -> None:
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(self.sql, batch)
        except conn.dialect.loaded_dbapi.Error as error:
            # The exception SQLAlchemy would raise, so callers see one error family.
            raise DBAPIError.instance(
                self.sql, batch[:1], error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from error
        finally:
            cursor.close()


# Built once: building the statement per look-up costs more than SQLite's own work.
_RECORD_BY_NUMBER = select(RECORDS).where(RECORDS.c.cert_no == bindparam("cert_no"))


def _record(conn: Connection, cert_no: str) -> Any:
    return conn.execute(_RECORD_BY_NUMBER, {"cert_no": cert_no}).first()


def registry_record(conn: Connection, cert_no: str) -> Any:
    """The registry's record of a certificate as a check may rely on it: filed (public, or a unit's confirmed
    filed data) or revoked; None for a unit's working copy or unconfirmed import (`COPY_STATUSES`)."""
    row = _record(conn, cert_no)
    return None if row is None or row.status in COPY_STATUSES else row


def _log(conn: Connection, record_id: int, case_id: int | None, action: str, actor_id: int | None, now: datetime,
         field: str = "", old: str = "", new: str = "") -> None:  # fmt: skip
    conn.execute(insert(CHANGES).values(record_id=record_id, case_id=case_id, action=action, field=field,
                                        old_value=old, new_value=new, at=now, actor_id=actor_id))  # fmt: skip


_COLUMNS_OF_FIELD = {
    "name": "name",
    "id_number": "id_number",
    "degree_type": "degree_type",
    "cert_no": "cert_no",
}


def apply_changes(conn: Connection, cert_no: str, changes: list[Mapping[str, Any]], case_id: int,
                  actor_id: int, now: datetime) -> bool:  # fmt: skip
    """Change a filed record as an approved amendment or errata says; the old values stay in history (a unit's
    working copy or unconfirmed import is not a filed record: left as it is)."""
    row = registry_record(conn, cert_no)
    if row is None:
        return False
    data = dict(row.data or {})
    columns: dict[str, Any] = {}
    for change in changes:
        field, new = str(change["field"]), str(change["new_value"])
        old = data.get(field, "")
        data[field] = new
        if field in _COLUMNS_OF_FIELD:
            columns[_COLUMNS_OF_FIELD[field]] = new
        if field == "conferral_date":
            columns["conferral_date"] = parse_yyyymmdd(new.replace("-", "")) or row.conferral_date
        _log(conn, row.id, case_id, "changed", actor_id, now, field, str(old), new)
    conn.execute(update(RECORDS).where(RECORDS.c.id == row.id).values(data=data, **columns))
    return True


def revoke(conn: Connection, cert_no: str, case_id: int, actor_id: int, now: datetime) -> bool:
    row = registry_record(conn, cert_no)
    if row is None or row.status == "revoked":
        return False
    conn.execute(update(RECORDS).where(RECORDS.c.id == row.id).values(status="revoked", revoked_at=now))
    _log(conn, row.id, case_id, "revoked", actor_id, now, "status", row.status, "revoked")
    return True


def photo_supplied(
    conn: Connection, cert_numbers: Iterable[str], case_id: int, actor_id: int, now: datetime
) -> int:
    count = 0
    for cert_no in cert_numbers:
        row = registry_record(conn, cert_no)
        if row is not None and row.photo_missing:
            conn.execute(update(RECORDS).where(RECORDS.c.id == row.id).values(photo_missing=False))
            _log(conn, row.id, case_id, "photo", actor_id, now, "photo_missing", "true", "false")
            count += 1
    return count


def file_records(
    conn: Connection, rows: list[Mapping[str, str]], case_id: int, actor_id: int, now: datetime
) -> None:
    """A filing or supplement case's records, filed and public. A unit's imported copy of one of them
    (`COPY_STATUSES`) becomes the filed record: its values are the case's, the change is in its history."""
    held = statuses(conn, [row["cert_no"] for row in rows])
    copies = {cert for cert, status in held.items() if status in COPY_STATUSES}
    store(conn, [row for row in rows if row["cert_no"] not in copies], now, f"case:{case_id}")
    json_text = record_workers.JsonText()
    for row in rows:
        cert = row["cert_no"]
        record = _record(conn, cert)
        if cert in copies:
            _, unit_code, name, id_number, degree_type, conferral, _ = record_workers.row_values(
                row, json_text
            )
            conn.execute(update(RECORDS).where(RECORDS.c.id == record.id).values(
                unit_code=unit_code, name=name, id_number=id_number, degree_type=degree_type,
                conferral_date=date.fromisoformat(conferral), data=dict(row), status="filed",
                publishable=True, filed_at=now, source=f"case:{case_id}", import_id=None))  # fmt: skip
            _log(conn, record.id, case_id, "filed", actor_id, now, "status", record.status, "filed")
        else:
            _log(conn, record.id, case_id, "filed", actor_id, now)


def apply_for_step(conn: Connection, ctx: FireContext, step: Step, event_id: int) -> None:
    """The engine's after-step hook: the registry changes a step makes."""
    case_type, payload = ctx.case.type, ctx.payload
    if case_type == "supplement" and step.dest == "recorded":
        file_records(conn, [normalise(row) for row in payload.get("data") or []], ctx.case.id, ctx.actor.id,
                     ctx.now)  # fmt: skip
    elif case_type == "filing" and step.dest == "recorded":
        from cases.filing import batch_rows  # the filing module checks batches against this registry

        # The whole batch in this step's transaction: the two records of a double bachelor's degree together.
        file_records(conn, batch_rows(payload), ctx.case.id, ctx.actor.id, ctx.now)
    elif case_type in ("amendment", "errata") and step.dest == "recorded":
        apply_changes(conn, str(payload.get("cert_no", "")), payload.get("changes") or [], ctx.case.id, ctx.actor.id,
                      ctx.now)  # fmt: skip
    elif case_type == "revocation" and step.dest == "revoked":
        revoke(conn, str(payload.get("cert_no", "")), ctx.case.id, ctx.actor.id, ctx.now)
    elif case_type == "photo" and step.dest == "recorded":
        photo_supplied(conn, [p.get("cert_no", "") for p in payload.get("people") or []], ctx.case.id, ctx.actor.id,
                       ctx.now)  # fmt: skip


def history(conn: Connection, cert_no: str) -> dict[str, Any] | None:
    row = _record(conn, cert_no)
    if row is None:
        return None
    changes = conn.execute(select(CHANGES).where(CHANGES.c.record_id == row.id).order_by(CHANGES.c.id)).all()
    return {
        "cert_no": row.cert_no, "name": row.name, "status": row.status, "photo_missing": row.photo_missing,
        "publishable": row.publishable, "standing": standing_label(row.status, row.publishable),
        "import_id": row.import_id, "filed_at": row.filed_at, "source": row.source, "data": row.data,
        "changes": [{"at": c.at, "case_id": c.case_id, "action": c.action, "field": c.field,
                     "field_label": COLUMN.get(c.field) or _OTHER_LABELS.get(c.field, c.field),
                     "old": _VALUE_WORDS.get((c.field, c.old_value), c.old_value),
                     "new": _VALUE_WORDS.get((c.field, c.new_value), c.new_value)}
                    for c in changes],
    }  # fmt: skip


# The record's own columns a change names, in Chinese (a page shows no keys).
_OTHER_LABELS = {"status": "状态", "photo_missing": "缺电子照片"}
_VALUE_WORDS = {("status", "filed"): "已备案", ("status", "revoked"): "已撤销", ("status", "working"): "单位工作副本",
                ("status", "pending"): "单位已备案数据（待确认）", ("photo_missing", "true"): "是",
                ("photo_missing", "false"): "否"}  # fmt: skip


# -- online query (seed 000) -----------------------------------------------------------------------------------
def mask_id(number: str) -> str:
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def query(conn: Connection, cert_no: str, name: str, *, client: str, member: bool, now: datetime,
          per_minute: int) -> dict[str, Any]:  # fmt: skip
    """Answer an online certificate query; anonymous callers are limited per address. Every query is logged."""
    limited = False
    if not member:
        recent = conn.execute(
            select(func.count())
            .select_from(QUERIES)
            .where(
                and_(
                    QUERIES.c.client == client,
                    QUERIES.c.at > now - timedelta(minutes=1),
                    QUERIES.c.limited.is_(False),
                )
            )
        ).scalar_one()
        limited = recent >= per_minute
    row = None if limited else _record(conn, cert_no.strip())
    found = row is not None and row.status == "filed" and row.publishable and row.name == name.strip()
    conn.execute(insert(QUERIES).values(at=now, client=client[:64], member=member, cert_no=cert_no[:32], found=found,
                                        limited=limited))  # fmt: skip
    if limited:
        return {
            "status": "limited",
            "message": f"查询过于频繁：匿名用户每分钟最多查询 {per_minute} 次，请稍后再试",
        }
    if not found:
        return {
            "status": "not_found",
            "message": "未查询到该学位证书信息（证书编号与姓名不符，或该信息不予公开）",
        }
    data = row.data or {}
    return {
        "status": "found",
        "record": {
            "姓名": row.name, "性别": data.get("gender", ""), "身份证件号码": mask_id(row.id_number),
            "学位授予单位": data.get("unit_name", ""), "学位类别": row.degree_type,
            "学科/专业名称": data.get("major", ""), "获学位日期": data.get("conferral_date", ""),
            "学位证书编号": row.cert_no,
        },
    }  # fmt: skip


# -- authentication matching --------------------------------------------------------------------------------------
MATCH_FIELDS = {"applicant_name": "name", "id_number": "id_number", "degree_type": "degree_type",
                "conferral_date": "conferral_date"}  # fmt: skip


def compare(conn: Connection, request: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Compare an authentication request with the filed record of its certificate number.

    Returns (exact match, the fields that differ, by their Chinese names)."""
    row = _record(conn, str(request.get("cert_no", "")).strip())
    if row is None or row.status != "filed":
        return False, ["学位证书编号（无备案记录）"]
    data = normalise(row.data or {})
    differing = []
    for asked, field in MATCH_FIELDS.items():
        wanted = str(request.get(asked) or "").strip()
        if not wanted:
            continue
        have = data.get(field, "")
        if field == "conferral_date":
            wanted = wanted.replace("-", "")
        if wanted != have:
            differing.append(COLUMN.get(field, field))
    if str(request.get("cert_no", ""))[:5] != row.unit_code:
        differing.append(COLUMN["unit_code"])
    return not differing, differing


# -- imports: who brought what into the registry, and what it may be used for ------------------------------------
# national: the Degree Center or the national office loads the national database, public at once.
# working: a unit's working copy, for its checks; neither public nor a filed record.
# filed: a unit's own filed data (e.g. the history filed before this system), pending until a second person of the
#   unit confirms it; then a filed record for the comparisons (authentication, registry checks), still not public.
# Only a filing or supplement case (`file_records`) and a national import make a record public.
KIND_LABELS = {"national": "全国学位授予信息库", "working": "单位工作副本", "filed": "单位已备案数据"}
STATUS_LABELS = {"public": "已公开", "working": "工作副本（不公开）", "pending": "待另一名工作人员确认",
                 "confirmed": "已确认（不公开）", "refused": "未导入"}  # fmt: skip
# kind -> (the import's status, the records' status, publishable)
STANDING = {"national": ("public", "filed", True), "working": ("working", "working", False),
            "filed": ("pending", "pending", False)}  # fmt: skip
IMPORT_ROLES = {"unit": ("collector", "verifier", "admin"), "center": ("officer", "admin"),
                "national": ("officer", "admin")}  # fmt: skip
CONFIRM_ROLES = ("verifier", "admin")  # a second person checks what was collected (seed 002 art. 12(2))
SECOND_PERSON_RULE = "校核与采集应当由不同工作人员负责完成（《学位授予信息管理工作规程》第十二条第二项）"


def import_kind(actor: Actor, filed: bool) -> str:
    """What an import by this person is: the national database (Degree Center, national office), or a unit's
    working copy or filed data. Refused for anyone else, naming the rule."""
    roles = IMPORT_ROLES.get(actor.org_kind)
    if roles is None:
        raise Forbidden(
            f"导入人：{actor.name}（{actor.org_name}）不能导入学位授予信息（只有学位授予单位、学位中心或国务院学位委员会"
            "办公室可以导入）",
            field="as_user",
            rule="records_import_level",
        )
    if actor.role not in roles:
        raise Forbidden(
            f"导入人：{actor.name} 的角色不能导入学位授予信息（可导入的角色：{'、'.join(_role_labels(roles))}）",
            field="as_user",
            rule="records_import_role",
        )
    if actor.org_kind != "unit":
        if filed:
            raise InvalidPayload(
                "导入类别：学位中心或国务院学位委员会办公室导入的是全国学位授予信息库（导入即公开），不选“单位已备案数据”",
                field="filed",
                rule="filed_is_for_units",
            )
        return "national"
    return "filed" if filed else "working"


def _role_labels(roles: Iterable[str]) -> list[str]:
    from cases.vocabulary import ROLE_LABELS

    return [ROLE_LABELS.get(role, role) for role in roles]


def begin_import(
    conn: Connection, actor: Actor, unit_code: str, filename: str, kind: str, now: datetime
) -> int:
    """The audit row of an import, written before its records (they refer to it); `finish_import` completes it in
    the same transaction."""
    return int(conn.execute(insert(IMPORTS).values(
        at=now, actor_id=actor.id, org_id=actor.org_id, unit_code=unit_code, filename=filename[:200], sha256="",
        size=0, kind=kind, status="importing", accepted=0, refused=0, message="",
    )).inserted_primary_key[0])  # fmt: skip


def finish_import(
    conn: Connection, import_id: int, *, sha256: str, size: int, accepted: int, refused: int
) -> str:
    """Complete the audit row with what was taken; returns the import's status."""
    kind = conn.execute(select(IMPORTS.c.kind).where(IMPORTS.c.id == import_id)).scalar_one()
    status = STANDING[kind][0]
    conn.execute(update(IMPORTS).where(IMPORTS.c.id == import_id).values(
        sha256=sha256, size=size, accepted=accepted, refused=refused, status=status))  # fmt: skip
    return status


def log_refused_import(conn: Connection, actor: Actor, unit_code: str, filename: str, kind: str, now: datetime, *,
                       sha256: str, size: int, refused: int, message: str) -> int:  # fmt: skip
    """The audit row of a file refused as a whole (its transaction took back what it had stored)."""
    return int(conn.execute(insert(IMPORTS).values(
        at=now, actor_id=actor.id, org_id=actor.org_id, unit_code=unit_code, filename=filename[:200], sha256=sha256,
        size=size, kind=kind, status="refused", accepted=0, refused=refused, message=message[:500],
    )).inserted_primary_key[0])  # fmt: skip


def import_row(conn: Connection, import_id: int) -> dict[str, Any] | None:
    found = list_imports(conn, import_id=import_id)
    return found[0] if found else None


def list_imports(conn: Connection, *, units: Iterable[str] | None = None, import_id: int | None = None,
                 limit: int = 50) -> list[dict[str, Any]]:  # fmt: skip
    """Imports, newest first, with who made them, who confirmed them and their status now (a pending import once
    confirmed is `confirmed`). `units`: only these units' imports (None: all)."""
    importer, confirmer = User.__table__.alias("importer"), User.__table__.alias("confirmer")
    orgs = Organisation.__table__
    query = (
        select(
            IMPORTS,
            importer.c.username,
            importer.c.name.label("actor_name"),
            orgs.c.name.label("org_name"),
            CONFIRMATIONS.c.at.label("confirmed_at"),
            confirmer.c.username.label("confirmed_by"),
            confirmer.c.name.label("confirmed_by_name"),
        )  # fmt: skip
        .join(importer, importer.c.id == IMPORTS.c.actor_id)
        .join(orgs, orgs.c.id == IMPORTS.c.org_id)
        .outerjoin(CONFIRMATIONS, CONFIRMATIONS.c.import_id == IMPORTS.c.id)
        .outerjoin(confirmer, confirmer.c.id == CONFIRMATIONS.c.actor_id)
        .where(IMPORTS.c.status != "importing")
        .order_by(IMPORTS.c.id.desc())
        .limit(limit)
    )
    if import_id is not None:
        query = query.where(IMPORTS.c.id == import_id)
    if units is not None:
        query = query.where(IMPORTS.c.unit_code.in_(list(units)))
    found = []
    for row in conn.execute(query):
        status = "confirmed" if row.confirmed_at is not None else row.status
        found.append({
            "id": row.id, "at": row.at, "importer": row.username, "importer_name": row.actor_name,
            "org_name": row.org_name, "unit_code": row.unit_code, "filename": row.filename, "sha256": row.sha256,
            "size": row.size, "kind": row.kind, "kind_label": KIND_LABELS.get(row.kind, row.kind),
            "status": status, "status_label": STATUS_LABELS.get(status, status), "accepted": row.accepted,
            "refused": row.refused, "message": row.message, "confirmed_at": row.confirmed_at,
            "confirmed_by": row.confirmed_by, "confirmed_by_name": row.confirmed_by_name,
        })  # fmt: skip
    return found


def confirm_import(conn: Connection, import_id: int, actor: Actor, now: datetime) -> dict[str, Any]:
    """A second person of the unit confirms its import of filed data: the records become filed (for the
    comparisons), still not public. Refused, naming the rule, for the importer, another organisation, a role that
    does not verify, or an import that is not pending."""
    found = import_row(conn, import_id)
    if found is None or actor.org_kind != "unit" or found["unit_code"] != actor.org_code:
        raise NotFound(
            f"导入记录 #{import_id} 不存在（或不属于本单位）", field="import_id", rule="import_exists"
        )
    if found["status"] != "pending":
        raise InvalidPayload(
            f"导入记录 #{import_id}：状态为“{found['status_label']}”，只有单位已备案数据的导入待确认",
            field="import_id",
            rule="import_pending",
        )
    if found["importer"] == actor.username:
        raise SeparationOfDuties(
            f"确认人：{actor.name}（{actor.username}）是这次导入的导入人，不能确认自己的导入——{SECOND_PERSON_RULE}，"
            "须由本单位另一名工作人员确认",
            field="as_user",
            rule="second_person",
        )
    if actor.role not in CONFIRM_ROLES:
        raise Forbidden(
            f"确认人：{actor.name} 的角色不能确认导入（可确认的角色：{'、'.join(_role_labels(CONFIRM_ROLES))}）",
            field="as_user",
            rule="confirm_role",
        )
    conn.execute(insert(CONFIRMATIONS).values(import_id=import_id, at=now, actor_id=actor.id))
    conn.execute(update(RECORDS).where(RECORDS.c.import_id == import_id, RECORDS.c.status == "pending")
                 .values(status="filed"))  # fmt: skip
    return import_row(conn, import_id) or {}


def standing_label(status: str, publishable: bool) -> str:
    """What a record's status means, in Chinese."""
    if status == "revoked":
        return "已撤销"
    if status == "working":
        return "单位工作副本（未备案，不公开）"
    if status == "pending":
        return "单位已备案数据（待另一名工作人员确认，不公开）"
    return "已备案" if publishable else "已备案（单位导入并经确认，不公开）"
