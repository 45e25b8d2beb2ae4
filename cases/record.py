"""Fields of the degree record (学位授予信息) that cases name, and the rule sets chosen by dates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from workflow import FieldRule, InvalidPayload, parse_date

# Field key -> Chinese name (seed 002 art. 9, seed 003 part 4).
RECORD_FIELDS = {
    "name": "姓名",
    "name_pinyin": "姓名拼音",
    "gender": "性别",
    "birth_date": "出生日期",
    "ethnicity": "民族",
    "political_status": "政治面貌",
    "id_type": "证件类型",
    "id_number": "身份证件号码",
    "country": "国家或地区",
    "degree_type": "学位类别",
    "degree_name": "学位名称",
    "major": "专业名称",
    "major_code": "专业代码",
    "cert_no": "学位证书编号",
    "conferral_date": "获学位日期",
    "graduation_date": "毕业日期",
    "study_form": "学习方式",
    "thesis_title": "论文题目",
    "thesis_type": "论文类型",
    "supervisor": "导师",
    "photo": "电子照片",
}
_BY_LABEL = {label: key for key, label in RECORD_FIELDS.items()}

# Amendment (seed 000 annex 2 §2): these need the State Council office's approval after the province's.
AMENDMENT_KEY_FIELDS = frozenset({"name", "gender", "id_number", "degree_type"})
# Errata (seed 003 item 12): "学位类别、获学位日期等关键信息" — the "等" is read with seed 002 (art. 12(3), 18),
# which names 姓名、性别、身份证件号码、学位类别 as the key fields: all of them, and the conferral date, go to the province.
ERRATA_KEY_FIELDS = AMENDMENT_KEY_FIELDS | frozenset({"conferral_date"})

PLATFORM_2024 = date(2024, 6, 1)  # instant-filing platform: degrees conferred on or after this date
RULES_2020 = date(2020, 6, 29)  # 学位办〔2020〕8号 replaces the 2013 rules


def record_field_key(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value in RECORD_FIELDS:
        return value
    return _BY_LABEL.get(value)


def _check_field(value: Any) -> str | None:
    if record_field_key(value) is None:
        return f"“{value}”不是学位授予信息的字段（可用：{'、'.join(RECORD_FIELDS.values())}）"
    return None


CHANGE_ITEM = (
    FieldRule("field", "修改字段", check=_check_field),
    FieldRule("old_value", "原值", required=False),  # filled in from the registry when it holds the record
    FieldRule("new_value", "新值"),
    FieldRule("reason", "修改原因"),
)


def normalise_changes(payload: dict[str, Any]) -> None:
    """Accept one change written flat (field, old_value, new_value, reason) as a one-row `changes` list."""
    if "changes" not in payload and any(k in payload for k in ("field", "old_value", "new_value")):
        payload["changes"] = [
            {k: payload.pop(k) for k in ("field", "old_value", "new_value", "reason") if k in payload}
        ]


def changes_rule(label: str = "修改内容（表2：字段、原值、新值、原因）") -> FieldRule:
    return FieldRule("changes", label, kind="list", items=CHANGE_ITEM, check=_check_changes)


def _check_changes(changes: list[dict[str, Any]]) -> str | None:
    for index, change in enumerate(changes):
        if change.get("old_value") not in (None, "") and str(change["old_value"]) == str(change["new_value"]):
            return f"第 {index + 1} 项的新值与原值相同"
        change["field"] = record_field_key(change["field"])
    return None


def touches(changes: list[Mapping[str, Any]], keys: frozenset[str]) -> bool:
    return any(record_field_key(change.get("field")) in keys for change in changes)


def cert_no_of_unit(org_code: str, value: Any, field: str) -> None:
    """The grantor unit code is the first 5 digits of the certificate number."""
    text = str(value or "")
    if not text.startswith(org_code):
        raise InvalidPayload(
            f"字段 {field}（学位证书编号）：前5位应为学位授予单位代码 {org_code}，收到“{text}”",
            field=field,
            rule="cert_no_unit_code",
        )


def cert_year_problem(cert_no: Any, conferral: date | None) -> str | None:
    """Why a certificate number disagrees with the conferral year, or None.

    学位〔2015〕18号 (numbers of degrees conferred from 2016): unit code (5) + level (1) + conferral year (4) +
    sequence (6). Older numbers followed other schemes and are not checked."""
    text = str(cert_no or "").strip()
    if conferral is None or conferral.year < 2016 or len(text) != 16 or not text.isdigit():
        return None
    if text[6:10] != f"{conferral.year:04d}":
        return (
            f"第7-10位（授予年份）应与获学位日期 {conferral.isoformat()} 的年份 {conferral.year} 一致，"
            f"收到“{text[6:10]}”（学位〔2015〕18号）"
        )
    return None


def check_cert_year(cert_no: Any, conferral: date | None, field: str = "cert_no") -> None:
    problem = cert_year_problem(cert_no, conferral)
    if problem:
        raise InvalidPayload(f"字段 {field}（学位证书编号）：{problem}", field=field, rule="cert_no_year")


def own_certificate(ctx: Any) -> None:
    """The case's certificate (when it names one) was granted by the case's unit."""
    if ctx.payload.get("cert_no"):
        cert_no_of_unit(ctx.case.org_code, ctx.payload["cert_no"], "cert_no")
        check_cert_year(ctx.payload["cert_no"], parse_date(ctx.payload.get("conferral_date")))


def date_of(payload: Mapping[str, Any], key: str) -> date | None:
    return parse_date(payload.get(key))


def id_number_problem(value: Any) -> str | None:
    """Why a resident ID number (GB 11643) is wrong, or None: checked with python-stdnum."""
    from stdnum.cn import ric
    from stdnum.exceptions import (
        InvalidChecksum,
        InvalidComponent,
        InvalidFormat,
        InvalidLength,
        ValidationError,
    )

    try:
        ric.validate(str(value))
    except InvalidLength:
        return f"居民身份证号码应为18位，收到“{value}”（{len(str(value))}位）"
    except InvalidChecksum:
        return f"居民身份证号码校验位不正确（GB 11643），收到“{value}”"
    except InvalidComponent:
        return f"居民身份证号码中的出生日期或地区码无效，收到“{value}”"
    except (InvalidFormat, ValidationError):
        return f"居民身份证号码格式不正确（17位数字加校验位 0-9 或 X），收到“{value}”"
    return None
