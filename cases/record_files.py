"""Reading and writing record files: CSV (UTF-8 or GB18030) and XLSX, with the Chinese column names of seed 003."""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from cases.degree_record import COLUMN, FIELDS, KEY_OF_COLUMN, Fields, Problem
from workflow import InvalidPayload


def read_rows(path: Path) -> list[Fields]:
    return list(iter_rows(path))


def iter_rows(path: Path) -> RecordStream:
    """Rows keyed by field (English key), read as a stream. Unknown columns are refused by name."""
    return RecordStream(path)


class RecordStream:
    """The rows of a record file, read as a stream when first iterated. `records.check_for_import` knows
    the type: it may read a large CSV file itself, in worker processes, rather than row by row."""

    def __init__(self, path: Path):
        self.path = path
        self._rows: Iterator[Fields] | None = None

    @property
    def started(self) -> bool:
        return self._rows is not None

    def __iter__(self) -> Iterator[Fields]:
        if self._rows is None:
            self._rows = _read(self.path)
        return self._rows

    def __next__(self) -> Fields:
        return next(iter(self))


def is_csv(path: Path) -> bool:
    return path.suffix.lower() not in (".xlsx", ".xlsm")


def _read(path: Path) -> Iterator[Fields]:
    if not path.is_file():
        raise InvalidPayload(f"文件 {path} 不存在", field="FILE", rule="file_exists")
    if not is_csv(path):
        rows = _xlsx_rows(path)
        keys = header_keys(path, next(rows, None))
        for row in rows:
            if any(str(v or "").strip() for v in row):
                yield Fields((key, _text(value)) for key, value in zip(keys, row, strict=False) if key)
        return
    with open_csv(path) as handle:
        records = csv_records(handle)
        yield from csv_fields(records, header_keys(path, next(records, None)))


def open_csv(path: Path) -> TextIO:
    """The CSV file opened as `csv_records` reads it (its encoding found first)."""
    return path.open(encoding=_encoding(path), newline="")


def csv_records(lines: Iterable[str]) -> Iterator[list[str]]:
    """The records of CSV text as `csv.reader` reads them (lines as a file opened with newline="" gives).

    A line without a quote or NUL is split on commas, which is what `csv.reader` does with it at a quarter
    of the cost; a record with a quote (quoted fields, doubled quotes, line breaks inside quotes) is read
    by `csv.reader` itself, taking as many lines as it needs."""
    lines = iter(lines)
    for line in lines:
        if '"' in line or "\0" in line:
            yield next(csv.reader(itertools.chain((line,), lines)))
        else:
            text = line.rstrip("\r\n")  # an unquoted field holds no line break: only the line's own
            yield text.split(",") if text else []


def header_keys(path: Path, first: list[Any] | None) -> list[str]:
    """The field keys of a file's header row; an empty file or an unknown column is refused."""
    if first is None:
        raise InvalidPayload(f"文件 {path.name} 为空", field="FILE", rule="file_empty")
    header = [str(h or "").strip().lstrip("\ufeff") for h in first]
    unknown = [h for h in header if h and h not in KEY_OF_COLUMN and h not in COLUMN]
    if unknown:
        raise InvalidPayload(
            f"文件 {path.name} 第 1 行：无法识别的列 {'、'.join(unknown)}（列名应为填报规则中的字段名，如 姓名、学位证书编号）",
            field="FILE",
            rule="unknown_columns",
        )
    return [KEY_OF_COLUMN.get(h, h) for h in header]


def csv_fields(records: Iterable[list[str]], keys: list[str]) -> Iterator[Fields]:
    """The non-blank CSV records as rows keyed by field (CSV cells are text already: only stripped)."""
    strip = str.strip
    if all(keys):
        for record in records:
            row = Fields(zip(keys, map(strip, record)))  # noqa: B905 - a short record has fewer fields
            if any(row.values()):
                yield row
        return
    for record in records:  # a column without a name is left out
        values = list(map(strip, record))
        if any(values):
            yield Fields((key, value) for key, value in zip(keys, values, strict=False) if key)


_ENCODINGS: dict[tuple[str, int, int], str] = {}


def _encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes as UTF-8, else GB18030 (read in chunks).
    Remembered for the file as it is (size and modification time), since an import reads it twice."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    found = _ENCODINGS.get(key)
    if found is None:
        if len(_ENCODINGS) > 64:
            _ENCODINGS.clear()
        found = _ENCODINGS[key] = _detect_encoding(path)
    return found


def _detect_encoding(path: Path) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if hasattr(value, "strftime"):
        return value.strftime("%Y%m%d")
    return str(value).strip()


def _xlsx_rows(path: Path) -> Iterator[list[Any]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield list(row)
    finally:
        workbook.close()


def write_error_report(path: Path, problems: Iterable[Problem]) -> Path:
    """An XLSX next to the checked file listing every problem: row, column, code, message."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("错误报告")
    sheet.append(["行", "字段", "错误代码", "说明"])
    for problem in problems:
        sheet.append([problem.row, COLUMN.get(problem.field, problem.field), problem.code, problem.message])
    target = report_path(path)
    workbook.save(target)
    return target


def report_path(path: Path) -> Path:
    """Where the error report of a checked file is written."""
    return path.with_name(f"{path.stem}.错误报告.xlsx")


def write_rows(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Export records with the Chinese column names (CSV in UTF-8 with BOM, or XLSX)."""
    columns = [key for key, _, _ in FIELDS]
    count = 0
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("学位授予信息")
        sheet.append([COLUMN[c] for c in columns] + ["状态"])
        for record in records:
            sheet.append([record["data"].get(c, "") for c in columns] + [record["status"]])
            count += 1
        workbook.save(path)
        return count
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([COLUMN[c] for c in columns] + ["状态"])
        for record in records:
            writer.writerow([record["data"].get(c, "") for c in columns] + [record["status"]])
            count += 1
    return count
