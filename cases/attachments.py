"""Uploaded files of a case: allowed types (checked by content, not by name), size, a safe name; what each
file is for (its purpose, chosen when uploading); the guard that refuses a step whose attachments are missing;
and the entries a letter's attachment list takes from what was actually attached."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from db.models import Attachment
from workflow import FireContext, InvalidPayload, ProcessDefinition, Step

ATTACHMENTS = Attachment.__table__

# extension -> (content type, the bytes a real file of that type starts with)
ALLOWED: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
}
_UNSAFE = re.compile(r"[^\w.\-（）()\u4e00-\u9fff]+")


def safe_name(filename: str) -> str:
    """The last path component, without control characters, separators or leading dots; at most 100 chars."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip("._ ")
    if "." in name:
        stem, ext = name.rsplit(".", 1)
        name = f"{stem[:90]}.{ext[:8]}"
    return name[:100]


def check(filename: str, content: bytes, max_bytes: int) -> tuple[str, str, str]:
    """(safe name, extension, content type) of an acceptable upload, or InvalidPayload naming the rule."""
    name = safe_name(filename)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = "、".join(sorted(ALLOWED))
    if not name or ext not in ALLOWED:
        raise InvalidPayload(
            f"字段 file（附件）：只接受 {allowed} 文件，收到“{name or filename[:50]}”",
            field="file",
            rule="file_type",
        )
    if not content:
        raise InvalidPayload("字段 file（附件）：文件为空", field="file", rule="file_empty")
    if len(content) > max_bytes:
        raise InvalidPayload(
            f"字段 file（附件）：文件大小 {len(content) / 1048576:.1f} MB 超过上限 {max_bytes / 1048576:.0f} MB",
            field="file",
            rule="file_size",
        )
    content_type, magic = ALLOWED[ext]
    if not content.startswith(magic):
        raise InvalidPayload(
            f"字段 file（附件）：文件内容不是 {ext} 格式（扩展名与内容不符）",
            field="file",
            rule="file_content",
        )
    return name, ext, content_type


# -- purposes: what an attachment is for, chosen when uploading (stored in attachments.purpose) ---------------
@dataclass(frozen=True)
class Purpose:
    name: str
    label: str  # as a letter's attachment list names it
    hint: str  # what the uploader should choose it for
    types: tuple[str, ...]  # accepted extensions
    listed: bool = True  # enclosed with a letter that lists this purpose (see LETTER_PURPOSES)


SCANS = ("pdf", "jpg", "jpeg", "png")
PURPOSES: dict[str, Purpose] = {
    p.name: p
    for p in (
        # seed 002 art. 19 / seed 004 art. 16: 附学位评定委员会撤销有关学位决议; seed 000 annex 2 §3.
        Purpose("revocation_resolution", "学位评定委员会关于撤销学位的决议", "撤销学位决议的扫描件", SCANS),
        # seed 000 annex 2 §1 (supplement); seed 002 art. 12(4) (2020 filing: 决议（含学位获得者名单）的电子扫描件).
        Purpose("conferral_resolution", "学位评定委员会授予学位的决议", "授予学位决议（含学位获得者名单）的扫描件", SCANS),
        # seed 000 annex 2 §2: 必要的证明材料（包括身份证件复印件、学位证书复印件等）.
        Purpose("proof", "证明材料", "身份证件复印件、学位证书复印件等", SCANS),
        Purpose("other", "其他材料", "存档备查，不列入公文附件", tuple(ALLOWED), listed=False),
    )
}  # fmt: skip
UNSPECIFIED = Purpose("", "未注明用途", "", tuple(ALLOWED), listed=False)  # uploads from before purposes
DEFAULT_PURPOSE = "other"
RULE = "attachment_required"


def purpose_of(name: str | None) -> Purpose:
    return PURPOSES.get(name or "", UNSPECIFIED)


def choices() -> str:
    return "、".join(f"{p.name}（{p.label}）" for p in PURPOSES.values())


def check_purpose(purpose: str | None, ext: str) -> str:
    """The purpose an upload is stored with, or InvalidPayload naming the rule."""
    name = (purpose or "").strip()
    if name not in PURPOSES:
        raise InvalidPayload(
            f"字段 purpose（附件用途）：“{name[:32]}”不是可选用途；可选：{choices()}",
            field="purpose",
            rule="attachment_purpose",
        )
    spec = PURPOSES[name]
    if ext not in spec.types:
        raise InvalidPayload(
            f"字段 file（附件）：“{spec.label}”只接受 {'、'.join(spec.types)} 文件（扫描件），收到 {ext} 文件",
            field="file",
            rule="file_type",
        )
    return name


def counts(conn: Connection, case_id: int) -> dict[str, int]:
    """How many files of each purpose the case has."""
    rows = conn.execute(
        select(ATTACHMENTS.c.purpose, func.count())
        .where(ATTACHMENTS.c.case_id == case_id)
        .group_by(ATTACHMENTS.c.purpose)
    ).all()
    return {str(purpose or ""): int(n) for purpose, n in rows}


def needs_of(step: Step, rule_set: str) -> list[dict[str, Any]]:
    """What a step needs, with labels, for pages and the API (`uploaded` filled in by the caller)."""
    return [
        {"purpose": name, "label": purpose_of(name).label, "hint": purpose_of(name).hint}
        for name in step.attachments_needed(rule_set)
    ]


def required(ctx: FireContext) -> None:
    """Guard: the attachments the step declares (`Step.attachments`) are on the case; otherwise refused
    naming the missing ones. Runs in the step's transaction, so an upload and a step never pass each other."""
    from cases.registry import DEFINITIONS  # the definitions import this module

    candidates = DEFINITIONS[ctx.case.type].candidates(ctx.case.state, ctx.trigger)
    if not candidates:
        return
    step = candidates[0]  # alternatives of one trigger declare the same attachments (check_definition)
    needed = step.attachments_needed(ctx.case.rule_set)
    if not needed:
        return
    have = counts(ctx.conn, ctx.case.id)
    missing = [name for name in needed if not have.get(name)]
    if missing:
        labels = "、".join(f"《{purpose_of(name).label}》（{purpose_of(name).hint}）" for name in missing)
        raise InvalidPayload(
            f"附件：“{step.label or step.trigger}”须附{labels}，本案件尚未上传；请在“附件”中上传，"
            f"用途选“{purpose_of(missing[0]).label}”",
            field="attachments",
            rule=RULE,
            missing=missing,
        )


# Which uploads each letter encloses (after the forms the letter itself carries).
LETTER_PURPOSES: dict[str, tuple[str, ...]] = {
    "revocation_report": ("revocation_resolution",),
    "supplement_application": ("conferral_resolution",),
    "amendment_application": ("proof",),
}


def letter_items(kind: str, attached: Mapping[str, int]) -> tuple[str, ...]:
    """The attachment-list entries for what is actually attached: one per purpose, with the number of files."""
    items = []
    for name in LETTER_PURPOSES.get(kind, ()):
        n = attached.get(name, 0)
        if n:
            label = purpose_of(name).label
            items.append(label if n == 1 else f"{label}（{n} 份）")
    return tuple(items)


def definition_problems(definitions: Mapping[str, ProcessDefinition]) -> list[str]:
    """A step that declares attachments must carry the guard that checks them, and name known purposes."""
    problems = []
    for defn in definitions.values():
        for step in defn.steps:
            for name in (a if isinstance(a, str) else a.purpose for a in step.attachments):
                if name not in PURPOSES:
                    problems.append(
                        f"{defn.name}: step {step.trigger} needs unknown attachment purpose {name!r}"
                    )
            first = defn.candidates(step.source, step.trigger)[:1] or [step]
            if step.attachments and required not in first[0].guards:
                problems.append(
                    f"{defn.name}: step {step.trigger} declares attachments without attachments.required"
                )
    return problems
