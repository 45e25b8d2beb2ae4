"""The supervising leader's one-time authorization code (seed 003 item 7) on the 2024 revocation report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db import AuthorizationCode, CaseEvent
from tests.helpers import attach_required, leader_code, open_case, snapshot
from workflow import Forbidden, InvalidPayload

RULES_2024 = {"conferral_date": "2024-06-30", "decision_date": "2026-11-18"}


def _ready(flow):  # type: ignore[no-untyped-def]
    case_id = open_case(flow, "revocation", **RULES_2024, cert_no="1063542024000321")  # numbered for 2024
    flow.fire(case_id, "submit", "10635XW01", payload={"resolution_no": "西南大学学位〔2026〕3号"})
    attach_required(flow, case_id, "verify")
    assert flow.show(case_id)["rule_set"] == "2024"
    return case_id


def test_the_step_needs_a_code_that_only_the_leader_receives(flow):
    case_id = _ready(flow)
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as missing:
        flow.fire(case_id, "verify", "10635XW02")
    assert missing.value.field == "authorization_code" and "授权码" in missing.value.message
    assert snapshot(flow, case_id) == before
    code = leader_code(flow, case_id, "verify", "10635XW02")
    assert not [
        m for m in flow.inbox("10635XW02") if m["kind"] == "authorization"
    ]  # not the operator's inbox
    flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": code})
    assert flow.show(case_id)["state"] == "reported"
    with flow.db.connect() as conn:
        events = conn.execute(select(CaseEvent.__table__.c.payload)).scalars().all()
        used = conn.execute(select(AuthorizationCode.__table__.c.used_at)).scalars().all()
    assert all("authorization_code" not in (payload or {}) for payload in events)  # never stored
    assert code not in str(flow.show(case_id)["payload"])
    assert used and all(u is not None for u in used)


def test_a_wrong_code_is_refused_and_counted_and_five_exhaust_the_request(flow):
    case_id = _ready(flow)
    code = leader_code(flow, case_id, "verify", "10635XW02")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    before = snapshot(flow, case_id)
    for _ in range(5):
        with pytest.raises(InvalidPayload) as refused:
            flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": wrong})
        assert refused.value.rule == "authorization_code_wrong"
    with pytest.raises(InvalidPayload) as exhausted:
        flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": code})
    assert exhausted.value.rule == "authorization_code_exhausted"
    assert snapshot(flow, case_id) == before
    fresh = leader_code(flow, case_id, "verify", "10635XW02")
    flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": fresh})
    assert flow.show(case_id)["state"] == "reported"


def test_a_code_expires_is_bound_to_its_requester_and_is_used_once(flow, clock):
    case_id = _ready(flow)
    code = leader_code(flow, case_id, "verify", "10635XW02")
    clock.set(clock.now() + timedelta(minutes=11))
    with pytest.raises(InvalidPayload) as expired:
        flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": code})
    assert expired.value.rule == "authorization_code_expired"
    code = leader_code(flow, case_id, "verify", "10635XW02")
    flow.add_user("10635XW05", "钱七", "verifier", "10635")
    with pytest.raises(InvalidPayload):  # another verifier cannot use a code asked for by someone else
        flow.fire(case_id, "verify", "10635XW05", payload={"authorization_code": code})
    flow.fire(case_id, "verify", "10635XW02", payload={"authorization_code": code})
    with flow.db.connect() as conn:
        rows = conn.execute(select(AuthorizationCode.__table__)).all()
    assert sum(1 for r in rows if r.used_at is not None) == 1  # once, and only the live one


def test_no_code_for_steps_that_do_not_need_one_and_none_without_a_leader(flow):
    case_id = open_case(flow, "revocation")  # 2020 rules: no code
    flow.fire(case_id, "submit", "10635XW01", payload={"resolution_no": "西南大学学位〔2026〕3号"})
    with pytest.raises(InvalidPayload) as not_needed:
        flow.request_authorization(case_id, "verify", "10635XW02")
    assert not_needed.value.rule == "authorization_not_needed"
    other = flow.open_case("revocation", "10611", "10611XW01", {"cert_no": "1061142024000001", "name": "钱某某",
                                                                  **RULES_2024}).case_id  # fmt: skip
    flow.fire(other, "submit", "10611XW01", payload={"resolution_no": "重庆大学学位〔2026〕1号"})
    with pytest.raises(Forbidden) as no_leader:
        flow.request_authorization(other, "verify", "10611XW02")
    assert no_leader.value.rule == "leader_account_missing"
