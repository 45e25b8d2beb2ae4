"""The input rules behind tests/test_hostile.py, one by one: text fields take text of a bounded length, field
dates lie in a sane range, the calendar refuses limits it cannot count, e-mail addresses and names follow the
columns' rules, and the command line refuses out-of-range numbers and bad files with one line naming them. Each
refusal names the field (or argument) and the rule in Chinese and leaves the database as it was."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cases import accounts
from cases.service import DegreeFlow
from degreeflow.cli import app as cli_app
from scheduler.calendar import MAX_LIMIT_DAYS, DateOutOfRange, WorkingCalendar, days_of_year
from tests.helpers import OPEN_DATA
from workflow import FieldRule, InvalidPayload
from workflow.fields import DATE_MAX, DATE_MIN, NOTE_TEXT_MAX, TEXT_MAX


def refused(rule: FieldRule, value: Any) -> InvalidPayload:
    with pytest.raises(InvalidPayload) as caught:
        rule.validate({rule.name: value})
    return caught.value


# -- text fields ----------------------------------------------------------------------------------------------
NAME = FieldRule("name", "姓名")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(["钱", "某某"], "列表"), ({"family": "钱"}, "对象"), (True, "布尔值"), (1.5, "小数")],
)
def test_a_text_field_refuses_other_json_types(value: Any, shown: str) -> None:
    error = refused(NAME, value)
    assert (error.field, error.rule) == ("name", "text_type")
    assert error.message == f"字段 name（姓名）：应为文本，收到{shown}"


def test_a_text_field_takes_an_integer_as_its_digits_and_strips_spaces() -> None:
    assert FieldRule("cert_no", "学位证书编号").validate({"cert_no": 1063542021000321}) == "1063542021000321"
    assert NAME.validate({"name": "  钱某某 "}) == "钱某某"


def test_a_text_field_has_a_maximum_length() -> None:
    assert NAME.validate({"name": "钱" * TEXT_MAX}) == "钱" * TEXT_MAX
    error = refused(NAME, "钱" * (TEXT_MAX + 1))
    assert (error.field, error.rule) == ("name", "text_length")
    assert error.message == f"字段 name（姓名）：不能超过 {TEXT_MAX} 个字符，收到 {TEXT_MAX + 1} 个"


def test_a_reason_the_note_may_supply_is_as_long_as_a_note_and_a_rule_may_set_its_own_limit() -> None:
    reason = FieldRule("reason", "理由", from_note=True)
    assert reason.text_limit == NOTE_TEXT_MAX
    assert reason.validate({"reason": "因" * NOTE_TEXT_MAX}) == "因" * NOTE_TEXT_MAX
    assert refused(reason, "因" * (NOTE_TEXT_MAX + 1)).rule == "text_length"
    short = FieldRule("serial_no", "流水号", max_length=8)
    assert short.validate({"serial_no": "12345678"}) == "12345678"
    assert refused(short, "123456789").message == "字段 serial_no（流水号）：不能超过 8 个字符，收到 9 个"


def test_list_items_are_held_to_the_same_text_rules() -> None:
    people = FieldRule("people", "名单", kind="list", items=(NAME,))
    error = refused(people, [{"name": "张三"}, {"name": ["李", "四"]}])
    assert (error.field, error.rule) == ("people[1].name", "text_type")


def test_a_text_field_refuses_control_characters_but_keeps_line_breaks() -> None:
    error = refused(NAME, "a\x00b")
    assert (error.field, error.rule) == ("name", "text_control")
    assert "控制字符" in error.message
    reason = FieldRule("reason", "理由")
    assert reason.validate({"reason": "第一\n第二\t完"}) == "第一\n第二\t完"


# -- dates ------------------------------------------------------------------------------------------------------
DECISION = FieldRule("decision_date", "撤销决定日期", kind="date")


@pytest.mark.parametrize("value", ["9999-12-31", "1899-12-31", "2101-01-01", "00010101"])
def test_a_date_field_refuses_dates_outside_the_range(value: str) -> None:
    error = refused(DECISION, value)
    assert (error.field, error.rule) == ("decision_date", "date_range")
    assert error.message.startswith(
        f"字段 decision_date（撤销决定日期）：日期须在 {DATE_MIN} 至 {DATE_MAX} 之间"
    )


def test_a_date_field_takes_the_ends_of_the_range() -> None:
    assert DECISION.validate({"decision_date": "1900-01-01"}) == "1900-01-01"
    assert DECISION.validate({"decision_date": "21001231"}) == "2100-12-31"


# -- the calendar -----------------------------------------------------------------------------------------------
def test_the_calendar_refuses_a_due_date_past_the_last_date() -> None:
    calendar = WorkingCalendar()
    for working in (False, True):
        with pytest.raises(DateOutOfRange) as caught:
            calendar.due(date(9999, 12, 28), 5, working)
        assert caught.value.rule == "date_range" and "超出可计算的日期范围" in caught.value.message


def test_the_calendar_refuses_a_limit_longer_than_ten_years() -> None:
    calendar = WorkingCalendar()
    assert calendar.due(date(2026, 1, 1), MAX_LIMIT_DAYS, True)[0] > date(2036, 1, 1)
    with pytest.raises(DateOutOfRange) as caught:
        calendar.due(date(2026, 1, 1), MAX_LIMIT_DAYS + 1, False)
    assert (caught.value.rule, caught.value.field) == ("limit_days", "days")
    assert caught.value.to_dict()["code"] == "invalid_payload"


def test_days_of_a_year_outside_the_dates_python_knows_are_refused() -> None:
    with pytest.raises(DateOutOfRange, match="年份须在 1 至 9999 之间"):
        list(days_of_year(10000))


# -- organisations, users, e-mail -------------------------------------------------------------------------------
@pytest.mark.parametrize("email", ["zhang.wei@swu.edu.cn", "a+b@mail.example.org", "x_1@163.com"])
def test_ordinary_email_addresses_are_accepted(email: str) -> None:
    accounts.check_email(email)


@pytest.mark.parametrize(
    "email",
    ["a@b.c<script>alert(1)</script>", "a@b.c\r\nBcc: all@example.org", "a@b", "a b@c.cn", "a..b@c.cn",
     "(x)@c.cn", "a@-b.cn", "a@b.cn" + "n" * 260],
)  # fmt: skip
def test_email_addresses_a_mail_header_cannot_carry_are_refused(email: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        accounts.check_email(email)
    assert caught.value.field == "email" and caught.value.rule in ("email_format", "email_length")
    assert "\n" not in caught.value.message and "\r" not in caught.value.message


def test_names_have_the_column_sizes(sqlite_flow: DegreeFlow) -> None:
    with pytest.raises(InvalidPayload) as caught:
        sqlite_flow.add_org("99997", "大" * (accounts.ORG_NAME_MAX + 1), "unit", "50")
    assert (caught.value.field, caught.value.rule) == ("name", "name_length")
    assert caught.value.message == "字段 name（名称）：不能超过 100 个字符，收到 101 个"
    assert sqlite_flow.add_org("99997", "大" * accounts.ORG_NAME_MAX, "unit", "50")["code"] == "99997"
    with pytest.raises(InvalidPayload, match="字段 name（姓名）：不能超过 64 个字符"):
        sqlite_flow.add_user("99997XW01", "王" * 65, "collector", "99997")
    with pytest.raises(InvalidPayload, match="字段 name（姓名）：不能包含换行等控制字符"):
        sqlite_flow.add_user("99997XW01", "王\n五", "collector", "99997")
    assert sqlite_flow.list_users("99997") == []


def test_a_refused_case_leaves_no_case(sqlite_flow: DegreeFlow) -> None:
    data = {**OPEN_DATA["revocation"], "name": "钱" * (TEXT_MAX + 1)}
    with pytest.raises(InvalidPayload, match="不能超过"):
        sqlite_flow.open_case("revocation", "10635", "10635XW01", data)
    with pytest.raises(InvalidPayload, match="日期须在"):
        sqlite_flow.open_case(
            "revocation", "10635", "10635XW01", {**OPEN_DATA["revocation"], "decision_date": "9999-12-31"}
        )
    assert sqlite_flow.list_cases() == []


# -- the command line -------------------------------------------------------------------------------------------
@pytest.fixture
def cli(sqlite_flow: DegreeFlow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    url = sqlite_flow.db.url.render_as_string(hide_password=False)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli_app, ["--db", url, "--now", "2026-11-20T09:00", *args])

    return run


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["case", "show", "99999999999999999999999"],
         "[invalid_payload/number_range] 参数 ID：应为 1 至 2147483647 之间的案件编号，收到 99999999999999999999999"),
        (["scheduler", "run", "--interval", "0"],
         "[invalid_payload/number_range] 参数 --interval：应为 1 至 86400 之间的秒数，收到 0"),
        (["calendar", "template", "99999"],
         "[invalid_payload/number_range] 参数 YEAR：应为 1900 至 2100 之间的年份，收到 99999"),
        (["calendar", "due", "9999-12-31", "5"],
         "[invalid_payload/date_range] 自 9999-12-31 起 5日的截止日超出可计算的日期范围（最晚 9999-12-31），请检查日期"),
        (["calendar", "template", "2027", "-o", "."],
         "[invalid_payload/file_access] 参数 --output：无法读写文件 .：这是一个文件夹，不是文件"),
        (["records", "export", "no/such/folder/x.csv"],
         "[invalid_payload/file_access] 无法读写文件 no/such/folder/x.csv：文件或其所在文件夹不存在"),
    ],
)  # fmt: skip
def test_the_cli_refuses_numbers_and_files_in_one_line(cli: Any, args: list[str], line: str) -> None:
    result = cli(*args)
    assert result.exit_code == 7, result.output
    assert result.output.strip() == f"错误 {line}"


def test_the_cli_names_a_file_that_is_not_what_its_name_says(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "fake.xlsx").write_bytes(b"\x00not a zip" * 10)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00\x81")
    result = cli("records", "validate", "fake.xlsx")
    assert result.exit_code == 7
    assert (
        "[invalid_payload/xlsx_format] 文件 fake.xlsx 不是有效的 XLSX 工作簿（不是 ZIP 格式）"
        in result.output
    )
    result = cli("case", "open", "revocation", "--org", "10635", "--as", "10635XW01", "--data", "binary.json")
    assert result.exit_code == 7
    assert "参数 --data：文件 binary.json 不是 UTF-8 编码的文本（第 1 个字节无法解码）" in result.output
    result = cli("calendar", "import", "binary.json")
    assert result.exit_code == 7
    assert "[invalid_calendar/calendar_file] 日历文件 binary.json 不是 UTF-8 编码的文本" in result.output
