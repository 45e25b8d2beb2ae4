"""Cases checked against the local degree registry (本地学位信息库) and against each other.

For the case types that act on a filed degree (amendment, errata, revocation, photo, authentication):

* when the registry holds the certificate, the original values a case states are filled in from the record
  and a claimed original that differs is refused with both values; a revoked record cannot be revoked again;
* a second open case of the same type for the same certificate is refused, naming the case already open;
* when the registry does not hold it (a unit's older records may not be loaded), the case is flagged
  (`REGISTRY_KEY` in the payload, shown as `MISSING_NOTICE` on its page, in lists and on the province's review);
  with the setting `require_registry_record` (DEGREEFLOW_REQUIRE_REGISTRY_RECORD) that is a refusal instead.

The guards run at opening and again whenever a step changes what identifies the case (the engine re-runs the
opening guards), and once more on the step that changes the record, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select

from cases import records
from cases.degree_record import normalise
from cases.record import RECORD_FIELDS, record_field_key
from db.models import Case
from workflow import FireContext, InvalidPayload, NotAllowedInState

CASES = Case.__table__

# Payload key the guards set (never accepted from a user: no step declares it): True when the registry holds
# the case's certificate, False when it does not.
REGISTRY_KEY = "registry_record"
MISSING_NOTICE = "本地学位信息库无此记录"
NOTHING_CHANGED = "本地学位信息库无此记录，未更新任何记录"
REQUIRE_SETTING = "require_registry_record"
# Set by the step that would change the record when the registry does not hold it: nothing was changed.
UNCHANGED_KEY = "registry_unchanged"


# Built once: building a statement per step costs more than SQLite's own look-up.
_OPEN_CASE_OF_NUMBER = (
    select(CASES.c.id)
    .where(
        CASES.c.type == bindparam("type"),
        CASES.c.reference == bindparam("reference"),
        CASES.c.closed_at.is_(None),
        CASES.c.id != bindparam("case_id"),
    )
    .order_by(CASES.c.id)
    .limit(1)
)


def record_of(ctx: FireContext, cert_no: Any) -> Any:
    """The registry's record as a check may rely on it (`records.registry_record`: a unit's working copy or
    unconfirmed import is not one), or None."""
    text = str(cert_no or "").strip()
    return records.registry_record(ctx.conn, text) if text else None


def notice_of(payload: Mapping[str, Any]) -> str:
    """The flag a case carries on its page and in lists (`cases.notice`)."""
    if payload.get(UNCHANGED_KEY):
        return NOTHING_CHANGED
    return MISSING_NOTICE if payload.get(REGISTRY_KEY) is False else ""


def _value(record: Any, field: str) -> str:
    data = normalise(dict(record.data or {}))
    value = data.get(field, "")
    if not value and field == "name":
        value = record.name
    if field.endswith("_date") and len(value) == 8 and value.isdigit():
        value = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return str(value or "").strip()


def _same(field: str, claimed: Any, held: str) -> bool:
    text = str(claimed or "").strip()
    if field.endswith("_date"):
        return text.replace("-", "") == held.replace("-", "")
    return text == held


def _missing(ctx: FireContext, cert_no: str, field: str = "cert_no") -> None:
    if ctx.options.get(REQUIRE_SETTING):
        raise InvalidPayload(
            f"字段 {field}（学位证书编号）：{MISSING_NOTICE}（{cert_no}）；本系统设置为须有备案记录才能办理"
            "（DEGREEFLOW_REQUIRE_REGISTRY_RECORD），请先导入本单位已备案的学位授予信息",
            field=field,
            rule="registry_record_required",
        )
    ctx.payload[REGISTRY_KEY] = False


def _refuse_differing(field: str, where: str, claimed: Any, held: str, cert_no: str) -> None:
    label = RECORD_FIELDS.get(field, field)
    raise InvalidPayload(
        f"字段 {where}（{label}）：与本地学位信息库中证书 {cert_no} 的记录不一致——填报“{claimed}”，"
        f"库中为“{held}”；请核对后按库中原值填写",
        field=where,
        rule="differs_from_registry",
        claimed=str(claimed),
        registry=held,
    )


def no_duplicate_open_case(ctx: FireContext) -> None:
    """One open case of a type per certificate: a second is refused with the first's number and link."""
    cert_no = str(ctx.payload.get("cert_no") or "").strip()
    if not cert_no:
        return
    row = ctx.conn.execute(
        _OPEN_CASE_OF_NUMBER, {"type": ctx.case.type, "reference": cert_no[:64], "case_id": ctx.case.id}
    ).first()
    if row is not None:
        raise InvalidPayload(
            f"字段 cert_no（学位证书编号）：证书 {cert_no} 已有未办结的同类案件 #{row.id}（/cases/{row.id}），"
            "请在该案件中继续办理，不要重复新建",
            field="cert_no",
            rule="duplicate_open_case",
            case_id=row.id,
            link=f"/cases/{row.id}",
        )


def _fill(ctx: FireContext, record: Any, fields: tuple[str, ...]) -> None:
    """Originals the case states: filled in from the record when absent, refused when they differ."""
    for field in fields:
        held = _value(record, field)
        claimed = ctx.payload.get(field)
        if claimed in (None, ""):
            if held:
                ctx.payload[field] = held
        elif held and not _same(field, claimed, held):
            _refuse_differing(field, field, claimed, held, record.cert_no)


def revocation_against_registry(ctx: FireContext) -> None:
    no_duplicate_open_case(ctx)
    cert_no = str(ctx.payload.get("cert_no") or "")
    record = record_of(ctx, cert_no)
    if record is None:
        _missing(ctx, cert_no)
        return
    if record.status == "revoked":
        raise InvalidPayload(
            f"字段 cert_no（学位证书编号）：证书 {cert_no} 的学位授予信息已撤销备案，不能再次撤销",
            field="cert_no",
            rule="already_revoked",
        )
    _fill(ctx, record, ("name", "conferral_date"))
    ctx.payload[REGISTRY_KEY] = True


def changes_against_registry(ctx: FireContext) -> None:
    """Amendment and errata: the original values of each change are the record's (filled in, or refused)."""
    no_duplicate_open_case(ctx)
    cert_no = str(ctx.payload.get("cert_no") or "")
    if not cert_no:
        return
    record = record_of(ctx, cert_no)
    if record is None:
        _missing(ctx, cert_no)
        _require_old_values(ctx)
        return
    if record.status == "revoked":
        raise InvalidPayload(
            f"字段 cert_no（学位证书编号）：证书 {cert_no} 的学位授予信息已撤销备案，不能修改",
            field="cert_no",
            rule="record_revoked",
        )
    _fill(ctx, record, ("name", "conferral_date"))
    for index, change in enumerate(ctx.payload.get("changes") or []):
        if not isinstance(change, dict):
            continue
        field = record_field_key(change.get("field")) or str(change.get("field"))
        held = _value(record, field)
        where = f"changes[{index}].old_value"
        if change.get("old_value") in (None, ""):
            change["old_value"] = held
        elif not _same(field, change["old_value"], held):
            _refuse_differing(field, where, change["old_value"], held, cert_no)
        if _same(field, change.get("new_value"), held):
            raise InvalidPayload(
                f"字段 changes[{index}].new_value（新值）：与库中现有值“{held}”相同，无需修改",
                field=f"changes[{index}].new_value",
                rule="no_change",
            )
    ctx.payload[REGISTRY_KEY] = True


def _require_old_values(ctx: FireContext) -> None:
    for index, change in enumerate(ctx.payload.get("changes") or []):
        if isinstance(change, dict) and change.get("old_value") in (None, ""):
            raise InvalidPayload(
                f"字段 changes[{index}].old_value（原值）：{MISSING_NOTICE}，须填写原值",
                field=f"changes[{index}].old_value",
                rule="required_field",
            )


def people_against_registry(ctx: FireContext) -> None:
    """Photo supplement (Form 4): each person's name is the record's; a missing record flags the case."""
    missing = False
    for index, person in enumerate(ctx.payload.get("people") or []):
        record = record_of(ctx, person.get("cert_no"))
        if record is None:
            if ctx.options.get(REQUIRE_SETTING):
                _missing(ctx, str(person.get("cert_no")), f"people[{index}].cert_no")
            missing = True
            continue
        held = _value(record, "name")
        if held and not _same("name", person.get("name"), held):
            _refuse_differing("name", f"people[{index}].name", person.get("name"), held, record.cert_no)
    if ctx.payload.get("people"):
        ctx.payload[REGISTRY_KEY] = not missing


def authentication_against_registry(ctx: FireContext) -> None:
    """Authentication compares the applicant's claims (it never fills them in); it only flags a missing
    record, and a second open request for the same certificate is refused."""
    no_duplicate_open_case(ctx)
    cert_no = str(ctx.payload.get("cert_no") or "")
    if record_of(ctx, cert_no) is None:
        _missing(ctx, cert_no)
    else:
        ctx.payload[REGISTRY_KEY] = True


def still_revocable(ctx: FireContext) -> None:
    """At `revoke`: the record has not been revoked meanwhile (by another case)."""
    record = record_of(ctx, ctx.payload.get("cert_no"))
    if record is not None and record.status == "revoked":
        raise NotAllowedInState(
            f"证书 {record.cert_no} 的学位授予信息已撤销备案（由其他案件办理），本案无需再撤销",
            rule="already_revoked",
        )
    record_changes(ctx)


def record_changes(ctx: FireContext) -> None:
    """On the step that changes the record (amendment/errata recorded, revocation revoked, photo recorded):
    when the registry holds none of the case's certificates, the case says so truthfully ("nothing was
    changed"), or, with the setting, the step is refused."""
    numbers = [ctx.payload.get("cert_no")] if ctx.payload.get("cert_no") else [
        person.get("cert_no") for person in ctx.payload.get("people") or [] if isinstance(person, dict)
    ]
    if any(record_of(ctx, number) is not None for number in numbers):
        return
    _missing(ctx, str(numbers[0] if numbers else ""))
    ctx.payload[UNCHANGED_KEY] = True
