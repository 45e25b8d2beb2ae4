"""Backups of the database and dossier archives of single cases (the application shell: files, PDFs, tools).

`backup_database` copies a SQLite database with SQLite's online backup API while the application keeps
writing (WAL): the copy is taken inside one read transaction, so it is one consistent moment of the
database even when it is copied in steps, and it is checked before it is given its name: `PRAGMA
integrity_check`, the row count of every table equal to the source's at that moment, and the audit hash
chains recomputed on the copy. On PostgreSQL it runs `pg_dump` (custom format) on an exported snapshot, checks
the dump with `pg_restore` (readable; every table's rows counted against the snapshot) and verifies the audit
chains in that same snapshot; without `pg_dump` on PATH it refuses with the exact commands to run.

`export_case` writes a case's dossier (see `cases.dossier`) as a ZIP archive, with every issued document as
a PDF, and checks the written archive with its own standalone `verify_chain.py` before giving it its name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from cases import dossier
from cases.service import DegreeFlow
from db import make_engine
from workflow import Conflict, NotFound, WorkflowError
from workflow.audit import verify_chain

Progress = Callable[[int, int], None]  # (done, total)
STEP_PAGES = (
    1024  # pages copied per backup step (4 MB with 4 KB pages): progress, and writers are not held up
)


class BackupError(WorkflowError):
    code = "backup_failed"
    exit_code = 12


def _refuse_existing(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise Conflict(f"文件 {target} 已存在；如需覆盖请加 --force", rule="file_exists", field="FILE")
    if target.is_dir():
        raise Conflict(f"{target} 是目录，请给出文件名", rule="file_exists", field="FILE")


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def _publish(partial: Path, target: Path) -> None:
    """Make the checked file durable, then give it its name in one step (a reader never sees half a file)."""
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    try:
        fd = os.open(target.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - directories cannot be opened on some systems
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _cleanup(partial: Path) -> Iterator[None]:
    """Remove the half-made file if anything below fails."""
    try:
        yield
    except BaseException:
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), Path(f"{partial}-journal")):
            leftover.unlink(missing_ok=True)
        raise


# -- database backup -------------------------------------------------------------------------------------
def backup_database(
    url: str, target: Path, *, force: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return backup_sqlite(parsed, target, force=force, progress=progress)
    if backend == "postgresql":
        return backup_postgresql(parsed, target, force=force)
    raise BackupError(f"不支持备份 {backend} 数据库（支持 sqlite 与 postgresql）", rule="backup_backend")


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows]


def _sqlite_counts(conn: sqlite3.Connection, tables: list[str]) -> dict[str, int]:
    return {
        t: conn.execute(f'SELECT count(*) FROM "{t.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
        for t in tables
    }


def backup_sqlite(
    url: URL, target: Path, *, force: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise BackupError("只能备份 SQLite 数据库文件（不是内存数据库）", rule="backup_source")
    source = Path(database).expanduser()
    if not source.is_file():
        raise NotFound(f"数据库文件 {source} 不存在", rule="database_exists", field="db")
    if target.exists() and target.resolve() == source.resolve():
        raise Conflict(f"备份文件不能是数据库本身：{target}", rule="file_exists", field="FILE")
    _refuse_existing(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(target)
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), Path(f"{partial}-journal")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    with _cleanup(partial):
        src = sqlite3.connect(str(source), isolation_level=None, timeout=30)
        try:
            tables = _sqlite_tables(src)
            if "cases" not in tables or "case_events" not in tables:
                raise BackupError(
                    f"{source} 不是 degreeflow 数据库（没有 cases 表）", rule="database_initialised"
                )
            # One read transaction over the counts and the whole copy: with WAL, writers go on, and every step
            # of the backup reads the same moment of the database (no restarts, counts that match the copy).
            src.execute("BEGIN")
            counts = _sqlite_counts(src, tables)
            dst = sqlite3.connect(str(partial), isolation_level=None)
            pages = {"total": 0}

            def step(_status: int, remaining: int, total: int) -> None:
                pages["total"] = total
                if progress is not None:
                    progress(total - remaining, total)

            try:
                src.backup(dst, pages=STEP_PAGES, progress=step)
            finally:
                dst.close()
            src.execute("COMMIT")
        finally:
            src.close()
        copied = time.monotonic() - started
        check = _check_sqlite_copy(partial, counts)
        _publish(partial, target)
    return {
        "backend": "sqlite",
        "source": str(source),
        "file": str(target),
        "bytes": target.stat().st_size,
        "sha256": file_sha256(target),
        "pages": pages["total"],
        "seconds": round(copied, 3),
        "tables": counts,
        **check,
    }


def _check_sqlite_copy(path: Path, counts: dict[str, int]) -> dict[str, Any]:
    dst = sqlite3.connect(str(path), isolation_level=None)
    try:
        result = [row[0] for row in dst.execute("PRAGMA integrity_check").fetchall()]
        if result != ["ok"]:
            raise BackupError(f"备份副本的完整性检查未通过：{'；'.join(result[:5])}", rule="backup_integrity")
        copied = _sqlite_counts(dst, _sqlite_tables(dst))
    finally:
        dst.close()
    _compare_counts(counts, copied)
    service = DegreeFlow(make_engine(URL.create("sqlite", database=str(path)).render_as_string()))
    try:
        report = service.verify_audit()
    finally:
        service.db.dispose()
    if not report.ok:
        first = report.problems[0]
        raise BackupError(
            f"备份副本的审计哈希链核验未通过：案件 #{first.case_id} 第 {first.seq} 条：{first.problem}"
            f"（共 {len(report.problems)} 处；请先用 degreeflow audit verify 检查数据库）",
            rule="backup_audit_chain",
        )
    # One self-contained file: the copy needs no -wal beside it (the application turns WAL on again when it opens it).
    dst = sqlite3.connect(str(path), isolation_level=None)
    try:
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
    return {"integrity": "ok", "audit": {"ok": True, "cases": report.cases, "events": report.events}}


def _compare_counts(expected: dict[str, int], copied: dict[str, int]) -> None:
    different = [
        f"{t}：源 {n} 行，副本 {copied.get(t, '无此表')}" for t, n in expected.items() if copied.get(t) != n
    ]
    if different:
        raise BackupError(f"备份副本的行数与源数据库不一致：{'；'.join(different)}", rule="backup_row_counts")


# -- PostgreSQL ------------------------------------------------------------------------------------------
def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password (that goes to the environment, not the process list)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return plain.render_as_string(hide_password=False), env


def pg_guidance(url: URL, target: Path) -> str:
    """The exact commands an operator runs to back up and restore this PostgreSQL database."""
    host, port = url.host or "localhost", url.port or 5432
    user, db = url.username or "postgres", url.database or "degreeflow"
    file = shlex.quote(str(target))
    password = "（如需密码，请设置环境变量 PGPASSWORD 或使用 ~/.pgpass）"
    return (
        f"请用 PostgreSQL 自带的 pg_dump 备份（在一致的快照上导出，应用可继续运行）{password}：\n"
        f"  pg_dump --format=custom --no-owner -h {host} -p {port} -U {user} -d {db} -f {file}\n"
        f"检查备份文件可读：\n"
        f"  pg_restore --list {file}\n"
        f"恢复到一个新建的空数据库（然后把 DEGREEFLOW_DATABASE_URL 指向它）：\n"
        f"  createdb -h {host} -p {port} -U {user} {db}_restored\n"
        f"  pg_restore --no-owner --exit-on-error -h {host} -p {port} -U {user} -d {db}_restored {file}\n"
        f"  degreeflow --db postgresql://{user}@{host}:{port}/{db}_restored audit verify"
    )


_COPY = re.compile(r'^COPY (?:"?([^".\s]+)"?\.)?"?([^"\s(]+)"? .*FROM stdin;$')


def _dump_row_counts(pg_restore: str, dump: Path) -> dict[str, int]:
    """Rows of each table in a custom-format dump, counted from the COPY blocks `pg_restore` prints."""
    counts: dict[str, int] = {}
    current: str | None = None
    with subprocess.Popen(
        [pg_restore, "--data-only", "--file=-", str(dump)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if current is None:
                found = _COPY.match(line)
                if found:
                    current = found[2]
                    counts[current] = 0
            elif line == "\\.":
                current = None
            else:
                counts[current] += 1  # COPY text format: one line per row (newlines in values are escaped)
        stderr = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise BackupError(f"pg_restore 无法读取备份文件：{stderr.strip()}", rule="backup_readable")
    return counts


def backup_postgresql(url: URL, target: Path, *, force: bool = False) -> dict[str, Any]:
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if not pg_dump or not pg_restore:
        raise BackupError(
            f"PostgreSQL 数据库的备份需要 pg_dump 和 pg_restore，但在 PATH 中找不到（未做任何备份）。\n{pg_guidance(url, target)}",
            rule="pg_dump_missing",
        )
    _refuse_existing(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(target)
    partial.unlink(missing_ok=True)
    uri, env = _libpq(url)
    engine = make_engine(url.render_as_string(hide_password=False))
    started = time.monotonic()
    try:
        with _cleanup(partial), engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # The dump, the row counts and the chain check all read this one snapshot.
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                tables = (
                    conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
                        )
                    )
                    .scalars()
                    .all()
                )
                if "cases" not in tables:
                    raise BackupError(
                        "数据库尚未初始化（没有 cases 表），无需备份", rule="database_initialised"
                    )
                counts = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}
                report = verify_chain(conn)
                done = subprocess.run(
                    [pg_dump, "--format=custom", "--no-owner", f"--snapshot={snapshot}", f"--file={partial}",
                     f"--dbname={uri}"],
                    env=env, capture_output=True, text=True,
                )  # fmt: skip
            if done.returncode != 0:
                raise BackupError(
                    f"pg_dump 失败：{done.stderr.strip()}\n{pg_guidance(url, target)}", rule="pg_dump_failed"
                )
            listed = subprocess.run([pg_restore, "--list", str(partial)], capture_output=True, text=True)
            if listed.returncode != 0:
                raise BackupError(
                    f"pg_restore 无法读取备份文件：{listed.stderr.strip()}", rule="backup_readable"
                )
            _compare_counts(counts, _dump_row_counts(pg_restore, partial))
            if not report.ok:
                first = report.problems[0]
                raise BackupError(
                    f"数据库的审计哈希链核验未通过：案件 #{first.case_id} 第 {first.seq} 条：{first.problem}"
                    f"（共 {len(report.problems)} 处；请先用 degreeflow audit verify 检查）",
                    rule="backup_audit_chain",
                )
            _publish(partial, target)
    finally:
        engine.dispose()
    return {
        "backend": "postgresql",
        "source": url.render_as_string(hide_password=True),
        "file": str(target),
        "bytes": target.stat().st_size,
        "sha256": file_sha256(target),
        "seconds": round(time.monotonic() - started, 3),
        "tables": counts,
        "integrity": "pg_restore --list ok",
        "audit": {"ok": True, "cases": report.cases, "events": report.events},
        "restore": pg_guidance(url, target).split("\n", 1)[1],
    }


# -- case dossier ----------------------------------------------------------------------------------------
def export_case(
    flow: DegreeFlow,
    case_id: int,
    as_user: str,
    target: Path | None = None,
    *,
    pdf: Any = None,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the case's dossier archive as `as_user`; returns what was written (file, SHA-256, counts)."""
    from degreeflow import __version__

    target = target or Path(dossier.default_name(case_id))
    _refuse_existing(target, force)
    gathered = dossier.gather(flow, case_id, as_user)
    if pdf is None:
        pdf = default_renderer()
    pdfs: dict[str, bytes] = {}
    for number, doc in enumerate(gathered.documents, 1):
        pdfs[doc.path] = pdf.pdf(doc.html)
        if progress is not None:
            progress(number, len(gathered.documents))
    files = dossier.archive_files(
        gathered, pdfs, generator=f"degreeflow {__version__}", archive_name=target.name
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(target)
    stamp = datetime.fromisoformat(gathered.exported_at).timetuple()[:6]
    with _cleanup(partial):
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path, data in files.items():
                info = zipfile.ZipInfo(path, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        checked = check_archive(partial)
        if gathered.audit.get("ok") and not checked["ok"]:
            raise BackupError(f"卷宗自检未通过：{checked['output']}", rule="dossier_self_check")
        _publish(partial, target)
    return {
        "case_id": case_id,
        "file": str(target),
        "bytes": target.stat().st_size,
        "sha256": file_sha256(target),
        "files": len(files),
        "events": len(gathered.history),
        "documents": len(gathered.documents),
        "attachments": len(gathered.attachments),
        "head_hash": gathered.case["head"]["hash"],
        "exported_by": gathered.exported_by["username"],
        "exported_at": gathered.exported_at,
        "audit": gathered.audit,
        "verified": checked["ok"],
    }


def default_renderer() -> Any:
    from degreeflow.pdf import PdfRenderer
    from degreeflow.settings import Settings

    settings = Settings()
    return PdfRenderer(settings.letter_fonts, settings.letter_title_fonts)


def check_archive(archive: Path) -> dict[str, Any]:
    """Unpack the archive and run its own `verify_chain.py` with a plain Python, as a recipient would."""
    with tempfile.TemporaryDirectory(prefix="dossier-") as tmp:
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                if name.startswith("/") or ".." in name.split("/"):
                    return {"ok": False, "output": f"不安全的文件名：{name}"}
            opened.extractall(tmp)
        done = subprocess.run(
            [sys.executable, "-I", "-S", "verify_chain.py"],
            cwd=tmp,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
            timeout=600,
        )
    return {"ok": done.returncode == 0, "output": (done.stdout + done.stderr).strip()}
