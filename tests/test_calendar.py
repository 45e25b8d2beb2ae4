"""The working-day calendar with the real 2025 and 2026 official schedules, and administrator imports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db.clock import SHANGHAI, beijing_date, beijing_iso
from scheduler.calendar import package_years
from scheduler.calendar_file import CalendarFileError, template, validate_entries
from tests.helpers import fire, open_case


@pytest.fixture
def cal(sqlite_flow):
    return sqlite_flow.calendar.get()


@pytest.mark.parametrize(
    ("day", "working", "name"),
    [
        (date(2025, 1, 26), True, "调休上班"),  # make-up Sunday before Spring Festival 2025
        (date(2025, 1, 28), False, "春节"),
        (date(2025, 2, 4), False, "春节"),
        (date(2025, 2, 8), True, "调休上班"),  # make-up Saturday
        (date(2025, 10, 8), False, "国庆节"),
        (date(2025, 10, 11), True, "调休上班"),
        (date(2026, 2, 14), True, "调休上班"),  # make-up Saturday
        (date(2026, 2, 23), False, "春节"),  # a Monday off
        (date(2026, 2, 28), True, "调休上班"),
        (date(2026, 9, 20), True, "调休上班"),  # make-up Sunday before National Day 2026
        (date(2026, 9, 25), False, "中秋节"),
        (date(2026, 10, 7), False, "国庆节"),
        (date(2026, 10, 10), True, "调休上班"),
        (date(2026, 11, 21), False, "周末"),
        (date(2026, 11, 20), True, ""),
    ],
)
def test_official_days(cal, day, working, name):
    assert cal.is_workday(day) is working
    assert cal.name(day) == name
    assert cal.covers(day)


@pytest.mark.parametrize(
    ("start", "days", "working", "due"),
    [
        # 5 working days across Spring Festival 2025, counting the make-up Sunday 26 January.
        (date(2025, 1, 24), 5, True, date(2025, 2, 7)),
        # 30 days ending on 1 October 2025 (National Day): moves to the first working day, 9 October.
        (date(2025, 9, 1), 30, False, date(2025, 10, 9)),
        # 10 working days across Mid-autumn and National Day 2026, counting make-up Sunday 20 September.
        (date(2026, 9, 18), 10, True, date(2026, 10, 9)),
        # 5 working days ending on make-up Saturday 10 October 2026.
        (date(2026, 9, 28), 5, True, date(2026, 10, 10)),
        # 7 days ending inside Spring Festival 2026 (17 February): moves to Tuesday 24 February.
        (date(2026, 2, 10), 7, False, date(2026, 2, 24)),
        # 10 days ending on a Saturday that is a make-up working day (28 February 2026): stays.
        (date(2026, 2, 18), 10, False, date(2026, 2, 28)),
        # 3 working days from the Friday before the 2026 Spring Festival: Sat 14 Feb works, then 24, 25 Feb.
        (date(2026, 2, 13), 3, True, date(2026, 2, 25)),
        # 30 days ending on an ordinary Sunday move to Monday.
        (date(2026, 11, 20), 30, False, date(2026, 12, 21)),
    ],
)
def test_due_dates_on_the_official_schedule(cal, start, days, working, due):
    assert cal.due(start, days, working) == (due, False)


def test_remaining_working_days_skip_holidays(cal):
    assert cal.remaining(date(2026, 9, 30), date(2026, 10, 9), True) == 2  # 8 and 9 October
    assert cal.remaining(date(2026, 10, 9), date(2026, 10, 9), True) == 0


def test_uncovered_year_is_provisional_and_weekend_only(cal):
    """Weekends, and the fixed-date statutory holidays of 全国年节及纪念日放假办法 (2024 revision: 元旦 1月1日, 劳动节
    5月1日、2日, 国庆节 10月1日至3日), are known before a year's schedule is published; the rest is provisional."""
    # 2027-01-01 is a Friday, but 元旦: the limit moves to Monday 4 January, still provisional.
    assert cal.due(date(2026, 12, 2), 30, False) == (date(2027, 1, 4), True)
    assert not cal.is_workday(date(2027, 1, 1)) and cal.name(date(2027, 1, 1)) == "元旦"
    assert [cal.is_workday(date(2027, 5, d)) for d in (1, 2, 3)] == [False, False, True]  # Sat, Sun, Mon
    assert [cal.is_workday(date(2027, 10, d)) for d in (1, 4)] == [False, True]
    assert cal.name(date(2028, 5, 2)) == "劳动节" and not cal.is_workday(date(2028, 5, 2))  # a Tuesday
    assert cal.due(date(2027, 9, 29), 2, True) == (date(2027, 10, 4), True)  # 30 Sep, then 4 Oct
    assert cal.due(date(2026, 12, 25), 3, True) == (date(2026, 12, 30), False)
    assert cal.due(date(2026, 12, 30), 3, True)[1] is True


def test_package_years_cover_2004_to_2026():
    years = package_years()
    assert min(years) == 2004 and max(years) >= 2026
    assert all(len(rows) in (365, 366) for rows in years.values())


def _year_2027(tmp_path, *, holidays=(date(2027, 1, 1),), extra: str = "", fmt: str = "csv"):
    lines = template(2027).splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        day = date.fromisoformat(line.split(",")[0])
        out.append(f"{day},false,元旦" if day in holidays else line)
    path = tmp_path / f"2027.{fmt}"
    if fmt == "csv":
        path.write_text("\n".join(out) + "\n" + extra, encoding="utf-8")
    else:
        import yaml

        rows = [dict(zip(("date", "working", "name"), line.split(","), strict=True)) for line in out[1:]]
        path.write_text(yaml.safe_dump({"year": 2027, "days": rows}, allow_unicode=True), encoding="utf-8")
    return path


def test_provisional_deadline_becomes_final_after_import(flow, clock, tmp_path):
    clock.set(clock.now().replace(month=12, day=2))  # 2026-12-02
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    (deadline,) = flow.show(case_id)["deadlines"]
    assert (deadline["due_date"], deadline["provisional"]) == ("2027-01-04", True)  # 元旦 is known already
    assert [d["provisional"] for d in flow.deadlines()] == [True]
    result = flow.calendar_import(_year_2027(tmp_path))
    assert result == {"year": 2027, "days": 365, "working_days": 260, "recomputed_deadlines": 1}
    (deadline,) = flow.show(case_id)["deadlines"]
    assert (deadline["due_date"], deadline["provisional"]) == ("2027-01-04", False)  # the schedule confirms it
    assert flow.calendar_day(date(2027, 1, 1)) == {"date": "2027-01-01", "working": False, "name": "元旦",
                                                   "provisional": False}  # fmt: skip


def test_sweep_finalises_deadlines_computed_before_another_process_imported(flow, clock, tmp_path):
    clock.set(clock.now().replace(month=12, day=2))
    case_id = open_case(flow, "supplement")
    fire(flow, case_id, "supplement", "submit", "collector")
    # Another process imports 2027 without recomputing (simulated by storing the year directly).
    from db import transaction
    from scheduler.calendar import store_year
    from scheduler.calendar_file import read_calendar_file

    year, rows = read_calendar_file(_year_2027(tmp_path))
    with transaction(flow.db) as conn:
        store_year(conn, year, rows, "other process", clock.now())
    assert flow.show(case_id)["deadlines"][0]["provisional"] is True
    flow.calendar.invalidate()
    report, _ = flow.sweep()
    assert report.recomputed == 1
    assert flow.show(case_id)["deadlines"][0]["due_date"] == "2027-01-04"


def test_yaml_import(sqlite_flow, tmp_path):
    assert sqlite_flow.calendar_import(_year_2027(tmp_path, fmt="yaml"))["year"] == 2027


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rows: rows[:-1], "缺少 1 天"),
        (lambda rows: rows + [rows[5]], "重复"),
        (
            lambda rows: [{**r, "working": "maybe"} if r["date"] == "2027-03-03" else r for r in rows],
            "working",
        ),
        (
            lambda rows: [
                {**r, "working": "false", "name": ""} if r["date"] == "2027-03-03" else r for r in rows
            ],
            "须写明节日名称",
        ),
        (
            lambda rows: rows + [{"date": "2028-01-01", "working": "false", "name": "元旦"}],
            "只能包含一个年份",
        ),
        (
            lambda rows: [{**r, "date": "2027-13-01"} if r["date"] == "2027-03-03" else r for r in rows],
            "日期格式",
        ),
    ],
)
def test_import_validation_names_the_problem(mutate, message):
    rows = [
        dict(zip(("date", "working", "name"), line.split(","), strict=True))
        for line in template(2027).splitlines()[1:]
    ]
    with pytest.raises(CalendarFileError, match=message):
        validate_entries([{**row, "_line": i + 2} for i, row in enumerate(mutate(rows))])


def test_make_up_weekend_may_be_imported_without_a_name():
    rows = [
        dict(zip(("date", "working", "name"), line.split(","), strict=True))
        for line in template(2027).splitlines()[1:]
    ]
    rows = [
        {**r, "working": "上班", "name": ""} if r["date"] == "2027-02-06" else r for r in rows
    ]  # a Saturday
    year, days = validate_entries(rows)
    assert (date(2027, 2, 6), True, "调休上班") in days


# -- Beijing time without the zone database ------------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1940, 1, 1), max_value=datetime(2100, 12, 31)),
    aware=st.sampled_from([None, UTC, SHANGHAI, timezone(timedelta(hours=-5))]),
)
def test_beijing_time_shortcuts_agree_with_the_zone_database(moment: datetime, aware: Any) -> None:
    # SQLite gives naive UTC times, PostgreSQL aware ones in any zone; before 1992 China had daylight saving.
    value = moment if aware is None else moment.replace(tzinfo=UTC).astimezone(aware)
    exact = moment.replace(tzinfo=UTC).astimezone(SHANGHAI)
    assert beijing_iso(value) == exact.isoformat(timespec="seconds")
    assert beijing_date(value) == exact.date()


def test_beijing_time_in_a_daylight_saving_summer_and_today() -> None:
    assert beijing_iso(datetime(1988, 7, 1, 0, 0)) == "1988-07-01T09:00:00+09:00"  # 夏令时 1986-1991
    assert beijing_iso(datetime(2026, 11, 20, 16, 30, 5, 999)) == "2026-11-21T00:30:05+08:00"
    assert beijing_date(datetime(2026, 11, 20, 16, 0)) == date(2026, 11, 21)
    assert beijing_iso(None) is None
