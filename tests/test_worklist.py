"""The work queue: who waits on what, in deadline order, within scope; cases.next_due_at kept by every step."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import OPEN_DATA, fire, open_case
from tests.test_stateful import next_due_problems


def test_queue_lists_what_each_person_can_act_on_most_urgent_first(flow, clock):
    late = open_case(flow, "revocation", decision_date="2026-11-12")  # report due 2026-11-22
    early = open_case(flow, "revocation", decision_date="2026-11-10")  # due 2026-11-20: today
    undated = open_case(flow, "photo")  # no deadline while a draft
    rows, total = flow.queue("10635XW01")
    assert [r["id"] for r in rows] == [early, late] and total == 2  # 10635's cases; the photo case is 10593's
    assert rows[0]["due"]["date"] == "2026-11-20" and rows[0]["due"]["remaining_working_days"] == 0
    rows, _ = flow.queue("10593XW01")
    assert [r["id"] for r in rows] == [undated] and rows[0]["due"] is None
    assert flow.queue("prov50") == ([], 0)  # nothing waits on the province yet
    fire(flow, early, "revocation", "submit", "collector")
    fire(flow, early, "revocation", "verify", "verifier")
    rows, total = flow.queue("prov50")
    assert [r["id"] for r in rows] == [early] and total == 1
    assert flow.queue("prov45") == ([], 0)  # another province
    assert [r["id"] for r in flow.queue("xwb01")[0]] == []  # national acts after the province
    assert next_due_problems(flow) == []


def test_next_due_follows_start_stop_pause_resume_and_closing(flow, clock):
    case_id = open_case(flow, "authentication")
    due = lambda: flow.show(case_id)["deadlines"]  # noqa: E731
    assert next_due_problems(flow) == []
    for trigger, part in [("check", "center"), ("send_to_unit", "center")]:  # pauses the Center's clock
        fire(flow, case_id, "authentication", trigger, part)
        assert next_due_problems(flow) == []
    assert {d["name"]: d["status"] for d in due()}["center_total"] == "paused"
    clock.set(clock.now() + timedelta(days=3))
    for trigger, part in [("answer", "verifier"), ("issue_report", "center")]:  # resumes, then closes
        fire(flow, case_id, "authentication", trigger, part)
        assert next_due_problems(flow) == []
    rows, _ = flow.search_cases("xwzx01", case_type="authentication")
    assert rows[0]["id"] == case_id and rows[0]["due"] is None  # closed: no open limit


def test_search_finds_by_certificate_number_or_name_within_scope(flow):
    case_id = open_case(flow, "revocation")
    rows, total = flow.search_cases("prov50", text=OPEN_DATA["revocation"]["cert_no"])
    assert total == 1 and rows[0]["id"] == case_id
    assert flow.search_cases("prov50", text="钱某")[1] == 1
    assert flow.search_cases("prov45", text="钱某")[1] == 0
    assert flow.search_cases("10635XW01", text="100%_")[1] == 0  # LIKE wildcards are taken literally


def test_a_limit_reaching_an_unpublished_year_is_marked_provisional(flow, clock):
    from datetime import datetime

    from db.clock import SHANGHAI

    clock.set(datetime(2026, 12, 10, 9, 0, tzinfo=SHANGHAI))  # a 30-day limit reaches January 2027
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    (row,) = [r for r in flow.queue("prov45")[0] if r["id"] == case_id]
    assert row["due"]["provisional"] is True and row["due"]["date"].startswith("2027-01")
    late = open_case(flow, "revocation", decision_date="2026-12-01")
    (mine,) = [r for r in flow.queue("10635XW01")[0] if r["id"] == late]
    assert mine["due"]["provisional"] is False


def test_unit_accounts_follow_the_2024_naming(flow):
    import pytest

    from workflow import InvalidPayload

    with pytest.raises(InvalidPayload) as bad:
        flow.add_user("zhangsan", "张三", "collector", "10635")
    assert bad.value.field == "username" and "10635XW01" in bad.value.message
    assert flow.add_user("10635XW12", "张三", "collector", "10635")["username"] == "10635XW12"
    assert flow.add_user("prov50b", "李四", "reviewer", "50")["username"] == "prov50b"  # not a unit


def test_search_by_certificate_uses_the_reference_and_falls_back_to_batches(flow):
    revocation = open_case(flow, "revocation")
    assert flow.show(revocation)["id"] == revocation
    with flow.db.connect() as conn:
        from sqlalchemy import select

        from db import Case

        reference = conn.execute(
            select(Case.__table__.c.reference).where(Case.__table__.c.id == revocation)
        ).scalar()
    assert reference == OPEN_DATA["revocation"]["cert_no"]
    batch = open_case(flow, "supplement")
    fire(flow, batch, "supplement", "submit", "collector")  # Form 1 lists 1059342023001101
    rows, total = flow.search_cases("prov45", text="1059342023001101")
    assert total == 1 and rows[0]["id"] == batch


def test_queue_pages_run_dated_then_undated_and_the_total_stops_at_the_cap(flow):
    from cases import worklist
    from cases.service import load_actor

    dated = [open_case(flow, "revocation", decision_date=f"2026-11-{day:02d}") for day in (12, 10, 11)]
    undated = [open_case(flow, "errata"), open_case(flow, "errata")]  # a draft has no deadline yet
    open_case(flow, "photo")  # 10593's: never counted for 10635
    everything, total = flow.queue("10635XW01")
    ids = [r["id"] for r in everything]
    assert total == 5 and sorted(ids) == sorted(dated + undated)
    assert (
        sorted(ids[:3]) == sorted(dated) and ids[0] == dated[1]
    )  # most urgent first, the undated after them
    assert [(r["due"]["date"], r["id"]) for r in everything[:3]] == sorted(
        (r["due"]["date"], r["id"]) for r in everything[:3]
    )
    assert all(r["due"] is None for r in everything[3:])
    paged = [r["id"] for page in range(3) for r in flow.queue("10635XW01", limit=2, offset=2 * page)[0]]
    assert paged == ids  # pages cut across the dated and the undated part without loss or repeat
    with flow.db.connect() as conn:
        actor = load_actor(conn, "10635XW01")
        assert worklist.queue(conn, actor, count_cap=3)[1] == 3  # "3+": counting stops at the cap
        assert worklist.queue(conn, actor, count_cap=5)[1] == 5
        assert len(worklist.queue(conn, actor, count_cap=2)[0]) == 5  # the cap bounds the count, not the page


def test_lists_show_a_name_or_a_batch_size_kept_on_every_step(flow):
    from tests.helpers import PHOTO
    from tests.test_stateful import copied_column_problems

    revocation = open_case(flow, "revocation")
    photo = open_case(flow, "photo")
    assert flow.queue("10593XW01")[0][0]["subject"] == ""  # a draft batch lists no one yet
    fire(flow, photo, "photo", "submit", "collector")  # the step brings the people
    rows = {r["id"]: r for r in flow.search_cases("xwb01")[0]}
    assert rows[photo]["subject"] == f"{len(PHOTO['people'])} 条" and rows[photo]["cert_no"] == ""
    assert rows[revocation]["subject"] == OPEN_DATA["revocation"]["name"]
    assert rows[revocation]["cert_no"] == OPEN_DATA["revocation"]["cert_no"]
    assert copied_column_problems(flow) == []
