"""HTML forms generated from the workflow's field rules, and the way back from a submitted form to a payload.

Input names follow the error's `field` notation (`cert_no`, `records[0].name`), so a refusal from the domain
lands next to the input it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow import FieldRule

# Form keys the web layer uses itself; never part of a payload.
RESERVED = frozenset({"csrf_token", "note", "version", "org", "authorization_code"})
MAX_ROWS = 500
_ITEM_KEY = re.compile(r"^([a-z_][a-z0-9_]*)\[(\d{1,4})\]\.([a-z_][a-z0-9_]*)$")
HTML_TYPES = {"date": "date", "int": "number"}
FILE_SUFFIX = "__file"  # `data__file`: the record file of the list field `data`


@dataclass
class FormField:
    name: str
    label: str
    kind: str
    required: bool
    choices: tuple[str, ...] = ()
    hint: str = ""
    items: list[FormField] = field(default_factory=list)
    rows: int = 1  # list fields: how many rows to show at first
    # A list of degree records that may come from a CSV or XLSX file (FieldRule.file_rows).
    upload: bool = False

    @property
    def file_input(self) -> str:
        """The name of the file input of an `upload` field."""
        return f"{self.name}{FILE_SUFFIX}"

    @property
    def input_type(self) -> str:
        return HTML_TYPES.get(self.kind, "text")


def form_fields(rules: Iterable[FieldRule], *, skip: Iterable[str] = ()) -> list[FormField]:
    skipped = set(skip)
    out = []
    for rule in rules:
        if rule.name in skipped or rule.name in RESERVED:
            continue
        items = [FormField(i.name, i.label, i.kind, i.required, i.choices, i.hint) for i in rule.items]
        out.append(
            FormField(
                rule.name,
                rule.label,
                rule.kind,
                rule.required and not rule.from_note,
                rule.choices,
                rule.hint,
                items,
                rows=max(rule.min_items, 1) if rule.kind == "list" else 1,
                upload=rule.file_rows,
            )
        )
    return out


def payload_from_form(form: Mapping[str, Any], fields: list[FormField]) -> dict[str, Any]:
    """The payload a submitted form stands for: empty inputs are left out, list rows with no value dropped;
    a key that is no input of the form is kept, for the step to refuse."""
    payload: dict[str, Any] = {}
    by_name = {f.name: f for f in fields}
    rows: dict[str, dict[int, dict[str, str]]] = {}
    for key, raw in form.items():
        if key in RESERVED or not isinstance(raw, str):
            continue
        value = raw.strip()
        match = _ITEM_KEY.match(key)
        if match:
            name, index, sub = match[1], int(match[2]), match[3]
            spec = by_name.get(name)
            if spec is None or index >= MAX_ROWS or sub not in {i.name for i in spec.items}:
                continue
            rows.setdefault(name, {}).setdefault(index, {})[sub] = value
            continue
        spec = by_name.get(key)
        if spec is None:
            # Not an input of this step's form: passed on as sent, so the step refuses it by name (a step's
            # field rules are its whole contract; nothing is dropped or stored silently).
            if value and not key.endswith(FILE_SUFFIX):
                payload[key] = value
            continue
        if not value:
            continue
        if spec.kind == "list" and not spec.items:
            payload[key] = [line.strip() for line in value.splitlines() if line.strip()][:MAX_ROWS]
        else:
            payload[key] = value
    for name, indexed in rows.items():
        items = [
            {k: v for k, v in row.items() if v}
            for _, row in sorted(indexed.items())
            if any(v for v in row.values())
        ]
        if items:
            payload[name] = items
    return payload


def values_for_form(payload: Mapping[str, Any], fields: list[FormField]) -> dict[str, str]:
    """Flatten a payload into input values (to show a form again with what the user typed)."""
    values: dict[str, str] = {}
    for spec in fields:
        value = payload.get(spec.name)
        if value is None:
            continue
        if spec.kind == "list" and spec.items and isinstance(value, list):
            for index, row in enumerate(value):
                if isinstance(row, Mapping):
                    for sub in spec.items:
                        if row.get(sub.name) is not None:
                            values[f"{spec.name}[{index}].{sub.name}"] = str(row[sub.name])
            spec.rows = max(spec.rows, len(value))
        elif spec.kind == "list" and isinstance(value, list):
            values[spec.name] = "\n".join(str(v) for v in value)
        else:
            values[spec.name] = str(value)
    return values
