"""Reading and writing record files: CSV (UTF-8 or GB18030) and XLSX, with the Chinese column names of seed 003."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cases.degree_record import COLUMN, FIELDS, KEY_OF_COLUMN, Problem
from workflow import InvalidPayload


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows keyed by field (English key). Unknown columns are refused by name."""
    if not path.is_file():
        raise InvalidPayload(f"文件 {path} 不存在", field="FILE", rule="file_exists")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        rows = list(_xlsx_rows(path))
    else:
        rows = list(csv.reader(io.StringIO(_decode(path.read_bytes()))))
    if not rows:
        raise InvalidPayload(f"文件 {path.name} 为空", field="FILE", rule="file_empty")
    header = [str(h or "").strip() for h in rows[0]]
    unknown = [h for h in header if h and h not in KEY_OF_COLUMN and h not in COLUMN]
    if unknown:
        raise InvalidPayload(
            f"文件 {path.name} 第 1 行：无法识别的列 {'、'.join(unknown)}（列名应为填报规则中的字段名，如 姓名、学位证书编号）",
            field="FILE",
            rule="unknown_columns",
        )
    keys = [KEY_OF_COLUMN.get(h, h) for h in header]
    records = []
    plain = not path.suffix.lower().startswith(".xls")  # CSV cells are text already
    for row in rows[1:]:
        if plain:
            values = [value.strip() for value in row]
            if any(values):
                records.append({key: value for key, value in zip(keys, values, strict=False) if key})
        elif any(str(v or "").strip() for v in row):
            records.append({key: _text(value) for key, value in zip(keys, row, strict=False) if key})
    return records


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidPayload("文件编码应为 UTF-8 或 GB18030", field="FILE", rule="encoding")  # pragma: no cover


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
    target = path.with_name(f"{path.stem}.错误报告.xlsx")
    workbook.save(target)
    return target


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
