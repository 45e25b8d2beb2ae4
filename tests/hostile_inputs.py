"""Hostile input for tests/test_hostile.py: the strings, the database snapshot, and a fork server that runs the
real `degreeflow` command line in a fresh child process per invocation (imported once, forked per call: the
same entry point, argument parsing, exit code and stderr as the installed script, at a fraction of the cost of
starting Python for each of the many invocations).

Run as `python -m tests.hostile_inputs`: reads one JSON request per line on stdin
(`{"args": [...], "env": {...}, "cwd": "...", "stdin": "...", "timeout": 20}`) and answers one JSON line
(`{"rc", "stdout", "stderr", "timed_out"}`).
"""

from __future__ import annotations

import hashlib
import json
import os
import select as select_module
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

# -- the hostile strings ------------------------------------------------------------------------------------
SQL = "'; DROP TABLE cases;--"
SQL_OR = "1' OR '1'='1"
SCRIPT = "<script>alert(1)</script>"
TRAVERSAL = "../../etc/passwd"
NUL = "a\x00b"
HUGE = "x" * (1 << 20)  # 1 MB
LONG_NAME = "钱" * 5000
UNICODE_TRICKS = "\u202e\ufeff\u200b张\u0301三"
BAD_DATES = ["2021-13-45", "2021-02-30", "0000-00-00", "99999-01-01", "yesterday", "2021/06/25", ""]
WRONG_INTS = ["abc", "1.5", "-1", "99999999999999999999999", "0x10", " ", "1e3"]
INJECTIONS = [SQL, SQL_OR, SCRIPT, TRAVERSAL, NUL, UNICODE_TRICKS]

# Tables a refused request may still write to by design: the log of sign-in attempts (throttling counts the
# refused ones), the log of online queries (every query is logged, found or not) and the audit of records imports
# (a refused file is on the record too; its records are not).
LOG_TABLES = frozenset({"login_attempts", "query_log", "record_imports"})


def snapshot(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and SHA-256 of the contents of every table (except the logs above), in primary-key order."""
    import db  # noqa: F401  (registers the tables)

    found: dict[str, tuple[int, str]] = {}
    existing = set(inspect(engine).get_table_names())
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in LOG_TABLES or table.name not in existing:
                continue
            order = ", ".join(c.name for c in (list(table.primary_key.columns) or list(table.columns)))
            # The stored values themselves, folded in the database (one row back per table: fast).
            if postgres:
                sql = (f"SELECT count(*), coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '') "
                       f"FROM {table.name} t")  # fmt: skip
            else:
                values = " || '|' || ".join(f"quote({c.name})" for c in table.columns)
                sql = (f"SELECT count(*), coalesce(group_concat({values}, char(10)), '') "
                       f"FROM (SELECT * FROM {table.name} ORDER BY {order})")  # fmt: skip
            count, contents = conn.exec_driver_sql(sql).one()
            digest = hashlib.sha256(contents.encode("utf-8", "backslashreplace")).hexdigest()
            found[table.name] = (int(count), digest)
    return found


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


# -- the fork server ----------------------------------------------------------------------------------------
@dataclass
class Ran:
    args: list[str]
    rc: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class ForkedCli:
    """Client of the fork server (one request at a time; a lock makes it safe to share between threads)."""

    def __init__(self) -> None:
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile_inputs"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lock = threading.Lock()

    def run(
        self,
        args: list[str],
        env: dict[str, str],
        cwd: str,
        stdin: str = "",
        timeout: float = 30,
    ) -> Ran:
        request = {"args": args, "env": env, "cwd": cwd, "stdin": stdin, "timeout": timeout}
        with self.lock:
            assert self.process.stdin and self.process.stdout
            self.process.stdin.write(json.dumps(request, ensure_ascii=True) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the CLI fork server died")
        answer = json.loads(line)
        return Ran(args, answer["rc"], answer["stdout"], answer["stderr"], answer["timed_out"])

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def _child(request: dict[str, Any], out_path: str, err_path: str, in_path: str) -> None:
    """In the forked child: become `degreeflow ARGS` and never return."""
    try:
        os.setpgid(0, 0)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in (
            (0, in_path, os.O_RDONLY),
            (1, out_path, os.O_WRONLY | os.O_TRUNC),
            (2, err_path, os.O_WRONLY | os.O_TRUNC),
        ):
            handle = os.open(path, flags)
            os.dup2(handle, fd)
            os.close(handle)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.argv = ["degreeflow", *request["args"]]
        main_module = sys.modules["__main__"]
        main_module.__package__, main_module.__spec__ = None, None  # click names the program from argv[0]
        from degreeflow.cli import main

        code: Any = 0
        try:
            main()
        except SystemExit as stop:
            code = stop.code
        except BaseException:  # what the interpreter does with an uncaught exception
            sys.excepthook(*sys.exc_info())
            code = 1
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except BaseException:  # pragma: no cover - the harness itself failed
        os._exit(99)


def _serve() -> None:
    import importlib

    # Imported once, before forking: the CLI and what its commands and error messages import lazily.
    for name in ("degreeflow.cli", "degreeflow.pdf", "degreeflow.web.app", "typer.rich_utils", "rich.markdown",
                 "rich.traceback", "rich.panel", "rich.syntax", "rich._emoji_codes", "rich._unicode_data",
                 "cases.records", "cases.record_files", "openpyxl", "psycopg", "scheduler.calendar_file"):  # fmt: skip
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - an optional speed-up only
            pass

    work = Path(tempfile.mkdtemp(prefix="hostile-cli-"))
    out_path, err_path, in_path = (str(work / name) for name in ("out", "err", "in"))
    for line in sys.stdin:
        request = json.loads(line)
        Path(in_path).write_text(request.get("stdin", ""), encoding="utf-8")
        for path in (out_path, err_path):
            Path(path).write_bytes(b"")
        pid = os.fork()
        if pid == 0:
            _child(request, out_path, err_path, in_path)
        deadline = time.monotonic() + float(request.get("timeout", 30))
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                timed_out = True
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _, status = os.waitpid(pid, 0)
                break
            select_module.select([], [], [], 0.005)
        rc = os.waitstatus_to_exitcode(status)
        answer = {
            "rc": rc,
            "stdout": Path(out_path).read_bytes().decode("utf-8", "backslashreplace"),
            "stderr": Path(err_path).read_bytes().decode("utf-8", "backslashreplace"),
            "timed_out": timed_out,
        }
        sys.stdout.write(json.dumps(answer, ensure_ascii=True) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
