"""Checking a large CSV record file on every CPU: worker processes parse and check blocks of records while
the caller applies the rules across records (duplicates, numbers already filed, one conferral date, double
bachelor's pairs) to what they report, block by block in file order.

The result is the same list of problems, with the same rows, as checking the rows one by one
(`records.check_for_import`); tests/test_record_import.py compares the two. Memory stays bounded: at most
`2 * workers` blocks of about `BLOCK_CHARS` characters are in flight, and the workers send back only what
the rules across records need (certificate numbers, conferral dates, the double bachelor's keys).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from cases import record_files
from cases.degree_record import COLUMN, BatchChecker, Fields, Problem, check_fields

BLOCK_CHARS = 1 << 20  # characters of CSV text per block (about 2,700 records of 28 columns)
MIN_BYTES = 4 << 20  # smaller files are checked in the calling process: starting workers costs more


def workers() -> int:
    """Worker processes for a large file: `DEGREEFLOW_RECORD_WORKERS` (0 = check in the calling process),
    else one per CPU, at most 4; none on a single CPU."""
    configured = os.environ.get("DEGREEFLOW_RECORD_WORKERS", "").strip()
    if configured.isdigit():
        return int(configured)
    cpus = os.cpu_count() or 1
    return min(cpus, 4) if cpus > 1 else 0


def applies(stream: Any) -> bool:
    """Whether `check_file` should check these rows: a CSV file not yet read, large enough to be worth it."""
    if not isinstance(stream, record_files.RecordStream) or stream.started:
        return False
    path = stream.path
    try:
        large = path.is_file() and path.stat().st_size >= MIN_BYTES
    except OSError:
        return False
    return large and record_files.is_csv(path) and workers() > 0


def blocks(handle: Any, size: int = BLOCK_CHARS) -> Iterator[str]:
    """The CSV text after the header in blocks that each end where a record ends.

    A block without a quote ends at its last line break (an unquoted record never spans lines); a block
    with quotes is cut before its last record as `csv.reader` reads it (a quoted field may hold line
    breaks), and that record starts the next block."""
    carry = ""
    while chunk := handle.read(size):
        text = carry + chunk
        cut = text.rfind("\n") + 1
        if cut and text.find('"', 0, cut) >= 0:
            cut = _last_record_start(text[:cut])
        if cut:
            yield text[:cut]
        carry = text[cut:]
    if carry:
        yield carry


def _last_record_start(text: str) -> int:
    """Where the last record of `text` (whole lines) starts, as `csv.reader` reads it: it may be incomplete."""
    lines = list(io.StringIO(text, newline=""))
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    reader = csv.reader(lines)
    start = 0
    try:
        while True:
            before = reader.line_num
            next(reader)
            start = offsets[before]
    except (StopIteration, csv.Error):
        pass
    return start


def check_block(text: str, keys: list[str], org: str | None, prepare: bool = False) -> tuple[Any, ...]:
    """Run in a worker: `check_rows` of the records of one block of CSV text."""
    return check_rows(record_files.csv_fields(record_files.csv_records(io.StringIO(text, newline="")), keys), org,
                      prepare)  # fmt: skip


def check_rows(rows: Iterable[Mapping[str, str]], org: str | None, prepare: bool = False) -> tuple[Any, ...]:
    """Rows (keyed by field) checked one by one, numbered from 0. Returns (rows, problems, certificate numbers
    by row, conferral dates, bachelors) and, with `prepare`, the values `records.import_file` inserts for
    each row (`row_values`)."""
    problems: list[Problem] = []
    certs: list[str] = []
    dates: set[str] = set()
    bachelors: list[tuple[int, tuple[str, str], str, Any]] = []
    values: list[tuple[str, ...]] = []
    json_text = JsonText()
    index = -1
    for index, r in enumerate(rows):
        found = check_fields(r, index)
        if found:
            problems.extend(found)
        get = r.get
        unit_code = get("unit_code")
        if org and unit_code and unit_code != org:
            problems.append(Problem("unit_mismatch", "unit_code",
                                    f"{COLUMN['unit_code']}：应为导入单位 {org}，收到“{unit_code}”", index))  # fmt: skip
        certs.append(get("cert_no") or "")
        conferral = get("conferral_date")
        if conferral:
            dates.add(conferral)
        bachelor = BatchChecker.bachelor_entry(r)
        if bachelor is not None:
            bachelors.append((index, *bachelor))
        if prepare:
            values.append(row_values(r, json_text))
    return index + 1, problems, certs, dates, bachelors, values


def row_values(r: Mapping[str, str], json_text: JsonText) -> tuple[str, ...]:
    """What an INSERT of the row needs that varies by row: certificate number, unit code, name, ID number,
    degree type, conferral date (ISO 8601 text, as `date.isoformat` writes it, from the record's YYYYMMDD;
    a row with a problem is never inserted, so its date may be anything) and the row's JSON
    (`json.dumps(dict(r), ensure_ascii=False)`)."""
    cert = r.get("cert_no", "")
    get = r.get
    conferral = get("conferral_date", "")
    return (cert, get("unit_code") or cert[:5], get("name", ""), get("id_number", ""), get("degree_type", ""),
            f"{conferral[:4]}-{conferral[4:6]}-{conferral[6:]}", json_text(r))  # fmt: skip


class JsonText:
    """`json.dumps(dict(row), ensure_ascii=False)` for rows of text, from a template per set of keys when
    no value holds a character JSON escapes (a quote, a backslash, a control character)."""

    def __init__(self) -> None:
        self.keys: tuple[str, ...] | None = None
        self.template = ""

    def __call__(self, row: Mapping[str, Any]) -> str:
        keys = tuple(row)
        if keys != self.keys:
            self.keys = keys
            self.template = "{" + ", ".join(json.dumps(k, ensure_ascii=False).replace("%", "%%") + ': "%s"'
                                            for k in keys) + "}"  # fmt: skip
        if type(row) is Fields:  # text values only
            values = tuple(row.values())
            joined = "".join(values)
            if '"' not in joined and "\\" not in joined and joined.isprintable():
                return self.template % values
        return json.dumps(dict(row), ensure_ascii=False)


class _Pool:
    """Blocks checked by worker processes, results in submission order, at most `2 * size` in flight.
    While the oldest block is not ready, the calling process checks the next block itself (keeping at
    most `4 * size` results in all)."""

    def __init__(self, size: int):
        # fork is cheap and safe here (workers only compute); with other threads running, a fork could copy
        # a held lock, so then a fork server starts the workers instead.
        if os.name != "posix":
            method = "spawn"
        elif threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
            method = "fork"
        else:
            method = "forkserver"
        self.executor = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context(method))
        self.window = 2 * size
        self.pending: deque[Future[tuple[Any, ...]]] = deque()

    def results(
        self, tasks: Iterator[tuple[Callable[..., Any], tuple[Any, ...]]]
    ) -> Iterator[tuple[Any, ...]]:
        pending, more = self.pending, True
        while True:
            while (
                more and len(pending) < 2 * self.window and sum(not f.done() for f in pending) < self.window
            ):
                task = next(tasks, None)
                if task is None:
                    more = False
                else:
                    pending.append(self.executor.submit(task[0], *task[1]))
            if not pending:
                return
            if more and not pending[0].done() and len(pending) < 2 * self.window:
                task = next(tasks, None)
                if task is None:
                    more = False
                else:  # rather than wait: this block here, its result kept in order
                    local: Future[tuple[Any, ...]] = Future()
                    local.set_result(task[0](*task[1]))
                    pending.append(local)
                continue
            yield pending.popleft().result()

    def close(self) -> None:
        for future in self.pending:
            future.cancel()
        self.executor.shutdown(wait=True, cancel_futures=True)


def checked_blocks(
    stream: record_files.RecordStream, org: str | None, prepare: bool = False
) -> Iterator[tuple[Any, ...]]:
    """`check_rows` of each block of the file, in file order, computed by worker processes."""
    path = stream.path
    pool = _Pool(workers())
    try:
        with record_files.open_csv(path) as handle:
            records = record_files.csv_records(handle)
            keys = record_files.header_keys(path, next(records, None))
            del records  # the header is read; the rest is read in blocks
            yield from pool.results((check_block, (text, keys, org, prepare)) for text in blocks(handle))
    finally:
        pool.close()


def check_file(stream: record_files.RecordStream, org: str | None, checker: BatchChecker,
               filed: Callable[[list[tuple[str, int]]], None]) -> list[Problem]:  # fmt: skip
    """The per-row problems of the file (rows numbered as in the file, header = row 1) with the duplicate
    certificate numbers; `checker` keeps the batch state for `finish`; `filed` is given every (number, row)
    in order, to look up numbers already filed."""
    problems: list[Problem] = []
    for count, found, certs, dates, bachelors, _ in checked_blocks(stream, org):
        base = checker.row + 1  # the row number of the block's first record
        problems.extend(replace(p, row=p.row + base) for p in found)
        problems.extend(checker.add_numbers(certs, base))
        filed([(cert, base + i) for i, cert in enumerate(certs) if cert])
        checker.add_block(base, count, dates, bachelors)
    return problems
