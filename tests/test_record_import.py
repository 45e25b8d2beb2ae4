"""The fast paths of the records import agree with the plain ones: the CSV line reader with `csv.reader`, the
row predicate with the full checks, the checking in worker processes with checking row by row, the JSON
written from a template with `json.dumps`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cases import record_files, record_workers, records
from cases.degree_record import COLUMN, Fields, _check, _passes, check_record, normalise
from db import DegreeRecord
from tests.test_degree_record import VALID
from workflow import InvalidPayload

CENTER = "xwzx01"  # the Degree Center: its import is the national database, as a filing is
CELL = st.text(alphabet=st.sampled_from(list('ab 张,"\r\n\t;；\\') + ["\x00", "\u3000"]), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(CELL, max_size=4), max_size=5), terminator=st.sampled_from(["\r\n", "\n", "\r"])
)
def test_csv_lines_are_read_as_csv_reader_reads_them(rows, terminator):
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    text = buffer.getvalue()
    assert list(record_files.csv_records(io.StringIO(text, newline=""))) == list(
        csv.reader(io.StringIO(text, newline=""))
    )


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list('ab,"\r\n ')), max_size=40))
def test_any_text_is_read_as_csv_reader_reads_it(text):
    expected = list(csv.reader(io.StringIO(text, newline="")))
    assert list(record_files.csv_records(io.StringIO(text, newline=""))) == expected
    # Blocks end where records end: read block by block, the records are the same.
    blocks = list(record_workers.blocks(io.StringIO(text, newline=""), size=7))
    assert "".join(blocks) == text
    assert [r for b in blocks for r in csv.reader(io.StringIO(b, newline=""))] == expected


VALUES = {
    "name": ["张伟", "NGUYEN VAN AN", "zhang", "张伟1", ""],
    "gender": ["男", "女", "M", ""],
    "birth_date": ["19491231", "19491230", "1949-12-31", "19490231", ""],
    "ethnicity": ["汉族", "汉", "其他", ""],
    "id_type": ["中华人民共和国居民身份证", "护照", "外国人永久居留身份证", "身份证", ""],
    "id_number": ["11010519491231002X", "110105194912310021", "11010519491231001X", "11010519491231002x",
                  " 11010519491231002X", "999999194912310020", "E12345678", ""],
    "country": ["中国", "越南", ""],
    "unit_code": ["10635", "1063", "10611", ""],
    "degree_type": ["工学硕士", "工学学士", "工学博士", "文学", ""],
    "conferral_date": ["20240630", "20100630", "20240620", "2024063", ""],
    "cert_no": ["1063532024000123", "1063542024000123", "1063522024000123", "1063532023000123",
                "10635A2010000123", "10635A2024000123", "1061132024000123", "10635320240001", ""],
    "thesis_type": ["应用研究", "毕业论文", "毕业设计", "无", ""],
    "thesis_title": ["山地城市桥梁抗震研究", ""],
    "thesis_keywords": ["桥梁；抗震", "桥梁，抗震", ""],
    "topic_source": ["国家自然科学基金项目", "自拟", ""],
    "research_directions": ["桥梁工程;结构抗震", "a;b;c", "a;;b", "a；b；", ""],
    "supervisors": ["王强;李红", "王强、李红", ""],
    "graduation_date": ["20240625", "20240701", "2024", "20100625", ""],
    "enrolment_date": ["20210901", "2021-09-01", ""],
    "thesis_language": ["汉语", ""],
}  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_the_fast_predicate_never_passes_a_record_the_checks_refuse(data):
    record = dict(normalise(VALID))
    for key in data.draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=5, unique=True)):
        record[key] = data.draw(st.sampled_from(VALUES[key]))
    problems = _check(record, 2)
    assert not (_passes(record) and problems), problems
    assert check_record(record, 2) == problems


def test_plain_valid_records_take_the_fast_path():
    assert _passes(normalise(VALID))
    student = normalise({**VALID, "民族": "", "身份证件类型": "护照", "身份证件号码": "E12345678",
                         "国家或地区": "越南", "姓名": "NGUYEN VAN AN"})  # fmt: skip
    assert _passes(student)


def test_fields_rows_need_no_normalising(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(
        ",".join(VALID) + ",\n" + ",".join(f" {v} " for v in VALID.values()) + ",x\n\n", encoding="utf-8"
    )
    (row,) = record_files.read_rows(path)
    assert type(row) is Fields and dict(row) == normalise(VALID)  # the column without a name is left out


def _person(i, **change):
    return {
        **VALID,
        "姓名": f"张{'伟芳娜敏静丽强磊军洋'[i % 10]}",
        "学位证书编号": f"106353202400{i:04d}",
        **change,
    }


def _mixed_rows():
    """Good rows, every kind of problem (per row and across rows), quoted cells with commas and line breaks."""
    rows = [_person(i) for i in range(1, 120)]
    rows[5] = _person(6, **{"身份证件号码": "110105194912310021"})
    rows[17] = _person(5)  # the same certificate number as row 7
    rows[30] = _person(31, **{"论文题目": '桥梁, 隧道\n与"抗震"研究'})
    rows[44] = _person(45, **{"学位授予单位码": "10611"})
    rows[60] = _person(61, **{"论文类型": "无"})
    rows[61] = _person(62, **{"毕业日期": "20240701", "性别": "男"})
    first = _person(
        90, **{"学位类别": "工学学士", "学位证书编号": "1063542024000090", "论文类型": "毕业论文"}
    )
    rows[89] = first
    rows[90] = {**first, "学位证书编号": "1063542024000091"}  # a second bachelor's of the same type
    rows.insert(100, {column: "" for column in VALID})  # a blank line is not a row
    return rows


def _write(path, rows):
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(VALID))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def test_checking_in_workers_finds_what_checking_row_by_row_finds(flow, tmp_path, monkeypatch):
    flow.records_import(_write(tmp_path / "filed.csv", [_person(200), _person(3)]), "10635", as_user=CENTER)
    path = _write(tmp_path / "mixed.csv", _mixed_rows())
    monkeypatch.setenv("DEGREEFLOW_RECORD_WORKERS", "0")
    with flow.db.connect() as conn:
        serial = records.check_for_import(conn, record_files.iter_rows(path), "10635")
    monkeypatch.setenv("DEGREEFLOW_RECORD_WORKERS", "2")
    monkeypatch.setattr(record_workers, "MIN_BYTES", 0)
    monkeypatch.setattr(record_workers, "BLOCK_CHARS", 2000)  # many blocks, some cut inside quotes
    assert record_workers.applies(record_files.iter_rows(path))
    with flow.db.connect() as conn:
        parallel = records.check_for_import(conn, record_files.iter_rows(path), "10635")
    codes = {p.code for p in serial}
    assert {"id_number", "duplicate_cert_no", "cert_no_filed", "unit_mismatch", "thesis_not_empty",
            "conferral_before_graduation", "gender_mismatch", "double_bachelor"} <= codes  # fmt: skip
    assert parallel == serial
    # The import refuses the whole file, then stores the good rows with --skip-invalid.
    with pytest.raises(InvalidPayload):
        flow.records_import(path, "10635", as_user=CENTER)
    result = flow.records_import(path, "10635", skip_invalid=True, as_user=CENTER)
    assert result["stored"] == 119 - result["skipped"]


def test_stored_data_are_the_rows_json_whatever_they_hold(flow, tmp_path):
    rows = [
        _person(1),
        _person(2, **{"论文题目": '桥梁"抗震"\\研究\t一'}),
        _person(3, **{"论文题目": "桥梁\u3000研究"}),
    ]
    flow.records_import(_write(tmp_path / "odd.csv", rows), "10635", as_user=CENTER)
    with flow.db.connect() as conn:
        stored = {r.cert_no: r.data for r in conn.execute(select(DegreeRecord.__table__))}
    for row in rows:
        assert stored[row["学位证书编号"]] == {
            key: row[column] for key, column in COLUMN.items() if column in row
        }
    json_text = record_workers.JsonText()
    for row in (Fields(a="张", b="x"), Fields(a='"', b="\\"), {"a": 1, "b": None}, Fields(b="1", a="2")):
        assert json_text(row) == json.dumps(row, ensure_ascii=False)


def _stored(flow, conn=None):
    if conn is None:
        with flow.db.connect() as conn:
            return _stored(flow, conn)
    return sorted((r.cert_no, r.name, r.id_number, r.unit_code, r.degree_type, r.conferral_date, json.dumps(r.data))
                  for r in conn.execute(select(DegreeRecord.__table__)))  # fmt: skip


@pytest.mark.parametrize("workers", ["0", "2"])
def test_one_pass_import_finds_and_stores_what_check_then_store_does(flow, tmp_path, monkeypatch, workers):
    """`records.import_file` (one pass) against the service's import (check, then store) on the same file."""
    from db import transaction

    flow.records_import(_write(tmp_path / "filed.csv", [_person(200), _person(3)]), "10635", as_user=CENTER)
    path = _write(tmp_path / "mixed.csv", _mixed_rows() + [_person(3)])  # filed, and repeated in the file
    monkeypatch.setenv("DEGREEFLOW_RECORD_WORKERS", workers)
    monkeypatch.setattr(record_workers, "MIN_BYTES", 0)
    monkeypatch.setattr(record_workers, "BLOCK_CHARS", 2000)
    with flow.db.connect() as conn:
        expected = records.check_for_import(conn, record_files.iter_rows(path), "10635")
    before = _stored(flow)
    now = flow.clock.now()
    with transaction(flow.db) as conn:
        stored, problems = records.import_file(
            conn, record_files.iter_rows(path), "10635", now, "import:mixed.csv"
        )
        assert problems == expected and stored == 0
        conn.rollback()
    progress = []
    with transaction(flow.db) as conn:
        stored, problems = records.import_file(conn, record_files.iter_rows(path), "10635", now, "import:mixed.csv",
                                               skip_invalid=True, progress=progress.append)  # fmt: skip
        assert problems == expected
        one_pass = _stored(flow, conn)
        conn.rollback()
    assert _stored(flow) == before
    result = flow.records_import(path, "10635", skip_invalid=True, as_user=CENTER)
    assert stored == result["stored"] and sum(progress) >= stored
    assert one_pass == _stored(flow)


def test_filed_numbers_are_found_in_chunks(flow, tmp_path, monkeypatch):
    monkeypatch.setattr(records, "LOOKUP", 2)
    flow.records_import(_write(tmp_path / "a.csv", [_person(i) for i in range(1, 6)]), "10635", as_user=CENTER)
    with flow.db.connect() as conn:
        found = records.existing(conn, [f"106353202400{i:04d}" for i in range(0, 9)] + ["1063532024000001"])
    assert found == {f"106353202400{i:04d}" for i in range(1, 6)}


def test_with_other_threads_running_workers_start_from_a_fork_server(sqlite_flow, tmp_path, monkeypatch):
    path = _write(tmp_path / "mixed.csv", _mixed_rows())
    monkeypatch.setenv("DEGREEFLOW_RECORD_WORKERS", "0")
    with sqlite_flow.db.connect() as conn:
        serial = records.check_for_import(conn, record_files.iter_rows(path), "10635")
    monkeypatch.setenv("DEGREEFLOW_RECORD_WORKERS", "2")
    monkeypatch.setattr(record_workers, "MIN_BYTES", 0)
    monkeypatch.setattr(record_workers, "BLOCK_CHARS", 4000)
    monkeypatch.setattr(record_workers.threading, "active_count", lambda: 2)
    with sqlite_flow.db.connect() as conn:
        assert records.check_for_import(conn, record_files.iter_rows(path), "10635") == serial
