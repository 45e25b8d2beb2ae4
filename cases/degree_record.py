"""The degree record (学位授予信息) and its checks (DOMAIN.md §5, seed 003 part 4 filling rules 1-27, seed 002 art. 9).

Each check yields a `Problem` with a stable code, the field (English key) and a message in Chinese naming the
column as users know it. `check_record` checks one record; `check_batch` adds the rules that span records (one
conferral date per batch, double bachelor's pairs, duplicate certificate numbers). A record with a problem is
never stored as filed (the registry that stores records comes with the rest of issue #5).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

# (key, column name in files, required)
FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("name", "姓名", True),
    ("gender", "性别", True),
    ("birth_date", "出生日期", True),
    ("ethnicity", "民族", False),
    ("id_type", "身份证件类型", True),
    ("id_number", "身份证件号码", True),
    ("country", "国家或地区", True),
    ("candidate_no", "考生号", False),
    ("training_unit_code", "培养单位码", True),
    ("training_unit", "培养单位", True),
    ("major_code", "学科/专业代码", False),
    ("major", "学科/专业名称", True),
    ("unit_code", "学位授予单位码", True),
    ("unit_name", "学位授予单位", True),
    ("president", "学位授予单位校长姓名", True),
    ("committee_chair", "学位评定委员会主席姓名", True),
    ("degree_type_code", "学位类别码", True),
    ("degree_type", "学位类别", True),
    ("conferral_date", "获学位日期", True),
    ("cert_no", "学位证书编号", True),
    ("supervisors", "导师姓名", False),
    ("thesis_type", "论文类型", True),
    ("thesis_title", "论文题目", False),
    ("thesis_keywords", "论文关键词", False),
    ("topic_source", "论文选题来源", False),
    ("research_directions", "论文研究方向", False),
    ("thesis_language", "论文撰写语种", False),
    ("graduation_date", "毕业日期", False),
    ("study_form", "学习方式", False),
    ("enrolment_date", "入学日期", False),
    ("student_no", "学号", False),
)
COLUMN = {key: column for key, column, _ in FIELDS}
KEY_OF_COLUMN = {column: key for key, column, _ in FIELDS}

# GB/T 3304-1991: the 56 ethnic groups; anything else is 其他.
ETHNICITIES = frozenset(
    "汉族 蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 白族 土家族 哈尼族 哈萨克族 傣族 黎族 傈僳族 "
    "佤族 畲族 高山族 拉祜族 水族 东乡族 纳西族 景颇族 柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 毛南族 仡佬族 锡伯族 "
    "阿昌族 普米族 塔吉克族 怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 保安族 裕固族 京族 塔塔尔族 独龙族 鄂伦春族 赫哲族 门巴族 "
    "珞巴族 基诺族".split()
) | {"其他"}
RESIDENT_ID = "中华人民共和国居民身份证"
ID_TYPES = frozenset({
    RESIDENT_ID, "港澳居民来往内地通行证", "台湾居民来往大陆通行证", "港澳居民居住证", "台湾居民居住证",
    "外国人永久居留身份证", "护照", "华侨护照", "其他",
})  # fmt: skip
THESIS_TYPES = {
    "postgraduate": frozenset({"基础研究", "应用研究", "其他", "无"}),
    "bachelor": frozenset({"毕业论文", "毕业设计", "涉密论文", "其他", "无"}),
}
TOPIC_SOURCES = frozenset({
    "国家重点研发计划项目", "国家社科规划、基金项目", "国家自然科学基金项目", "中央、国家机关部门项目",
    "教育部人文、社会科学研究项目", "省（自治区、直辖市）项目", "国际合作研究项目", "与港、澳、台合作研究项目",
    "企、事业单位委托项目", "外资项目", "国防项目", "学校自选项目", "非立项", "其他",
})  # fmt: skip
THESIS_FIELDS = ("thesis_title", "thesis_keywords", "topic_source", "research_directions", "thesis_language")
# Level digit of the certificate number (学位〔2015〕18号): 2 doctor, 3 master, 4 bachelor.
LEVEL_DIGIT = {"doctor": "2", "master": "3", "bachelor": "4"}
LEVEL_NAMES = {"doctor": "博士", "master": "硕士", "bachelor": "学士"}
_SEPARATORS = re.compile(r"[;；]")
_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True)
class Problem:
    code: str
    field: str
    message: str
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "column": COLUMN.get(self.field, self.field),
                "code": self.code, "message": self.message}  # fmt: skip


def degree_level(degree_type: str) -> str | None:
    for level, name in LEVEL_NAMES.items():
        if name in degree_type:
            return level
    return None


def parse_yyyymmdd(value: str) -> date | None:
    if not _DATE.match(value):
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


class Fields(dict[str, str]):
    """A record keyed by field (English key) with stripped text values, as `cases.record_files` reads it:
    the type says it needs no `normalise` (checking that value by value cost a fifth of an import)."""

    __slots__ = ()


def _normalised(record: Mapping[str, Any]) -> bool:
    return type(record) is Fields or (
        isinstance(record, dict)
        and all(
            type(k) is str and k in COLUMN and type(v) is str and v == v.strip() for k, v in record.items()
        )
    )


def as_fields(record: Mapping[str, Any]) -> Mapping[str, str]:
    """The record keyed by field: as it is when already so, else `normalise`d."""
    return record if _normalised(record) else normalise(record)


def normalise(record: Mapping[str, Any]) -> dict[str, str]:
    """Accept Chinese column names or English keys; strip every value to text."""
    out: dict[str, str] = {}
    for key, value in record.items():
        field = KEY_OF_COLUMN.get(str(key).strip(), str(key).strip())
        out[field] = "" if value is None else str(value).strip()
    return out


_PLAIN_RIC = re.compile(r"[0-9]{17}[0-9X]")
_NAME = re.compile(r"[\u3400-\u9fff\U00020000-\U0003134F·]+|[A-Z][A-Z ,.'-]*")


@functools.cache
def _place_known(area: str, year: int) -> bool:
    try:
        ric.get_birth_place(f"{area}{year:04d}0101000")
    except ValidationError:
        return False
    return True


@functools.lru_cache(maxsize=1 << 14)
def _area_known(area_and_year: str) -> bool:
    """`_place_known` for the first ten digits of a plain number (area code and birth year)."""
    return _place_known(area_and_year[:6], int(area_and_year[6:10]))


_date_of = functools.lru_cache(maxsize=1 << 14)(parse_yyyymmdd)  # birth dates repeat within a batch


def resident_id_birth_date(number: str) -> date:
    """The birth date in a valid resident ID number; raises stdnum's ValidationError like `ric.validate`.

    A number already in plain 18-character form is checked here directly (stdnum's check digit, the date,
    a known area code, cached per area and year) — the same rules as python-stdnum at a twentieth of the
    cost, which matters when a million records are imported; anything else goes through stdnum itself."""
    if not _PLAIN_RIC.fullmatch(number):
        return ric.get_birth_date(ric.validate(number))
    if number[17] != ric.calc_check_digit(number):
        raise InvalidChecksum()
    born = _date_of(number[6:14])
    if born is None or not _area_known(number[:10]):
        raise InvalidComponent()
    return born


def check_record(record: Mapping[str, Any], row: int | None = None) -> list[Problem]:
    return check_fields(normalise(record), row)


def check_fields(r: Mapping[str, str], row: int | None = None) -> list[Problem]:
    """The checks of one record already keyed by field: `_passes` decides, `_check` says why not."""
    return [] if _passes(r) else _check(r, row)


def _check(r: Mapping[str, str], row: int | None) -> list[Problem]:
    """The checks of one record already keyed by field (see `normalise`)."""
    problems: list[Problem] = []

    def bad(code: str, field: str, message: str) -> None:
        problems.append(Problem(code, field, f"{COLUMN.get(field, field)}：{message}", row))

    for key, _column, required in FIELDS:
        if required and not r.get(key):
            bad("required", key, "必须填写")
    # Names: as on the ID document; characters no font has are written as upper-case pinyin without tones.
    name = r.get("name", "")
    if name and not _NAME.fullmatch(name):
        bad("name_format", "name", f"应与身份证件上的姓名一致（汉字，或大写拼音/护照姓名），收到“{name}”")
    gender = r.get("gender", "")
    if gender and gender not in ("男", "女"):
        bad("gender", "gender", f"应为“男”或“女”，收到“{gender}”")
    dates: dict[str, date | None] = {}
    for key in ("birth_date", "conferral_date", "graduation_date", "enrolment_date"):
        value = r.get(key, "")
        if value:
            dates[key] = parse_yyyymmdd(value)
            if dates[key] is None:
                bad("date_format", key, f"日期格式应为 CCYYMMDD（如 20240630），收到“{value}”")
    id_type, id_number = r.get("id_type", ""), r.get("id_number", "")
    if id_type and id_type not in ID_TYPES:
        bad("id_type", "id_type", f"应为{'、'.join(sorted(ID_TYPES - {'其他'}))}或“其他”，收到“{id_type}”")
    if id_type == RESIDENT_ID and id_number:
        try:
            born = resident_id_birth_date(id_number)
        except ValidationError as error:
            bad(
                "id_number",
                "id_number",
                f"不是有效的居民身份证号码（18位，含校验码）：{_stdnum_reason(error)}",
            )
        else:
            if dates.get("birth_date") and dates["birth_date"] != born:
                bad("birth_date_mismatch", "birth_date", f"与身份证件号码中的出生日期 {born:%Y%m%d} 不一致")
            expected = (
                "男"
                if int(id_number[16] if len(id_number) == 18 else ric.compact(id_number)[16]) % 2
                else "女"
            )
            if gender in ("男", "女") and gender != expected:
                bad("gender_mismatch", "gender", f"与身份证件号码第17位（顺序码）所示性别“{expected}”不一致")
    international = id_type in ("护照", "外国人永久居留身份证") and r.get("country", "") not in ("", "中国")
    ethnicity = r.get("ethnicity", "")
    if ethnicity and ethnicity not in ETHNICITIES:
        bad("ethnicity", "ethnicity", f"应为 GB/T 3304 的56个民族名称之一或“其他”，收到“{ethnicity}”")
    if not ethnicity and not international:
        bad("required", "ethnicity", "必须填写（国际学生不填）")
    if ethnicity and international:
        bad("ethnicity_international", "ethnicity", "国际学生不填民族")
    # Certificate number: 16 digits = unit code (5) + level digit + conferral year (4) + sequence (6).
    cert, unit_code = r.get("cert_no", ""), r.get("unit_code", "")
    level = degree_level(r.get("degree_type", ""))
    conferral = dates.get("conferral_date")
    if unit_code and not re.fullmatch(r"\d{5}", unit_code):
        bad("unit_code", "unit_code", f"学位授予单位码应为5位数字，收到“{unit_code}”")
    if cert:
        if unit_code and not cert.startswith(unit_code):
            bad("cert_unit", "cert_no", f"前5位应为学位授予单位码 {unit_code}，收到“{cert}”")
        if re.fullmatch(r"\d{16}", cert):
            if level and cert[5] != LEVEL_DIGIT[level]:
                bad("cert_level", "cert_no",
                    f"第6位（学位级别）应为 {LEVEL_DIGIT[level]}（{LEVEL_NAMES[level]}），收到“{cert[5]}”")  # fmt: skip
            if conferral and cert[6:10] != f"{conferral.year:04d}":
                bad("cert_year", "cert_no", f"第7-10位（授予年份）应为 {conferral.year}，收到“{cert[6:10]}”")
        elif re.fullmatch(r"[0-9A-Za-z]{16}", cert) and conferral and conferral.year < 2016:
            pass  # numbers issued before 学位〔2015〕18号 took effect may carry letters: accepted
        else:
            bad("cert_format", "cert_no", f"应为16位数字（学位〔2015〕18号），收到“{cert}”")
    if conferral and dates.get("graduation_date") and conferral < dates["graduation_date"]:  # type: ignore[operator]
        bad("conferral_before_graduation", "conferral_date", "不应早于毕业日期")
    # Thesis.
    thesis_type = r.get("thesis_type", "")
    if thesis_type and level:
        allowed = THESIS_TYPES["bachelor" if level == "bachelor" else "postgraduate"]
        if thesis_type not in allowed:
            bad("thesis_type", "thesis_type",
                f"{LEVEL_NAMES[level]}应选填{'、'.join(sorted(allowed))}，收到“{thesis_type}”")  # fmt: skip
    if thesis_type == "无":
        for key in THESIS_FIELDS:
            if r.get(key):
                bad("thesis_not_empty", key, "论文类型为“无”时不填")
    elif thesis_type:
        if not r.get("thesis_title"):
            bad("required", "thesis_title", "必须填写（论文类型不为“无”）")
        source = r.get("topic_source", "")
        if source and source not in TOPIC_SOURCES:
            bad("topic_source", "topic_source", f"应按选题来源表选填或填写“其他”，收到“{source}”")
        directions = [d for d in _SEPARATORS.split(r.get("research_directions", "")) if d.strip()]
        if len(directions) > 2:
            bad("research_directions", "research_directions", f"至多填2个方向，收到 {len(directions)} 个")
    for key in ("supervisors", "thesis_keywords"):
        value = r.get(key, "")
        if value and re.search(r"[,，、]", value):
            bad("separator", key, "多个值须用中文或英文分号分隔")
    return problems


_REQUIRED = tuple(key for key, _, required in FIELDS if required)
_INTERNATIONAL_ID_TYPES = ("护照", "外国人永久居留身份证")
_UNIT_CODE = re.compile(r"\d{5}").fullmatch
_CERT_DIGITS = re.compile(r"\d{16}").fullmatch
_CERT_LETTERS = re.compile(r"[0-9A-Za-z]{16}").fullmatch
_LIST_COMMA = re.compile(r"[,，、]").search
_name_ok = _NAME.fullmatch
_plain_ric = _PLAIN_RIC.fullmatch
_ric_check_digit = ric.calc_check_digit
_level_of = functools.lru_cache(maxsize=256)(degree_level)
_ALLOWED_THESIS = {
    level: THESIS_TYPES["bachelor" if level == "bachelor" else "postgraduate"] for level in LEVEL_DIGIT
}


def _passes(r: Mapping[str, str]) -> bool:
    """True only when `_check(r)` finds nothing: every rule of `_check`, written for speed (no problem
    objects, no messages, cached date and level parsing). Every row goes through it; a row it refuses goes
    through `_check` for the problems (so refusing a valid row in some odd form costs time, never a wrong
    answer). tests/test_degree_record.py checks the two agree on generated records."""
    get = r.get
    if not all(map(get, _REQUIRED)):
        return False
    name, gender, id_type, id_number = r["name"], r["gender"], r["id_type"], r["id_number"]
    if not _name_ok(name) or (gender != "男" and gender != "女") or id_type not in ID_TYPES:
        return False
    birth, conferral = _date_of(r["birth_date"]), _date_of(r["conferral_date"])
    if birth is None or conferral is None:
        return False
    graduation_date, enrolment_date = get("graduation_date"), get("enrolment_date")
    graduation = None
    if graduation_date:
        graduation = _date_of(graduation_date)
        if graduation is None or conferral < graduation:
            return False
    if enrolment_date and _date_of(enrolment_date) is None:
        return False
    if id_type == RESIDENT_ID:
        if _plain_ric(id_number):  # resident_id_birth_date's rules, its birth date compared as text
            if (
                id_number[17] != _ric_check_digit(id_number)
                or id_number[6:14] != r["birth_date"]
                or not _area_known(id_number[:10])
            ):
                return False
            sequence = id_number[16]
        else:
            try:
                born = resident_id_birth_date(id_number)
            except ValidationError:
                return False
            if born != birth:
                return False
            sequence = id_number[16] if len(id_number) == 18 else ric.compact(id_number)[16]
        if ("男" if int(sequence) % 2 else "女") != gender:
            return False
    ethnicity = get("ethnicity")
    international = id_type in _INTERNATIONAL_ID_TYPES and r["country"] != "中国"
    if ethnicity:
        if international or ethnicity not in ETHNICITIES:
            return False
    elif not international:
        return False
    cert, unit_code = r["cert_no"], r["unit_code"]
    level = _level_of(r["degree_type"])
    if not _UNIT_CODE(unit_code) or not cert.startswith(unit_code):
        return False
    if _CERT_DIGITS(cert):
        if (level and cert[5] != LEVEL_DIGIT[level]) or cert[6:10] != r["conferral_date"][:4]:
            return False
    elif not (conferral.year < 2016 and _CERT_LETTERS(cert)):
        return False
    thesis_type = r["thesis_type"]
    if level and thesis_type not in _ALLOWED_THESIS[level]:
        return False
    if thesis_type == "无":
        if any(map(get, THESIS_FIELDS)):
            return False
    else:
        if not get("thesis_title"):
            return False
        source = get("topic_source")
        if source and source not in TOPIC_SOURCES:
            return False
        directions = get("research_directions")
        if directions and directions.count(";") + directions.count("；") > 1:
            if len([d for d in _SEPARATORS.split(directions) if d.strip()]) > 2:
                return False
    supervisors, keywords = get("supervisors"), get("thesis_keywords")
    return not ((supervisors and _LIST_COMMA(supervisors)) or (keywords and _LIST_COMMA(keywords)))


# Fields that may differ between the two records of a double bachelor's degree.
_DOUBLE_BACHELOR_FREE = frozenset({"degree_type_code", "degree_type", "cert_no", "major_code", "major", "thesis_title",
                                   "thesis_keywords", "thesis_type", "topic_source", "research_directions",
                                   "supervisors", "student_no"})  # fmt: skip


class BatchChecker:
    """Checks a batch one record at a time, keeping only what the rules across records need (never the
    records themselves), so a file of a million rows is checked in constant memory per row."""

    def __init__(self, first_row: int = 2):
        self.row = first_row - 1
        self.seen: dict[str, int] = {}
        self.dates: set[str] = set()
        self.bachelors: dict[tuple[str, str], list[tuple[int, str, bytes]]] = {}

    def add(self, record: Mapping[str, Any]) -> list[Problem]:
        r = as_fields(record)
        self.row += 1
        problems = check_fields(r, self.row)
        cert = r.get("cert_no", "")
        if cert:
            if cert in self.seen:
                problems.append(self._duplicate(cert, self.row))
            else:
                self.seen[cert] = self.row
        if r.get("conferral_date"):
            self.dates.add(r["conferral_date"])
        entry = self.bachelor_entry(r)
        if entry is not None:
            key, type_code, same = entry
            self.bachelors.setdefault(key, []).append((self.row, type_code, same))
        return problems

    def _duplicate(self, cert: str, row: int) -> Problem:
        return Problem(
            "duplicate_cert_no", "cert_no", f"学位证书编号：{cert} 与第 {self.seen[cert]} 行重复", row
        )

    def add_numbers(self, certs: list[str], first_row: int) -> list[Problem]:
        """The certificate numbers of consecutive rows from `first_row` ("" where none): the duplicates."""
        seen = self.seen
        if all(certs) and len(set(certs)) == len(certs) and seen.keys().isdisjoint(certs):
            seen.update(zip(certs, range(first_row, first_row + len(certs)), strict=True))
            return []
        problems = []
        for row, cert in enumerate(certs, first_row):
            if cert:
                if cert in seen:
                    problems.append(self._duplicate(cert, row))
                else:
                    seen[cert] = row
        return problems

    def add_block(
        self, first_row: int, count: int, dates: set[str], bachelors: list[tuple[Any, ...]]
    ) -> None:
        """What the batch rules keep of `count` rows from `first_row` checked elsewhere (`check_rows`)."""
        self.dates |= dates
        for index, key, type_code, same in bachelors:
            self.bachelors.setdefault(key, []).append((first_row + index, type_code, same))
        self.row = first_row + count - 1

    @staticmethod
    def bachelor_entry(r: Mapping[str, str]) -> tuple[tuple[str, str], str, bytes] | None:
        """For a bachelor's record: (its person key, its degree type code, a digest of the fields that must
        agree between the two records of a double bachelor's degree); the same in every process."""
        if _level_of(r.get("degree_type", "")) != "bachelor":
            return None
        same = sorted((k, v) for k, v in r.items() if k not in _DOUBLE_BACHELOR_FREE)
        digest = hashlib.blake2b(repr(same).encode(), digest_size=16).digest()
        return (r.get("id_type", ""), r.get("id_number", "")), r.get("degree_type_code", ""), digest

    def finish(self) -> list[Problem]:
        problems = []
        if len(self.dates) > 1:
            problems.append(Problem("batch_conferral_date", "conferral_date",
                                    f"获学位日期：同一批次应为同一日期，收到 {'、'.join(sorted(self.dates))}"))  # fmt: skip
        # A double bachelor's degree is two records differing only in degree type (code and name) and the like.
        for (_, id_number), group in self.bachelors.items():
            if len(group) < 2:
                continue
            rows = "、".join(str(row) for row, _, _ in group)
            if len(group) > 2:
                problems.append(Problem("double_bachelor", "id_number",
                                        f"身份证件号码：{id_number} 有 {len(group)} 条学士记录（第 {rows} 行；双学士至多2条）"))  # fmt: skip
                continue
            (_, first_type, first_same), (second_row, second_type, second_same) = group
            if first_type == second_type:
                problems.append(Problem("double_bachelor", "degree_type_code",
                                        f"学位类别码：{id_number} 的两条学士记录（第 {rows} 行）学位类别相同", second_row))  # fmt: skip
            if first_same != second_same:
                problems.append(Problem("double_bachelor", "id_number",
                                        f"身份证件号码：{id_number} 的两条学士记录（第 {rows} 行）除学位类别、专业和论文外还有不同",
                                        second_row))  # fmt: skip
        return problems


def check_batch(records: Iterable[Mapping[str, Any]], first_row: int = 2) -> list[Problem]:
    """Per-record checks plus the rules across a batch (row numbers as in a file with one header line)."""
    checker = BatchChecker(first_row)
    problems = [problem for record in records for problem in checker.add(record)]
    return problems + checker.finish()


def _stdnum_reason(error: ValidationError) -> str:
    return {"InvalidChecksum": "校验码错误", "InvalidLength": "长度应为18位", "InvalidFormat": "格式不正确",
            "InvalidComponent": "出生日期或地区码不正确"}.get(type(error).__name__, str(error))  # fmt: skip
