"""Void documents (作废): what a withdrawn, returned or cancelled round had issued.

A step marked `voids_letters` (a unit's 撤回, a province's 退回 of a revocation report, a case's 作废) makes void
every document issued since the round began (since the case was opened or last went back): one row in
`document_voids` per document, in the step's own transaction, naming the step's event, the person and the reason.
Documents and voids are append-only: the document keeps its content and its number (which is never reused;
numbers come from the issuing organisation's sequence); lists show 已作废 and the printed document carries a
visible 作废 mark (added when rendering, so the stored content and its hash do not change).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from cases.common import UNDO_REASONS
from cases.letters import chinese_date
from cases.registry import DEFINITIONS
from db.clock import SHANGHAI, beijing_iso, to_utc
from db.models import CaseEvent, Document, DocumentVoid, User
from workflow import FireContext, Step
from workflow.definition import OPEN_TRIGGER

DOCS = Document.__table__
EVENTS = CaseEvent.__table__
VOIDS = DocumentVoid.__table__
USERS = User.__table__


def _round_events(conn: Connection, case_type: str, case_id: int, before_seq: int) -> list[int]:
    """Ids of the events of the current round up to `before_seq`: after the opening or the last step that sent
    the case back."""
    defn = DEFINITIONS[case_type]
    rows = conn.execute(
        select(EVENTS.c.id, EVENTS.c.trigger, EVENTS.c.from_state, EVENTS.c.to_state)
        .where(EVENTS.c.case_id == case_id, EVENTS.c.seq <= before_seq)
        .order_by(EVENTS.c.seq)
    ).all()
    ids: list[int] = []
    for row in reversed(rows):
        if row.trigger == OPEN_TRIGGER:
            ids.append(row.id)  # nothing is issued on opening today, but what would be belongs to round one
            break
        step = defn.find_step(row.from_state, row.trigger, row.to_state)
        if step is not None and step.sends_back:
            break
        ids.append(row.id)
    return ids


def void_for_step(conn: Connection, ctx: FireContext, step: Step, event_id: int) -> None:
    """The engine's after-step hook: a `voids_letters` step voids the documents of the round it undoes."""
    if not step.voids_letters:
        return
    events = _round_events(conn, ctx.case.type, ctx.case.id, ctx.case.last_seq)
    documents = conn.execute(
        select(DOCS.c.id, DOCS.c.event_id, DOCS.c.replaces_id)
        .where(DOCS.c.case_id == ctx.case.id)
        .order_by(DOCS.c.id)
    ).all()
    already = set(conn.execute(
        select(VOIDS.c.document_id).join(DOCS, DOCS.c.id == VOIDS.c.document_id).where(DOCS.c.case_id == ctx.case.id)
    ).scalars())  # fmt: skip
    in_round = set(events)
    chosen: list[int] = []
    for doc in documents:  # in issue order: a reissue comes after what it replaces
        of_round = doc.event_id in in_round
        reissue_of_void = doc.event_id is None and doc.replaces_id in (set(chosen) | already)
        if (of_round or reissue_of_void) and doc.id not in already:
            chosen.append(doc.id)
    if not chosen:
        return
    reason = next((str(ctx.step_payload[k]) for k in UNDO_REASONS if ctx.step_payload.get(k)), "") or ctx.note
    text = f"{step.label or step.trigger}：{reason}" if reason else (step.label or step.trigger)
    conn.execute(
        insert(VOIDS),
        [{"document_id": doc_id, "event_id": event_id, "at": ctx.now, "actor_id": ctx.actor.id,
          "reason": text[:2000]} for doc_id in chosen],
    )  # fmt: skip


def voids_of(conn: Connection, document_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The void rows of these documents, by document id: when, by whom, why, and the event."""
    ids = list(document_ids)
    if not ids:
        return {}
    rows = conn.execute(
        select(VOIDS, USERS.c.name.label("actor_name"))
        .join(USERS, USERS.c.id == VOIDS.c.actor_id)
        .where(VOIDS.c.document_id.in_(ids))
    ).all()
    return {
        row.document_id: {"at": beijing_iso(row.at), "actor": row.actor_name, "reason": row.reason,
                          "event_id": row.event_id, "day": chinese_date(to_utc(row.at).astimezone(SHANGHAI).date())}
        for row in rows
    }  # fmt: skip


_STAMP_STYLE = (
    "position:fixed;top:40%;left:0;right:0;text-align:center;transform:rotate(-30deg);font-size:96pt;"
    "font-weight:bold;color:rgba(200,0,0,0.35);border:none;letter-spacing:0.5em;z-index:10;"
    "pointer-events:none"
)
_NOTE_STYLE = "border:2px solid #c00;color:#c00;padding:4px 8px;margin:0 0 8px;font-weight:bold"


def mark_void(html: str, void: Mapping[str, Any] | None) -> str:
    """The document's HTML with a visible 作废 mark on every page and a line saying when and why."""
    if not void:
        return html
    note = f"本文书已作废（{void.get('day', '')}，{void.get('actor', '')}）：{void.get('reason', '')}"
    mark = (
        f'<div class="void-stamp" style="{_STAMP_STYLE}" aria-hidden="true">作废</div>'
        f'<p class="void-note" role="note" style="{_NOTE_STYLE}">{escape(note)}</p>'
    )
    head, sep, rest = html.partition("<body")
    if not sep:
        return mark + html
    tag_end = rest.find(">")
    return f"{head}<body{rest[: tag_end + 1]}{mark}{rest[tag_end + 1 :]}"
