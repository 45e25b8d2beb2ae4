"""Reading an administrator's calendar file for a new year (CSV or YAML), with validation.

CSV: a header `date,working,name` and one line per date. YAML: a list of mappings with the same keys, or a
mapping `{year: 2027, days: [...]}`. `working` accepts true/false, 1/0, 是/否, 上班/休息, 工作日/休息日.
Every date of the year must appear exactly once; a weekend marked working is a make-up working day (调休上班)
and a weekday marked non-working is a holiday: both need a name.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from scheduler.calendar import MAKE_UP, WEEKEND, days_of_year

TRUE = {"true", "1", "yes", "y", "是", "上班", "工作日", "working"}
FALSE = {"false", "0", "no", "n", "否", "休息", "休息日", "假日", "holiday", "off"}


class CalendarFileError(ValueError):
    """A calendar file that cannot be loaded; the message (Chinese) names the line and the field."""

    code = "invalid_calendar"

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "rule": "calendar_file", "message": self.message, "field": self.field}


def read_calendar_file(path: Path) -> tuple[int, list[tuple[date, bool, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CalendarFileError(f"无法读取日历文件 {path}：{error.strerror}") from None
    except UnicodeDecodeError as error:
        raise CalendarFileError(
            f"日历文件 {path} 不是 UTF-8 编码的文本（第 {error.start + 1} 个字节无法解码），请另存为 UTF-8 的 CSV 或 YAML"
        ) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        entries = _yaml_entries(text)
    else:
        entries = list(csv.DictReader(io.StringIO(text)))
        entries = [{**row, "_line": index + 2} for index, row in enumerate(entries)]
    return validate_entries(entries)


def _yaml_entries(text: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CalendarFileError(f"日历文件不是合法的 YAML：{error}") from None
    if isinstance(data, dict):
        data = data.get("days")
    if not isinstance(data, list):
        raise CalendarFileError("YAML 日历文件应为日期列表，或包含 days 列表的映射")
    return [
        {**row, "_line": index + 1} if isinstance(row, dict) else {"_line": index + 1}
        for index, row in enumerate(data)
    ]


def _parse_working(value: Any, line: int) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise CalendarFileError(
        f"第 {line} 行 字段 working：应为 true/false（或 上班/休息），收到“{value}”",
        line=line,
        field="working",
    )


def validate_entries(entries: list[dict[str, Any]]) -> tuple[int, list[tuple[date, bool, str]]]:
    if not entries:
        raise CalendarFileError("日历文件为空")
    seen: dict[date, tuple[bool, str]] = {}
    for entry in entries:
        line = entry.get("_line", 0)
        raw = entry.get("date")
        try:
            day = raw if isinstance(raw, date) else date.fromisoformat(str(raw).strip())
        except ValueError:
            raise CalendarFileError(
                f"第 {line} 行 字段 date：日期格式应为 YYYY-MM-DD，收到“{raw}”", line=line, field="date"
            ) from None
        if day in seen:
            raise CalendarFileError(f"第 {line} 行 字段 date：{day} 重复出现", line=line, field="date")
        working = _parse_working(entry.get("working"), line)
        name = str(entry.get("name") or "").strip()
        weekend = day.weekday() >= 5
        if working and weekend and not name:
            name = MAKE_UP
        if not working and not weekend and not name:
            raise CalendarFileError(
                f"第 {line} 行 字段 name：{day} 是周一至周五却标为休息，须写明节日名称（如 春节）",
                line=line,
                field="name",
            )
        if not working and weekend and not name:
            name = WEEKEND
        seen[day] = (working, name)
    years = {day.year for day in seen}
    if len(years) != 1:
        raise CalendarFileError(f"一个日历文件只能包含一个年份，收到 {sorted(years)}", field="date")
    (year,) = years
    missing = [day for day in days_of_year(year) if day not in seen]
    if missing:
        shown = "、".join(str(day) for day in missing[:5]) + (" 等" if len(missing) > 5 else "")
        raise CalendarFileError(
            f"{year} 年缺少 {len(missing)} 天：{shown}（每一天都须列出且只列一次）", field="date"
        )
    return year, [(day, *seen[day]) for day in sorted(seen)]


def template(year: int) -> str:
    """A CSV for the year with weekends as rest days, for the administrator to fill in from the State Council's notice."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "working", "name"])
    for day in days_of_year(year):
        weekend = day.weekday() >= 5
        writer.writerow([day.isoformat(), "false" if weekend else "true", WEEKEND if weekend else ""])
    return out.getvalue()
