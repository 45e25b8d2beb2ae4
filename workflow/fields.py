"""Declarative payload rules: each names its field and says in Chinese what is wrong."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from workflow.errors import InvalidPayload

_DATE_RE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
# The dates a case may carry: births, conferrals (since 1981), decisions, all well inside this range. A date
# outside it is a typo (9999-12-31), and the deadlines counted from it could not be computed.
DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2100, 12, 31)
# Free text: a name, a number or a short reason by default; a reason typed as the step's note may be as long
# as a note.
TEXT_MAX = 500
NOTE_TEXT_MAX = 2000
# Control characters other than tab and line breaks (NUL cannot even be stored in PostgreSQL's JSONB).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_JSON_TYPES = {list: "列表", tuple: "列表", dict: "对象", bool: "布尔值", float: "小数"}


def parse_date(value: Any) -> date | None:
    """`YYYY-MM-DD` or `CCYYMMDD` (the record's own format) to a date; None if it is neither."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    match = _DATE_RE.match(value.strip())
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


@dataclass(frozen=True)
class FieldRule:
    """A payload field a step needs.

    kind: text | date | choice | list | int. `from_note`: the step's note may supply the value
    (a rejection's reasons are usually typed as the note). `items`: rules for each element of a list.
    `fresh`: the value must come with the step itself (a rejection's reason, not an earlier one).
    `check`: an extra validator returning a Chinese message when the value is wrong.
    `max_length`: the longest text accepted (default TEXT_MAX, or NOTE_TEXT_MAX when the note may supply it).
    `file_rows`: a list of degree records whose rows may come from a record file (CSV or XLSX with the Chinese
    column names of seed 003), as the web form offers it.
    A text field takes a string (an integer is taken as its digits); dates lie within DATE_MIN..DATE_MAX.
    """

    name: str
    label: str
    kind: str = "text"
    required: bool = True
    choices: tuple[str, ...] = ()
    items: tuple[FieldRule, ...] = ()
    min_items: int = 1
    from_note: bool = False
    fresh: bool = False  # must be given with this step (not taken from data the case already holds)
    check: Callable[[Any], str | None] | None = None
    hint: str = ""
    max_length: int | None = None
    file_rows: bool = False
    past: bool = False  # a date of something that has happened (a conferral, a decision): not after today

    @property
    def text_limit(self) -> int:
        if self.max_length is not None:
            return self.max_length
        return NOTE_TEXT_MAX if self.from_note else TEXT_MAX

    def validate(self, payload: Mapping[str, Any], prefix: str = "", today: date | None = None) -> Any:
        """Return the normalised value (or None if absent and optional); raise InvalidPayload naming the field."""
        where = f"{prefix}{self.name}"
        title = f"字段 {where}（{self.label}）"
        value = payload.get(self.name)
        if value is None or (isinstance(value, str) and not value.strip()) or value == []:
            if self.required:
                extra = f"，{self.hint}" if self.hint else ""
                raise InvalidPayload(f"{title}：必须填写{extra}", field=where, rule="required_field")
            return None
        if self.kind == "date":
            parsed = parse_date(value)
            if parsed is None:
                raise InvalidPayload(
                    f"{title}：日期格式应为 YYYY-MM-DD 或 YYYYMMDD，收到“{value}”",
                    field=where,
                    rule="date_format",
                )
            if not DATE_MIN <= parsed <= DATE_MAX:
                raise InvalidPayload(
                    f"{title}：日期须在 {DATE_MIN} 至 {DATE_MAX} 之间，收到“{parsed}”",
                    field=where,
                    rule="date_range",
                )
            if self.past and today is not None and parsed > today:
                raise InvalidPayload(
                    f"{title}：是已发生的日期，不能晚于今天（{today}，北京时间），收到“{parsed}”",
                    field=where,
                    rule="date_not_in_future",
                )
            value = parsed.isoformat()
        elif self.kind == "int":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise InvalidPayload(
                    f"{title}：应为整数，收到“{value}”", field=where, rule="integer"
                ) from None
        elif self.kind == "choice":
            if value not in self.choices:
                raise InvalidPayload(
                    f"{title}：取值须为 {'、'.join(self.choices)} 之一，收到“{value}”",
                    field=where,
                    rule="choice",
                )
        elif self.kind == "list":
            if not isinstance(value, list):
                raise InvalidPayload(f"{title}：应为列表", field=where, rule="list")
            if len(value) < self.min_items:
                raise InvalidPayload(f"{title}：至少需要 {self.min_items} 项", field=where, rule="min_items")
            if self.items:
                normalised = []
                for index, element in enumerate(value):
                    if not isinstance(element, Mapping):
                        raise InvalidPayload(
                            f"{title}：第 {index + 1} 项应为对象", field=where, rule="list_item"
                        )
                    row = dict(element)
                    for rule in self.items:
                        checked = rule.validate(row, prefix=f"{where}[{index}].", today=today)
                        if checked is not None:
                            row[rule.name] = checked
                    normalised.append(row)
                value = normalised
        else:
            value = self._text(value, title, where)
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise InvalidPayload(f"{title}：{problem}", field=where, rule=f"{self.name}_check")
        return value

    def _text(self, value: Any, title: str, where: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a number sent as a JSON number: its digits
        if not isinstance(value, str):
            kind = next((label for cls, label in _JSON_TYPES.items() if isinstance(value, cls)), "非文本")
            raise InvalidPayload(f"{title}：应为文本，收到{kind}", field=where, rule="text_type")
        value = value.strip()
        if len(value) > self.text_limit:
            raise InvalidPayload(
                f"{title}：不能超过 {self.text_limit} 个字符，收到 {len(value)} 个",
                field=where,
                rule="text_length",
            )
        if _CONTROL_RE.search(value):
            raise InvalidPayload(f"{title}：不能包含控制字符（如 NUL）", field=where, rule="text_control")
        return value


@dataclass(frozen=True)
class FieldSet:
    rules: tuple[FieldRule, ...] = field(default_factory=tuple)

    def validate(
        self,
        payload: dict[str, Any],
        note: str = "",
        step_payload: dict[str, Any] | None = None,
        today: date | None = None,
    ) -> dict[str, Any]:
        """Validate and normalise `payload` in place; returns the normalised values that were checked.

        `fresh` rules read `step_payload` (what this step brought) when it is given; `past` dates are checked
        against `today` (Beijing) when it is given."""
        checked: dict[str, Any] = {}
        for rule in self.rules:
            source = step_payload if rule.fresh and step_payload is not None else payload
            if rule.from_note and not source.get(rule.name) and note.strip():
                source[rule.name] = note.strip()
            value = rule.validate(source, today=today)
            if value is not None:
                payload[rule.name] = value
                checked[rule.name] = value
        return checked
