"""Each case type's paths and each kind of refusal, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cases import authentication
from tests.helpers import attach_required, fire, leader_code, open_case, snapshot, users_for
from workflow import (
    Forbidden,
    InvalidPayload,
    NotAllowedInState,
    NotFound,
    SeparationOfDuties,
    UnknownTrigger,
)

HAPPY_PATHS = {
    "supplement": [
        ("submit", "collector", "applied"),
        ("approve", "province", "data_entry"),
        ("submit_data", "verifier", "data_review"),
        ("return", "province", "data_entry"),
        ("submit_data", "verifier", "data_review"),
        ("accept", "province", "province_filed"),
        ("record", "center", "recorded"),
    ],
    "amendment": [
        ("submit", "collector", "applied"),
        ("approve", "province", "national_review"),  # a name change is a key field
        ("approve", "national", "approved"),
        ("record", "center", "recorded"),
    ],
    "errata": [("submit", "collector", "self_check"), ("confirm", "verifier", "recorded")],
    "revocation": [
        ("submit", "collector", "unit_check"),
        ("verify", "verifier", "reported"),
        ("confirm", "province", "confirmed"),
        ("revoke", "national", "revoked"),
    ],
    "photo": [("submit", "collector", "filed"), ("acknowledge", "province", "recorded")],
    "authentication": [
        ("check", "center", "comparing"),
        ("send_to_unit", "center", "verification"),
        ("answer", "verifier", "reviewing"),
        ("issue_report", "center", "reported"),
        ("dispute", "center", "verification"),
        ("answer", "verifier", "reviewing"),
        ("issue_report", "center", "reported"),
    ],
}


@pytest.mark.parametrize("case_type", sorted(HAPPY_PATHS))
def test_happy_path(flow, case_type):
    case_id = open_case(flow, case_type)
    for trigger, part, expected in HAPPY_PATHS[case_type]:
        result = fire(flow, case_id, case_type, trigger, part)
        assert result.to_state == expected, (trigger, part)
    shown = flow.show(case_id)
    assert shown["state"] == HAPPY_PATHS[case_type][-1][2]
    assert shown["closed_at"] is not None
    # open + one event per step, each naming the person
    assert [h["trigger"] for h in shown["history"]] == ["open"] + [t for t, _p, _s in HAPPY_PATHS[case_type]]
    assert all(h["actor"] for h in shown["history"])
    assert shown["version"] == len(HAPPY_PATHS[case_type]) + 1
    assert flow.verify_audit(case_id).ok
    # A closed case leaves no timer running.
    assert not [d for d in shown["deadlines"] if d["status"] in ("running", "paused")]


def test_amendment_non_key_field_needs_only_the_province(flow):
    case_id = open_case(flow, "amendment")
    fire(flow, case_id, "amendment", "submit", "collector", field="major", old_value="a", new_value="b")
    assert fire(flow, case_id, "amendment", "approve", "province").to_state == "approved"


def test_amendment_fields_may_be_named_in_chinese_and_as_a_list(flow):
    case_id = open_case(flow, "amendment")
    changes = [
        {"field": "专业名称", "old_value": "机械", "new_value": "机械工程", "reason": "不全"},
        {"field": "性别", "old_value": "女", "new_value": "男", "reason": "录入错误"},
    ]
    attach_required(flow, case_id, "submit")
    flow.fire(case_id, "submit", "10611XW01", payload={"changes": changes, "proofs": ["身份证复印件"]})
    assert flow.show(case_id)["payload"]["changes"][1]["field"] == "gender"
    assert fire(flow, case_id, "amendment", "approve", "province").to_state == "national_review"


def test_amendment_rejected_by_national_office(flow):
    case_id = open_case(flow, "amendment")
    fire(flow, case_id, "amendment", "submit", "collector")
    fire(flow, case_id, "amendment", "approve", "province")
    with pytest.raises(Forbidden) as refused:  # the Degree Center may not approve key fields
        flow.fire(case_id, "approve", "xwzx01")
    assert refused.value.rule == "actor_level"
    assert flow.fire(case_id, "reject", "xwb01", note="证明材料不足").to_state == "rejected"
    assert flow.show(case_id)["history"][-1]["payload"] == {"reason": "证明材料不足"}


def test_amendment_refuses_degrees_of_the_2024_platform(flow):
    with pytest.raises(InvalidPayload) as refused:
        open_case(flow, "amendment", conferral_date="2024-07-01")
    assert refused.value.field == "conferral_date"
    assert "errata" in refused.value.message


def test_errata_key_field_goes_to_the_province_with_five_working_days(flow):
    case_id = open_case(flow, "errata")
    change = {"field": "conferral_date", "old_value": "20250620", "new_value": "20250621", "reason": "日期错"}
    assert fire(flow, case_id, "errata", "submit", "collector", **change).to_state == "province_review"
    (deadline,) = flow.show(case_id)["deadlines"]
    # Friday 2026-11-20 + 5 working days: Friday 2026-11-27 (2026 is in the official calendar: final).
    assert (deadline["name"], deadline["due_date"], deadline["provisional"]) == (
        "province_decision",
        "2026-11-27",
        False,
    )
    assert fire(flow, case_id, "errata", "approve", "province").to_state == "recorded"
    assert flow.show(case_id)["deadlines"][0]["status"] == "met"


@pytest.mark.parametrize(
    ("conferral", "decision", "rule_set", "due", "second_deadline"),
    [
        ("2015-06-30", "2019-03-01", "2013", "2019-03-15", True),  # 10 working days
        ("2021-06-25", "2026-11-18", "2020", "2026-11-30", False),  # 10 days, 28 Nov is a Saturday
        ("2024-06-30", "2026-11-18", "2024", "2026-11-25", False),  # 7 days
    ],
)
def test_revocation_rule_set_chosen_by_dates(
    flow, clock, conferral, decision, rule_set, due, second_deadline
):
    # The certificate number carries the conferral year (学位〔2015〕18号; older numbers are not checked).
    cert_no = f"106354{conferral[:4]}000321"
    case_id = open_case(flow, "revocation", conferral_date=conferral, decision_date=decision, cert_no=cert_no)
    shown = flow.show(case_id)
    assert shown["rule_set"] == rule_set
    assert [(d["name"], d["due_date"]) for d in shown["deadlines"]] == [("report", due)]
    fire(flow, case_id, "revocation", "submit", "collector")
    # The 2024 platform rules need the supervising leader's one-time code for the report.
    code = (
        {"authorization_code": leader_code(flow, case_id, "verify", "10635XW02")}
        if rule_set == "2024"
        else {}
    )
    attach_required(flow, case_id, "verify")
    flow.fire(case_id, "verify", "10635XW02", payload=code)
    fire(flow, case_id, "revocation", "confirm", "province")
    names = [d["name"] for d in flow.show(case_id)["deadlines"]]
    assert ("center_verify" in names) is second_deadline


def test_revocation_needs_decision_date_and_resolution_number(flow):
    with pytest.raises(InvalidPayload) as missing_date:
        flow.open_case("revocation", "10635", "10635XW01", {"cert_no": "1063542021000321", "name": "钱某某",
                                                              "conferral_date": "2021-06-25"})  # fmt: skip
    assert missing_date.value.field == "decision_date"
    case_id = open_case(flow, "revocation")
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as missing_number:
        flow.fire(case_id, "submit", "10635XW01")
    assert missing_number.value.field == "resolution_no"
    assert "撤销决议文号" in missing_number.value.message
    assert snapshot(flow, case_id) == before


def test_supplement_data_must_match_form_1(flow):
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    fire(flow, case_id, "supplement", "approve", "province")
    before = snapshot(flow, case_id)
    with pytest.raises(InvalidPayload) as refused:
        fire(
            flow,
            case_id,
            "supplement",
            "submit_data",
            "verifier",
            data=[{"name": "覃秋月", "cert_no": "1059342023001101"}],
        )
    assert refused.value.rule == "form1_match"
    assert "莫文杰" in refused.value.message
    assert snapshot(flow, case_id) == before


def test_supplement_certificate_numbers_belong_to_the_unit(flow):
    case_id = open_case(flow, "supplement")
    with pytest.raises(InvalidPayload) as refused:
        fire(
            flow,
            case_id,
            "supplement",
            "submit",
            "collector",
            records=[{"name": "甲", "cert_no": "1000142023000001"}],
        )
    assert refused.value.field == "records[0].cert_no"


def test_authentication_match_reports_at_once(flow):
    previous = authentication.set_comparator(lambda conn, request: request["cert_no"] == "1061142020000555")
    try:
        case_id = open_case(flow, "authentication")
        result = fire(flow, case_id, "authentication", "check", "center")
    finally:
        authentication.set_comparator(previous)
    assert result.to_state == "reported"
    assert [e["trigger"] for e in result.events] == ["check", "match"]
    shown = flow.show(case_id)
    assert [h["to"] for h in shown["history"]] == ["received", "comparing", "reported"]
    assert flow.verify_audit(case_id).ok


def test_authentication_without_records_waits_for_the_center(flow):
    case_id = open_case(flow, "authentication")
    assert fire(flow, case_id, "authentication", "check", "center").to_state == "comparing"


def test_authentication_center_clock_pauses_while_the_unit_verifies(flow, clock):
    case_id = open_case(flow, "authentication")
    fire(flow, case_id, "authentication", "check", "center")
    fire(flow, case_id, "authentication", "send_to_unit", "center")
    deadlines = {d["name"]: d for d in flow.show(case_id)["deadlines"]}
    # Opened Friday 2026-11-20: 8 working days -> Tuesday 2026-12-02; paused the same day with 8 left.
    assert deadlines["center_total"]["status"] == "paused"
    assert deadlines["center_total"]["remaining_working_days"] == 8
    assert deadlines["unit_answer"]["due_date"] == "2026-12-04"
    clock.set(clock.now().replace(day=27))  # a week later (Friday 2026-11-27)
    fire(flow, case_id, "authentication", "answer", "verifier")
    deadlines = {d["name"]: d for d in flow.show(case_id)["deadlines"]}
    assert deadlines["unit_answer"]["status"] == "met"
    assert deadlines["center_total"]["status"] == "running"
    assert deadlines["center_total"]["due_date"] == "2026-12-09"  # 8 working days after 2026-11-27


def test_supplement_return_pauses_and_resubmission_starts_fresh(flow):
    case_id = open_case(flow, "supplement")
    for trigger, part in [("submit", "collector"), ("approve", "province"), ("submit_data", "verifier"),
                          ("return", "province"), ("submit_data", "verifier")]:  # fmt: skip
        fire(flow, case_id, "supplement", trigger, part)
    review = [d for d in flow.show(case_id)["deadlines"] if d["name"] == "province_data_review"]
    assert [d["status"] for d in review] == ["superseded", "running"]


# -- refusals -----------------------------------------------------------------------------------------------
def _refused(flow, case_id, error, trigger, user, **payload):
    before = snapshot(flow, case_id)
    with pytest.raises(error) as refused:
        flow.fire(case_id, trigger, user, payload=payload)
    assert snapshot(flow, case_id) == before, "a refused step must change nothing"
    return refused.value


def test_wrong_role_level(flow):
    case_id = open_case(flow, "photo")
    error = _refused(flow, case_id, Forbidden, "submit", "prov45")
    assert error.rule == "actor_level"
    assert "学位授予单位" in error.message


def test_wrong_organisation_unit(flow):
    case_id = open_case(flow, "photo")  # 10593 广西大学
    error = _refused(flow, case_id, Forbidden, "submit", "10611XW01")
    assert error.rule == "organisation_scope"
    assert "重庆大学" in error.message and "广西大学" in error.message


def test_wrong_organisation_province(flow):
    case_id = open_case(flow, "photo")
    fire(flow, case_id, "photo", "submit", "collector")
    error = _refused(flow, case_id, Forbidden, "acknowledge", "prov50")
    assert error.rule == "organisation_scope"


def test_collector_role_may_not_verify(flow):
    case_id = open_case(flow, "errata")
    fire(flow, case_id, "errata", "submit", "collector")
    error = _refused(flow, case_id, Forbidden, "confirm", "10635XW01")
    assert error.rule == "actor_role"


def test_the_person_who_collected_may_not_verify(flow):
    # A verifier who opened (collected) the case may not also confirm it.
    case_id = flow.open_case("errata", "10635", "10635XW02", {"conferral_date": "2025-06-20"}).case_id
    flow.fire(case_id, "submit", "10635XW02", payload={"field": "major", "old_value": "a", "new_value": "b",
                                                        "reason": "c"})  # fmt: skip
    error = _refused(flow, case_id, SeparationOfDuties, "confirm", "10635XW02")
    assert error.rule == "collector_may_not_verify"
    assert "不同工作人员" in error.message


def test_wrong_state(flow):
    case_id = open_case(flow, "revocation")
    error = _refused(flow, case_id, NotAllowedInState, "confirm", "prov50")
    assert "submit" in error.message


def test_terminal_state_accepts_nothing_but_dispute(flow):
    case_id = open_case(flow, "photo")
    fire(flow, case_id, "photo", "submit", "collector")
    fire(flow, case_id, "photo", "acknowledge", "province")
    _refused(flow, case_id, NotAllowedInState, "submit", "10593XW01", **{})


def test_unknown_trigger(flow):
    case_id = open_case(flow, "photo")
    error = _refused(flow, case_id, UnknownTrigger, "approve_everything", "10593XW01")
    assert error.field == "trigger"


def test_missing_payload_names_the_field(flow):
    case_id = open_case(flow, "photo")
    error = _refused(flow, case_id, InvalidPayload, "submit", "10593XW01", academic_year="2025-2026",
                     category="普通高校本科毕业生学士")  # fmt: skip
    assert error.field == "people"
    assert "表4" in error.message


def test_invalid_choice_names_the_rule(flow):
    case_id = open_case(flow, "photo")
    error = _refused(flow, case_id, InvalidPayload, "submit", "10593XW01", **{**_photo(), "category": "学士"})
    assert error.rule == "choice" and error.field == "category"


def test_rejection_reason_is_required(flow):
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    error = _refused(flow, case_id, InvalidPayload, "reject", "prov45")
    assert error.field == "reason"
    assert flow.fire(case_id, "reject", "prov45", note="未说明漏报原因").to_state == "rejected"


def test_unknown_case_and_user(flow):
    with pytest.raises(NotFound):
        flow.fire(999, "submit", "10593XW01")
    case_id = open_case(flow, "photo")
    _refused(flow, case_id, NotFound, "submit", "nobody")


def test_only_the_center_opens_authentication(flow):
    with pytest.raises(Forbidden):
        flow.open_case(
            "authentication", "10611", "10611XW01", {"applicant_name": "甲", "cert_no": "1061142020000555"}
        )


def test_unit_may_not_open_cases_for_another_unit(flow):
    with pytest.raises(Forbidden) as refused:
        flow.open_case("photo", "10611", "10593XW01", {})
    assert refused.value.rule == "organisation_scope"


def test_allowed_triggers_for_a_user(flow):
    case_id = open_case(flow, "supplement")
    assert [a["trigger"] for a in flow.show(case_id, "10593XW01")["allowed"]] == ["submit", "cancel"]
    assert flow.show(case_id, "prov45")["allowed"] == []
    fire(flow, case_id, "supplement", "submit", "collector")
    assert [a["trigger"] for a in flow.show(case_id, "prov45")["allowed"]] == ["approve", "reject"]
    assert [a["trigger"] for a in flow.show(case_id, "10593XW01")["allowed"]] == ["withdraw"]
    assert flow.show(case_id, "prov50")["allowed"] == []


def _photo():
    from tests.helpers import PHOTO

    return dict(PHOTO)


def test_users_for_helper_matches_demo_users(flow):
    usernames = {u["username"] for u in flow.list_users()}
    for unit in ("10593", "10611", "10635"):
        assert set(users_for(unit).values()) <= usernames


@pytest.mark.parametrize(("field", "old", "new"), [("name", "刘洋", "刘阳"), ("gender", "女", "男"),
                                                   ("id_number", "500103200103150124", "500103200103150140")])  # fmt: skip
def test_errata_of_a_name_gender_or_id_number_goes_to_the_province(flow, field, old, new):
    """Seed 003 item 12: "学位类别、获学位日期等关键信息" — with seed 002 art. 12(3), 18 naming 姓名、性别、身份证件号码、
    学位类别 as key fields, an errata of any of them is not confirmed by the unit itself."""
    case_id = open_case(flow, "errata")
    result = fire(flow, case_id, "errata", "submit", "collector", field=field, old_value=old, new_value=new,
                  reason="录入错误")  # fmt: skip
    assert result.to_state == "province_review"
    assert [a["trigger"] for a in flow.show(case_id, "10635XW02")["allowed"]] != ["confirm"]
