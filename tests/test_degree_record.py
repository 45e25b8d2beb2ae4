"""Checks of the degree record: each rule with a passing and a failing record."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from cases.degree_record import COLUMN, check_batch, check_record, resident_id_birth_date

VALID = {
    "姓名": "张伟", "性别": "女", "出生日期": "19491231", "民族": "汉族", "身份证件类型": "中华人民共和国居民身份证",
    "身份证件号码": "11010519491231002X", "国家或地区": "中国", "考生号": "20010501123456", "培养单位码": "10635",
    "培养单位": "西南大学", "学科/专业代码": "081401", "学科/专业名称": "土木工程", "学位授予单位码": "10635",
    "学位授予单位": "西南大学", "学位授予单位校长姓名": "张卫国", "学位评定委员会主席姓名": "李明",
    "学位类别码": "08", "学位类别": "工学硕士", "获学位日期": "20240630", "学位证书编号": "1063532024000123",
    "导师姓名": "王强;李红", "论文类型": "应用研究", "论文题目": "山地城市桥梁抗震研究", "论文关键词": "桥梁；抗震",
    "论文选题来源": "国家自然科学基金项目", "论文研究方向": "桥梁工程;结构抗震", "论文撰写语种": "汉语",
    "毕业日期": "20240625",
}  # fmt: skip


def codes(record):
    return sorted({p.code for p in check_record(record)})


def test_a_valid_record_passes():
    assert check_record(VALID) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"姓名": ""}, "required"),
        ({"姓名": "zhang wei"}, "name_format"),
        ({"性别": "M"}, "gender"),
        ({"出生日期": "1949-12-31"}, "date_format"),
        ({"身份证件类型": "身份证"}, "id_type"),
        ({"身份证件号码": "110105194912310021"}, "id_number"),
        ({"出生日期": "19491230"}, "birth_date_mismatch"),
        ({"性别": "男"}, "gender_mismatch"),
        ({"民族": "汉"}, "ethnicity"),
        ({"学位授予单位码": "1063"}, "unit_code"),
        ({"学位证书编号": "1061132024000123"}, "cert_unit"),
        ({"学位证书编号": "1063542024000123"}, "cert_level"),
        ({"学位证书编号": "1063532023000123"}, "cert_year"),
        ({"学位证书编号": "10635320240001"}, "cert_format"),
        ({"毕业日期": "20240701"}, "conferral_before_graduation"),
        ({"论文类型": "毕业论文"}, "thesis_type"),
        ({"论文类型": "无"}, "thesis_not_empty"),
        ({"论文选题来源": "自拟"}, "topic_source"),
        ({"论文研究方向": "桥梁;抗震;隧道"}, "research_directions"),
        ({"导师姓名": "王强，李红"}, "separator"),
    ],
)
def test_each_rule_refuses_a_bad_record(change, code):
    found = check_record({**VALID, **change})
    assert code in {p.code for p in found}
    problem = next(p for p in found if p.code == code)
    assert COLUMN[problem.field] in problem.message  # the message names the column users know


def test_thesis_type_none_needs_empty_thesis_fields():
    record = {**VALID, "论文类型": "无"}
    for column in ("论文题目", "论文关键词", "论文选题来源", "论文研究方向", "论文撰写语种"):
        record[column] = ""
    assert check_record(record) == []


def test_bachelor_thesis_types_and_level_digit():
    bachelor = {**VALID, "学位类别": "工学学士", "学位证书编号": "1063542024000123", "论文类型": "毕业设计"}
    assert check_record(bachelor) == []


def test_international_student_leaves_ethnicity_blank():
    student = {**VALID, "民族": "", "身份证件类型": "护照", "身份证件号码": "E12345678", "国家或地区": "越南",
               "姓名": "NGUYEN VAN AN"}  # fmt: skip
    assert check_record(student) == []
    assert "ethnicity_international" in codes({**student, "民族": "汉族"})
    assert "required" in codes({**VALID, "民族": ""})


def test_old_certificate_numbers_may_carry_letters():
    old = {**VALID, "获学位日期": "20100630", "学位证书编号": "10635A2010000123", "毕业日期": "20100625"}
    assert "cert_format" not in codes(old)
    assert "cert_format" in codes({**VALID, "学位证书编号": "10635A2024000123"})


def test_batch_rules():
    second = {**VALID, "学位证书编号": "1063532024000124"}
    assert check_batch([VALID, second]) == []
    duplicate = check_batch([VALID, VALID])
    assert [(p.code, p.row) for p in duplicate] == [("duplicate_cert_no", 3)]
    other_day = {**second, "获学位日期": "20240701"}
    assert "batch_conferral_date" in {p.code for p in check_batch([VALID, other_day])}


def test_double_bachelor_pair():
    first = {
        **VALID,
        "学位类别码": "08",
        "学位类别": "工学学士",
        "学位证书编号": "1063542024000123",
        "论文类型": "毕业论文",
    }
    second = {**first, "学位类别码": "02", "学位类别": "经济学学士", "学位证书编号": "1063542024000124",
              "学科/专业名称": "金融学"}  # fmt: skip
    assert check_batch([first, second]) == []
    same_type = {**second, "学位类别码": "08"}
    assert "double_bachelor" in {p.code for p in check_batch([first, same_type])}
    other_person_detail = {**second, "出生日期": "19491230"}
    assert "double_bachelor" in {p.code for p in check_batch([first, other_person_detail])}


def _stdnum(number):
    try:
        return ric.get_birth_date(ric.validate(number))
    except ValidationError:
        return None


def _ours(number):
    try:
        return resident_id_birth_date(number)
    except ValidationError:
        return None


@settings(max_examples=400, deadline=None)
@given(
    area=st.sampled_from(["110105", "500103", "450102", "999999", "000000", "110100"]),
    year=st.integers(1890, 2030),
    month=st.integers(0, 13),
    day=st.integers(0, 32),
    sequence=st.integers(0, 999),
    check=st.sampled_from(list("0123456789X") + ["computed"]),
)
def test_fast_resident_id_check_agrees_with_python_stdnum(area, year, month, day, sequence, check):
    body = f"{area}{year:04d}{month:02d}{day:02d}{sequence:03d}"
    digit = ric.calc_check_digit(body + "0") if check == "computed" else check
    number = body + digit
    assert _ours(number) == _stdnum(number)


@pytest.mark.parametrize("number", ["11010519491231002x", " 11010519491231002X", "1101051949123100", "abc"])
def test_unusual_forms_go_through_stdnum(number):
    assert _ours(number) == _stdnum(number)
