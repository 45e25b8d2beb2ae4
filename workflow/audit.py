"""The tamper-evident audit chain: each event hashes its content and the previous event of the same case."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from db.clock import utc_iso
from db.models import Case, CaseEvent

GENESIS = "0" * 64
EVENTS = CaseEvent.__table__
CASES = Case.__table__


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def event_hash(
    *,
    case_id: int,
    seq: int,
    at: datetime,
    actor_id: int,
    actor_name: str,
    trigger: str,
    from_state: str,
    to_state: str,
    note: str,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    body = canonical_json(
        [
            case_id,
            seq,
            utc_iso(at),
            actor_id,
            actor_name,
            trigger,
            from_state,
            to_state,
            note,
            payload,
            prev_hash,
        ]
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class ChainProblem:
    case_id: int
    seq: int | None
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "seq": self.seq, "problem": self.problem}


@dataclass
class VerifyReport:
    cases: int
    events: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(conn: Connection, case_id: int | None = None) -> VerifyReport:
    """Recompute every hash; check sequence, links, and that each case's head matches its last event."""
    problems: list[ChainProblem] = []
    heads: dict[int, tuple[int, str, str]] = {}  # case_id -> (seq, hash, to_state)
    query = select(EVENTS).order_by(EVENTS.c.case_id, EVENTS.c.seq)
    if case_id is not None:
        query = query.where(EVENTS.c.case_id == case_id)
    events = 0
    for row in conn.execute(query):
        events += 1
        last_seq, last_hash, _ = heads.get(row.case_id, (0, GENESIS, ""))
        if row.seq != last_seq + 1:
            problems.append(
                ChainProblem(row.case_id, row.seq, f"事件序号不连续：应为 {last_seq + 1}，实为 {row.seq}")
            )
        if row.prev_hash != last_hash:
            problems.append(ChainProblem(row.case_id, row.seq, "前一事件的哈希不符（链条断裂）"))
        recomputed = event_hash(
            case_id=row.case_id,
            seq=row.seq,
            at=row.at,
            actor_id=row.actor_id,
            actor_name=row.actor_name,
            trigger=row.trigger,
            from_state=row.from_state,
            to_state=row.to_state,
            note=row.note,
            payload=row.payload,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            problems.append(ChainProblem(row.case_id, row.seq, "事件内容与其哈希不符（记录被篡改）"))
        heads[row.case_id] = (row.seq, row.hash, row.to_state)
    case_query = select(CASES.c.id, CASES.c.state, CASES.c.last_seq, CASES.c.head_hash)
    if case_id is not None:
        case_query = case_query.where(CASES.c.id == case_id)
    cases = 0
    for case in conn.execute(case_query):
        cases += 1
        seq, head, state = heads.get(case.id, (0, GENESIS, ""))
        if (case.last_seq, case.head_hash) != (seq, head):
            problems.append(ChainProblem(case.id, case.last_seq, "案件记录的链头与最后一个事件不符"))
        elif seq and case.state != state:
            problems.append(
                ChainProblem(case.id, seq, f"案件状态 {case.state} 与最后一个事件的结果 {state} 不符")
            )
    return VerifyReport(cases=cases, events=events, problems=problems)
