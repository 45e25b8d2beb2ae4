"""Declarative payload rules: each names its field and says in Chinese what is wrong."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from workflow.errors import InvalidPayload

_DATE_RE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


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

    def validate(self, payload: Mapping[str, Any], prefix: str = "") -> Any:
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
                        checked = rule.validate(row, prefix=f"{where}[{index}].")
                        if checked is not None:
                            row[rule.name] = checked
                    normalised.append(row)
                value = normalised
        elif not isinstance(value, str):
            value = str(value)
        else:
            value = value.strip()
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise InvalidPayload(f"{title}：{problem}", field=where, rule=f"{self.name}_check")
        return value


@dataclass(frozen=True)
class FieldSet:
    rules: tuple[FieldRule, ...] = field(default_factory=tuple)

    def validate(
        self, payload: dict[str, Any], note: str = "", step_payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Validate and normalise `payload` in place; returns the normalised values that were checked.

        `fresh` rules read `step_payload` (what this step brought) when it is given."""
        checked: dict[str, Any] = {}
        for rule in self.rules:
            source = step_payload if rule.fresh and step_payload is not None else payload
            if rule.from_note and not source.get(rule.name) and note.strip():
                source[rule.name] = note.strip()
            value = rule.validate(source)
            if value is not None:
                payload[rule.name] = value
                checked[rule.name] = value
        return checked
