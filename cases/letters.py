"""Official letters and forms: what each document says (a dataclass per kind), when it is issued, its number.

Documents are issued inside the transition that needs them (one transaction: the step, its event, the
document number and the document row). An issued document is immutable: its content (the context below) is
stored with its number, the SHA-256 of kind + number + content + template, and the event it belongs to.
The HTML comes from Jinja templates in `templates/letters/` (autoescape, StrictUndefined); turning HTML into
PDF is the edge's job (degreeflow.pdf), so this module needs no PDF library.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
from sqlalchemy import bindparam, insert, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from cases import attachments, registry_checks
from cases.record import RECORD_FIELDS
from cases.vocabulary import CENTER, NATIONAL
from db.clock import SHANGHAI
from db.models import DocSequence, Document, Organisation
from db.precompiled import Precompiled
from workflow import FireContext, Step, parse_date
from workflow.audit import canonical_json

ORGS = Organisation.__table__
DOCS = Document.__table__
SEQS = DocSequence.__table__
TEMPLATES = Path(
    os.environ.get("DEGREEFLOW_TEMPLATES_DIR")
    or Path(__file__).resolve().parent.parent / "templates" / "letters"
)


def chinese_date(day: date) -> str:
    """GB/T 9704-2012: Arabic numerals, no leading zeros: 2026年11月21日."""
    return f"{day.year}年{day.month}月{day.day}日"


def doc_number(organ_code: str, year: int, seq: int) -> str:
    return f"{organ_code}〔{year}〕{seq}号"


# -- contexts: one dataclass per document kind; every field is printed by its template -----------------------
@dataclass(frozen=True)
class Letter:
    """The parts of every official letter (GB/T 9704-2012)."""

    organ_mark: str  # 发文机关标志 (red)
    number: str  # 发文字号, e.g. 渝学位办〔2026〕12号
    title: str
    recipient: str  # 主送机关
    signer: str  # 发文机关署名
    date_text: str  # 成文日期, 2026年11月21日
    copy_to: tuple[str, ...]  # 抄送机关
    printer: str  # 印发机关
    print_date: str  # 印发日期
    attachments: tuple[str, ...]  # 附件说明
    chair_signature: bool  # space for the degree committee chair's signature (the rules ask for it)
    # Said when the local registry does not hold the case's certificate: what the letter states was not checked.
    registry_note: str


@dataclass(frozen=True)
class SupplementApplication(Letter):
    """补报申请 + 表1 申请补报学位获得者名单 (seed 000 annex 2 §1)."""

    unit_name: str
    omission_reason: str
    resolution_no: str
    records: tuple[dict[str, str], ...]  # name, cert_no, degree_type, major, conferral_date


@dataclass(frozen=True)
class AmendmentApplication(Letter):
    """修改申请 + 表2 申请修改学位备案信息情况表: field, old value, new value, reason, proofs."""

    unit_name: str
    holder_name: str
    cert_no: str
    changes: tuple[dict[str, str], ...]  # field_label, old_value, new_value, reason
    proofs: tuple[str, ...]


@dataclass(frozen=True)
class ErrataApplication(Letter):
    """关键信息勘误申请 (seed 003 item 12)."""

    unit_name: str
    holder_name: str
    cert_no: str
    changes: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class RevocationReport(Letter):
    """撤销学位报告 + 表3 申请撤销学位备案信息名单."""

    unit_name: str
    rule_set: str
    holder_name: str
    cert_no: str
    conferral_date: str
    decision_date: str
    resolution_no: str
    reason: str


@dataclass(frozen=True)
class PhotoLetter(Letter):
    """照片补报函 + 表4 补报电子照片的学位获得者名单 (header 学年度 / 学位授予单位 / 类别 / 补报数, a grid of cells)."""

    unit_name: str
    academic_year: str
    category: str
    people: tuple[dict[str, str], ...]  # name, major, cert_no, serial_no


@dataclass(frozen=True)
class ProvinceDecision(Letter):
    """省级批复（同意）或复函（不同意，附理由）; the unit is the main recipient."""

    case_label: str
    application_number: str
    approved: bool
    reasons: str
    subject: str  # what was applied for, e.g. 补报 2 名学位获得者的学位授予信息


@dataclass(frozen=True)
class ProvinceFiling(Letter):
    """省级报国务院学位委员会办公室的备案函，抄送学位中心."""

    unit_name: str
    case_label: str
    application_number: str
    count: int
    compared: tuple[str, ...] = ()  # Form 1 columns the software compared with the data and found equal


@dataclass(frozen=True)
class VerificationFeedback(Letter):
    """学位信息核查反馈表 (seed 001): the Center asks the unit to verify a degree."""

    unit_name: str
    request_no: str
    applicant_name: str
    cert_no: str
    id_number: str
    conferral_date: str
    reply_by: str
    results: tuple[str, ...]
    dispute_reason: str
    differences: tuple[str, ...]  # fields where the request differs from the filed record


@dataclass(frozen=True)
class AuthenticationReport(Letter):
    """电子认证报告 (学位认证)."""

    unit_name: str
    holder_name: str
    cert_no: str
    id_number: str
    conferral_date: str
    basis: str  # how the Center established it: comparison with the database or the unit's verification
    conclusion: str


@dataclass(frozen=True)
class DocumentKind:
    name: str
    label: str
    template: str
    context: type[Letter]
    issuer: str  # unit | province | center


KINDS: dict[str, DocumentKind] = {
    k.name: k
    for k in (
        DocumentKind("supplement_application", "补报申请及表1", "supplement_application.html", SupplementApplication, "unit"),
        DocumentKind("amendment_application", "修改申请及表2", "amendment_application.html", AmendmentApplication, "unit"),
        DocumentKind("errata_application", "关键信息勘误申请", "errata_application.html", ErrataApplication, "unit"),
        DocumentKind("revocation_report", "撤销学位报告及表3", "revocation_report.html", RevocationReport, "unit"),
        DocumentKind("photo_letter", "照片补报函及表4", "photo_letter.html", PhotoLetter, "unit"),
        DocumentKind("province_approval", "省级批复（同意）", "province_decision.html", ProvinceDecision, "province"),
        DocumentKind("province_rejection", "省级复函（不同意）", "province_decision.html", ProvinceDecision, "province"),
        DocumentKind("province_filing", "省级备案函", "province_filing.html", ProvinceFiling, "province"),
        DocumentKind("verification_feedback", "学位信息核查反馈表", "verification_feedback.html", VerificationFeedback, "center"),
        DocumentKind("authentication_report", "电子认证报告", "authentication_report.html", AuthenticationReport, "center"),
    )
}  # fmt: skip

# (case type, state left, trigger, state reached) -> documents issued by that step. The state left tells the
# province's decisions apart from the State Council office's on the same trigger (an amendment's approve/reject).
ISSUE_ON: dict[tuple[str, str, str, str], tuple[str, ...]] = {
    ("supplement", "draft", "submit", "applied"): ("supplement_application",),
    ("supplement", "applied", "approve", "data_entry"): ("province_approval",),
    ("supplement", "applied", "reject", "rejected"): ("province_rejection",),
    ("supplement", "data_review", "accept", "province_filed"): ("province_filing",),
    ("amendment", "draft", "submit", "applied"): ("amendment_application",),
    ("amendment", "applied", "approve", "approved"): ("province_approval",),
    ("amendment", "applied", "approve", "national_review"): ("province_approval",),
    ("amendment", "applied", "reject", "rejected"): ("province_rejection",),
    ("errata", "draft", "submit", "province_review"): ("errata_application",),
    ("errata", "province_review", "approve", "recorded"): ("province_approval",),
    ("errata", "province_review", "reject", "rejected"): ("province_rejection",),
    ("revocation", "unit_check", "verify", "reported"): ("revocation_report",),
    ("photo", "draft", "submit", "filed"): ("photo_letter",),
    ("authentication", "comparing", "send_to_unit", "verification"): ("verification_feedback",),
    ("authentication", "reported", "dispute", "verification"): ("verification_feedback",),
    ("authentication", "reviewing", "issue_report", "reported"): ("authentication_report",),
    ("authentication", "comparing", "match", "reported"): ("authentication_report",),
    # A report corrected after a spot check (seed 001 art. 15) is issued again, numbered, with the new result.
    ("spot_check", "reviewing", "correct", "corrected"): ("authentication_report",),
}

CASE_SUBJECTS = {
    "supplement": "补报学位授予信息",
    "amendment": "修改学位授予信息",
    "errata": "勘误学位授予信息关键字段",
    "revocation": "撤销学位授予信息备案",
    "photo": "补报学位获得者电子照片",
    "authentication": "学位认证",
    "spot_check": "学位认证报告抽查",
}


# -- templates ----------------------------------------------------------------------------------------------
@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["field_label"] = lambda key: RECORD_FIELDS.get(key, key)
    return env


@cache
def template_sha256(kind: str) -> str:
    """The hash of a kind's template and the shared layout it extends (what the printed form depends on)."""
    digest = hashlib.sha256()
    for name in (KINDS[kind].template, "base.html", "letters.css"):
        digest.update((TEMPLATES / name).read_bytes())
    return digest.hexdigest()


def stylesheet() -> str:
    return (TEMPLATES / "letters.css").read_text(encoding="utf-8")


def render_html(kind: str, context: Mapping[str, Any], *, inline_css: bool = False) -> str:
    """The HTML of a document; `context` is the dataclass's fields (as stored).

    The PDF renderer applies `letters.css` itself (parsed once per process); `inline_css=True` embeds it, for
    an HTML file that stands alone."""
    spec = KINDS[kind]
    fields = {f.name for f in dataclasses.fields(spec.context)}
    missing = fields - set(context)
    if missing:
        raise ValueError(f"{kind}: context lacks {sorted(missing)}")
    css = stylesheet() if inline_css else ""
    return (
        environment()
        .get_template(spec.template)
        .render(**{k: context[k] for k in fields}, kind=kind, css=css)
    )


def document_hash(kind: str, number: str, context: Mapping[str, Any], template_hash: str) -> str:
    body = canonical_json({"kind": kind, "number": number, "context": context, "template": template_hash})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


# -- building contexts from a case --------------------------------------------------------------------------
@dataclass
class Parties:
    unit: Any
    province: Any
    national: Any
    center: Any

    def organ(self, level: str) -> Any:
        return {
            "unit": self.unit,
            "province": self.province,
            "national": self.national,
            "center": self.center,
        }[level]


# Issuing runs inside transitions: its statements are built once (see db.precompiled).
_ORG_FIELDS = ("id", "code", "name", "kind", "parent_id", "organ_code")
_PARENT = ORGS.alias("parent")
_UNIT_AND_PROVINCE = Precompiled(
    select(*(ORGS.c[f] for f in _ORG_FIELDS), *(_PARENT.c[f].label(f"p_{f}") for f in _ORG_FIELDS))
    .select_from(ORGS.outerjoin(_PARENT, ORGS.c.parent_id == _PARENT.c.id))
    .where(ORGS.c.id == bindparam("w_unit"))
)
_NATIONAL_LEVELS = Precompiled(
    select(*(ORGS.c[f] for f in _ORG_FIELDS))
    .where(ORGS.c.kind.in_([literal_column(f"'{NATIONAL}'"), literal_column(f"'{CENTER}'")]))
    .order_by(ORGS.c.kind, ORGS.c.id)
)
_EARLIER = Precompiled(
    select(DOCS.c.kind, DOCS.c.number).where(DOCS.c.case_id == bindparam("w_case")).order_by(DOCS.c.id)
)
_DOC_COLUMNS = ("case_id", "event_id", "org_id", "kind", "title", "year", "seq", "number", "context",
                "template_sha256", "sha256", "issued_at", "issued_by", "replaces_id")  # fmt: skip
_INSERT_DOC = Precompiled(
    insert(DOCS)
    .values({c: bindparam(f"v_{c}", type_=DOCS.c[c].type) for c in _DOC_COLUMNS})
    .returning(DOCS.c.id),
    returning=(DOCS.c.id,),
)
_NEXT_NUMBER = {
    name: Precompiled(
        dialect.insert(SEQS)
        .values(org_id=bindparam("v_org"), year=bindparam("v_year"), last=bindparam("v_first"))
        .on_conflict_do_update(
            index_elements=["org_id", "year"], set_={"last": SEQS.c.last + literal_column("1")}
        )
        .returning(SEQS.c.last),
        returning=(SEQS.c.last,),
    )
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
# Kinds whose text cites documents issued earlier on the case.
_CITES_EARLIER = {"province_approval", "province_rejection", "province_filing"}


def _parties(conn: Connection, unit_id: int) -> Parties:
    row = _UNIT_AND_PROVINCE.first(conn, {"w_unit": unit_id})
    if row is None:
        raise LookupError(f"organisation {unit_id} not found")
    unit = SimpleNamespace(**dict(zip(_ORG_FIELDS, row[: len(_ORG_FIELDS)], strict=True)))
    province_values = row[len(_ORG_FIELDS) :]
    province = (
        SimpleNamespace(**dict(zip(_ORG_FIELDS, province_values, strict=True)))
        if province_values[0]
        else None
    )
    found: dict[str, Any] = {}
    for values in _NATIONAL_LEVELS.all(conn, {}):
        org = SimpleNamespace(**dict(zip(_ORG_FIELDS, values, strict=True)))
        found.setdefault(org.kind, org)
    return Parties(unit, province, found.get(NATIONAL), found.get(CENTER))


def _name(org: Any, fallback: str) -> str:
    return org.name if org is not None else fallback


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _date_text(value: Any) -> str:
    parsed = parse_date(value)
    return chinese_date(parsed) if parsed else _text(value)


def _rows(items: Any, keys: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    return tuple({key: _text(item.get(key)) for key in keys} for item in items or ())


def _registry_note(payload: Mapping[str, Any]) -> str:
    if not registry_checks.notice_of(payload):
        return ""
    unchanged = "，本次未更新任何记录" if payload.get(registry_checks.UNCHANGED_KEY) else ""
    return f"本地学位信息库无此学位证书的备案记录，上述学位信息由学位授予单位填报，未经系统核对{unchanged}。"


def build_context(
    kind: str,
    *,
    case_type: str,
    rule_set: str,
    payload: Mapping[str, Any],
    parties: Parties,
    number: str,
    today: date,
    earlier: Mapping[str, str],
    attached: Mapping[str, int] | None = None,
) -> Letter:
    """The content of a document about a case. `earlier`: numbers of documents issued before, by kind;
    `attached`: the case's uploaded files by purpose (the attachment list names what was actually attached)."""
    enclosed = attachments.letter_items(kind, attached or {})
    spec = KINDS[kind]
    unit, province = parties.unit, parties.province
    national_name = _name(parties.national, "国务院学位委员会办公室")
    center_name = _name(parties.center, "教育部学位与研究生教育发展中心")
    province_name = _name(province, "省级学位委员会办公室")
    issuer = parties.organ(spec.issuer)
    common: dict[str, Any] = {
        "organ_mark": _name(issuer, "") + ("文件" if spec.issuer != "center" else ""),
        "number": number,
        "signer": _name(issuer, ""),
        "date_text": chinese_date(today),
        "printer": _name(issuer, "") + ("办公室" if spec.issuer == "unit" else ""),
        "print_date": chinese_date(today) + "印发",
        "chair_signature": spec.issuer == "unit",
        "copy_to": (),
        "attachments": (),
        "registry_note": _registry_note(payload),
    }
    if spec.issuer == "unit":
        common["organ_mark"] = f"{unit.name}学位评定委员会"
        common["signer"] = f"{unit.name}学位评定委员会"
        common["printer"] = f"{unit.name}学位评定委员会办公室"
    subject = CASE_SUBJECTS[case_type]
    if kind == "supplement_application":
        records = _rows(payload.get("records"), ("name", "cert_no", "degree_type", "major", "conferral_date"))
        return SupplementApplication(
            **common | {"title": "关于申请补报学位授予信息的请示", "recipient": province_name,
                        "attachments": ("申请补报学位获得者名单", *enclosed)},
            unit_name=unit.name,
            omission_reason=_text(payload.get("omission_reason")),
            resolution_no=_text(payload.get("resolution_no")),
            records=records,
        )  # fmt: skip
    if kind in ("amendment_application", "errata_application"):
        changes = tuple(
            {"field_label": RECORD_FIELDS.get(_text(c.get("field")), _text(c.get("field"))),
             "old_value": _text(c.get("old_value")), "new_value": _text(c.get("new_value")),
             "reason": _text(c.get("reason"))}
            for c in payload.get("changes") or ()
        )  # fmt: skip
        holder = _text(payload.get("name") or payload.get("holder_name"))
        if kind == "amendment_application":
            return AmendmentApplication(
                **common | {"title": "关于申请修改学位授予信息的请示", "recipient": province_name,
                            "attachments": ("申请修改学位备案信息情况表", *enclosed)},
                unit_name=unit.name, holder_name=holder, cert_no=_text(payload.get("cert_no")),
                changes=changes, proofs=tuple(_text(p) for p in payload.get("proofs") or ()),
            )  # fmt: skip
        return ErrataApplication(
            **common | {"title": "关于申请勘误学位授予信息关键字段的请示", "recipient": province_name,
                        "attachments": ("勘误内容",)},
            unit_name=unit.name, holder_name=holder, cert_no=_text(payload.get("cert_no")), changes=changes,
        )  # fmt: skip
    if kind == "revocation_report":
        return RevocationReport(
            **common | {"title": f"关于撤销{_text(payload.get('name'))}学位的报告",
                        "recipient": f"{national_name}、{province_name}", "copy_to": (center_name,),
                        "attachments": ("申请撤销学位备案信息名单", *enclosed)},
            unit_name=unit.name, rule_set=rule_set, holder_name=_text(payload.get("name")),
            cert_no=_text(payload.get("cert_no")), conferral_date=_date_text(payload.get("conferral_date")),
            decision_date=_date_text(payload.get("decision_date")), resolution_no=_text(payload.get("resolution_no")),
            reason=_text(payload.get("revocation_reason")),  # never `reason`: that key is a send-back's
        )  # fmt: skip
    if kind == "photo_letter":
        return PhotoLetter(
            **common | {"title": "关于补报学位获得者电子照片的函", "recipient": province_name,
                        "copy_to": (center_name,), "attachments": ("补报电子照片的学位获得者名单",)},
            unit_name=unit.name, academic_year=_text(payload.get("academic_year")),
            category=_text(payload.get("category")),
            people=_rows(payload.get("people"), ("name", "major", "cert_no", "serial_no")),
        )  # fmt: skip
    if kind in ("province_approval", "province_rejection"):
        approved = kind == "province_approval"
        count = len(payload.get("records") or payload.get("changes") or ()) or 1
        what = {"supplement": f"补报 {count} 名学位获得者的学位授予信息",
                "amendment": f"修改学位证书编号为 {_text(payload.get('cert_no')) or '（未填）'} 的学位授予信息",
                "errata": f"勘误学位证书编号为 {_text(payload.get('cert_no')) or '（未填）'} 的学位授予信息关键字段"}.get(case_type, subject)  # fmt: skip
        application = {"supplement": "supplement_application", "amendment": "amendment_application",
                       "errata": "errata_application"}.get(case_type, "")  # fmt: skip
        return ProvinceDecision(
            **common | {"title": f"关于{unit.name}申请{subject}的{'批复' if approved else '复函'}",
                        "recipient": unit.name},
            case_label=subject, application_number=earlier.get(application, ""),
            approved=approved, reasons=_text(payload.get("reason")) if not approved else "", subject=what,
        )  # fmt: skip
    if kind == "province_filing":
        return ProvinceFiling(
            **common | {"title": f"关于{unit.name}{subject}的备案报告", "recipient": national_name,
                        "copy_to": (center_name,),
                        "attachments": (f"{unit.name}申请补报学位授予信息的请示（复印件）", "申请补报学位获得者名单（复印件）")},
            unit_name=unit.name, case_label=subject, application_number=earlier.get("supplement_application", ""),
            count=len(payload.get("records") or ()),
            compared=tuple(_text(c) for c in payload.get("form1_compared") or ()),
        )  # fmt: skip
    if kind == "verification_feedback":
        return VerificationFeedback(
            **common | {"title": "学位信息核查反馈表", "recipient": unit.name},
            unit_name=unit.name, request_no=number, applicant_name=_text(payload.get("applicant_name")),
            cert_no=_text(payload.get("cert_no")), id_number=_text(payload.get("id_number")),
            conferral_date=_date_text(payload.get("conferral_date")), reply_by="收到本表后10个工作日内",
            results=("信息一致", "信息有误已更正", "查无此人"), dispute_reason=_text(payload.get("reason")),
            differences=tuple(_text(d) for d in payload.get("comparison") or ()),
        )  # fmt: skip
    if kind == "authentication_report":
        verified = payload.get("result")
        return AuthenticationReport(
            **common | {"title": "中国学位认证报告", "recipient": _text(payload.get("applicant_name"))},
            unit_name=unit.name, holder_name=_text(payload.get("applicant_name")), cert_no=_text(payload.get("cert_no")),
            id_number=_text(payload.get("id_number")), conferral_date=_date_text(payload.get("conferral_date")),
            basis=("经学位中心抽查复核予以纠正" if payload.get("authentication_case")
                   else "经学位授予单位核查" if verified else "经与全国学位授予信息数据库比对"),
            conclusion=(f"经抽查复核，认证结论更正为：{verified}" if payload.get("authentication_case")
                        else f"学位授予单位核查结果：{verified}" if verified
                        else "该学位证书信息与国家学位授予信息数据库记录一致"),
        )  # fmt: skip
    raise KeyError(kind)  # pragma: no cover


# -- issuing -------------------------------------------------------------------------------------------------
def allocate_number(conn: Connection, org_id: int, year: int) -> int:
    """The next number of an organisation's year, atomically (an upsert that locks the sequence row)."""
    statement = _NEXT_NUMBER["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    row = statement.first(conn, {"v_org": org_id, "v_year": year, "v_first": 1})
    assert row is not None
    return int(row[0])


def issue(
    conn: Connection,
    kind: str,
    *,
    case_id: int,
    case_type: str,
    rule_set: str,
    unit_id: int,
    payload: Mapping[str, Any],
    event_id: int | None,
    issued_by: int,
    now: datetime,
    replaces_id: int | None = None,
) -> dict[str, Any]:
    """Number, build and store one document in the caller's transaction."""
    parties = _parties(conn, unit_id)
    issuer = parties.organ(KINDS[kind].issuer)
    if issuer is None:
        raise LookupError(f"{kind}: no issuing organisation ({KINDS[kind].issuer})")
    today = now.astimezone(SHANGHAI).date()
    seq = allocate_number(conn, issuer.id, today.year)
    number = doc_number(issuer.organ_code or issuer.code, today.year, seq)
    earlier = {
        row[0]: row[1] for row in (_EARLIER.all(conn, {"w_case": case_id}) if kind in _CITES_EARLIER else [])
    }
    context = dataclasses.asdict(
        build_context(
            kind,
            case_type=case_type,
            rule_set=rule_set,
            payload=payload,
            parties=parties,
            number=number,
            today=today,
            earlier=earlier,
            attached=attachments.counts(conn, case_id) if kind in attachments.LETTER_PURPOSES else {},
        )  # fmt: skip
    )
    context = _jsonable(context)
    template_hash = template_sha256(kind)
    values = {
        "case_id": case_id, "event_id": event_id, "org_id": issuer.id, "kind": kind, "title": context["title"],
        "year": today.year, "seq": seq, "number": number, "context": context, "template_sha256": template_hash,
        "sha256": document_hash(kind, number, context, template_hash), "issued_at": now, "issued_by": issued_by,
        "replaces_id": replaces_id,
    }  # fmt: skip
    inserted = _INSERT_DOC.first(conn, {f"v_{c}": values[c] for c in _DOC_COLUMNS})
    assert inserted is not None
    values["id"] = int(inserted[0])
    return values


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def issue_for_step(conn: Connection, ctx: FireContext, step: Step, event_id: int) -> None:
    """The engine's after-step hook: issue the documents this step produces."""
    for kind in ISSUE_ON.get((ctx.case.type, step.source, step.trigger, step.dest), ()):
        issue(
            conn, kind, case_id=ctx.case.id, case_type=ctx.case.type, rule_set=ctx.case.rule_set,
            unit_id=ctx.case.org_id, payload=ctx.payload, event_id=event_id, issued_by=ctx.actor.id, now=ctx.now,
        )  # fmt: skip


def document_query() -> Any:
    return select(DOCS, ORGS.c.name.label("org_name")).join(ORGS, DOCS.c.org_id == ORGS.c.id)
