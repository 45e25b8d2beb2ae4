"""Backups and case dossiers: a consistent, checked database copy, and an archive checkable without degreeflow."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import typer
from pypdf import PdfReader
from sqlalchemy import func, select
from typer.testing import CliRunner

from cases.service import DegreeFlow
from db import Case, CaseEvent, make_engine
from degreeflow import backup as backups
from degreeflow import cli, cli_backup
from degreeflow.pdf import PdfRenderer
from tests.helpers import attach_required, open_case
from workflow import Conflict, NotFound

PDF_HEAD = b"%PDF-1.4\n% test attachment\n"


@pytest.fixture(scope="module")
def pdf() -> PdfRenderer:
    return PdfRenderer()


def _revoked(flow: DegreeFlow, data_dir: Path | None = None) -> int:
    """A revocation walked to the end: unit submits and verifies (the report is issued), province, national.
    `data_dir`: where the application run later keeps its files (the revocation resolution is uploaded there)."""
    if data_dir is not None:
        flow.attachments_dir = data_dir / "attachments"
    case_id = open_case(flow, "revocation")
    flow.fire(case_id, "submit", "10635XW01", payload={"resolution_no": "西南大学学位〔2026〕3号"})
    attach_required(flow, case_id, "verify")
    flow.fire(case_id, "verify", "10635XW02")
    flow.fire(case_id, "confirm", "prov50")
    flow.fire(case_id, "revoke", "xwb01")
    assert flow.show(case_id)["state"] == "revoked"
    return case_id


def _pdf_text(data: bytes) -> str:
    return "".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def _unpack(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(into)
    return into


def _verify(directory: Path) -> subprocess.CompletedProcess[str]:
    """Run the archive's own checker with a bare Python: no site-packages, no degreeflow on the path."""
    return subprocess.run(
        [sys.executable, "-I", "-S", "verify_chain.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={"PATH": os.environ.get("PATH", ""), "PYTHONIOENCODING": "utf-8"},
        timeout=60,
    )


def _rewrite_sums(directory: Path) -> None:
    """What a careless forger does: fix SHA256SUMS and the manifest after editing a file."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    for item in manifest["files"]:
        item["sha256"] = hashlib.sha256((directory / item["path"]).read_bytes()).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    lines = []
    for line in (directory / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        name = line[66:]
        lines.append(f"{hashlib.sha256((directory / name).read_bytes()).hexdigest()}  {name}\n")
    (directory / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


# -- the dossier ------------------------------------------------------------------------------------------
def test_a_revocation_dossier_holds_everything_and_checks_without_degreeflow(flow, pdf, tmp_path):
    case_id = _revoked(flow, tmp_path)
    flow.add_attachment(case_id, "10635XW01", "撤销决议.pdf", PDF_HEAD + b"1", 1 << 20)
    flow.add_attachment(case_id, "10635XW01", "撤销决议.pdf", PDF_HEAD + b"2", 1 << 20)  # same name twice
    target = tmp_path / "out" / f"案件-{case_id}.zip"
    result = backups.export_case(flow, case_id, "prov50", target, pdf=pdf)
    assert result["verified"] and result["audit"]["ok"] and target.is_file()
    assert result["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert not list(target.parent.glob(".*partial*"))

    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        read = {name: archive.read(name) for name in names}
    for name in ("README.txt", "manifest.json", "SHA256SUMS", "case.json", "history.json", "documents.json",
                 "attachments.json", "verify_chain.py"):  # fmt: skip
        assert name in names

    case = json.loads(read["case.json"])
    assert case["id"] == case_id and case["state"] == "revoked" and case["rule_set"] == "2020"
    assert case["organisation"]["code"] == "10635" and case["organisation"]["province"]["code"] == "50"
    assert case["payload"]["cert_no"] == "1063542021000321" and case["deadlines"]

    history = json.loads(read["history.json"])
    with flow.db.connect() as conn:
        stored = conn.execute(
            select(CaseEvent.__table__).where(CaseEvent.__table__.c.case_id == case_id).order_by("seq")
        ).all()
    assert [(e["seq"], e["trigger"], e["hash"], e["prev_hash"]) for e in history] == [
        (e.seq, e.trigger, e.hash, e.prev_hash) for e in stored
    ]
    assert [e["trigger"] for e in history][-4:] == ["submit", "verify", "confirm", "revoke"]
    assert [e["actor_username"] for e in history][-4:] == ["10635XW01", "10635XW02", "prov50", "xwb01"]
    assert case["head"] == {"last_seq": len(history), "hash": history[-1]["hash"]}

    documents = json.loads(read["documents.json"])
    assert [d["kind"] for d in documents] == ["revocation_report"]
    report = documents[0]
    assert report["sha256"] == flow.documents(case_id)[0]["sha256"]
    assert report["event_seq"] == next(e["seq"] for e in history if e["trigger"] == "verify")
    assert report["file"] == f"documents/{report['number']}.pdf" and report["template_current"]
    text = _pdf_text(read[report["file"]])
    assert report["number"] in text and "关于撤销钱某某学位的报告" in text and "1063542021000321" in text

    attachments = json.loads(read["attachments.json"])[1:]  # the first: the resolution the report encloses
    assert len({a["file"] for a in attachments}) == 2
    assert [read[a["file"]] for a in attachments] == [PDF_HEAD + b"1", PDF_HEAD + b"2"]

    manifest = json.loads(read["manifest.json"])
    assert manifest["exported_by"]["username"] == "prov50" and manifest["exported_at"].startswith(
        "2026-11-20T09:00"
    )
    assert manifest["head"] == case["head"] and manifest["audit_chain_in_database"]["ok"]
    assert {f["path"] for f in manifest["files"]} == set(names) - {"manifest.json", "SHA256SUMS"}
    for item in manifest["files"]:
        assert hashlib.sha256(read[item["path"]]).hexdigest() == item["sha256"]
    sums = read["SHA256SUMS"].decode("utf-8").splitlines()
    assert {line[66:] for line in sums} == set(names) - {"SHA256SUMS"}
    readme = read["README.txt"].decode("utf-8")
    assert (
        "sha256sum -c SHA256SUMS" in readme and "verify_chain.py" in readme and case["head"]["hash"] in readme
    )

    directory = _unpack(target, tmp_path / "unpacked")
    if shutil.which("sha256sum"):
        coreutils = subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"], cwd=directory, capture_output=True, text=True
        )
        assert coreutils.returncode == 0, coreutils.stdout + coreutils.stderr
    checked = _verify(directory)
    assert checked.returncode == 0, checked.stdout
    assert "核验通过" in checked.stdout and history[-1]["hash"] in checked.stdout


def test_the_standalone_checker_finds_every_kind_of_tampering(sqlite_flow, pdf, tmp_path):
    flow = sqlite_flow
    case_id = _revoked(flow)
    target = tmp_path / "dossier.zip"
    backups.export_case(flow, case_id, "xwb01", target, pdf=pdf)

    def tampered(name: str, edit) -> str:  # type: ignore[no-untyped-def]
        directory = _unpack(target, tmp_path / name)
        edit(directory)
        done = _verify(directory)
        assert done.returncode == 1, done.stdout
        return done.stdout

    def edit_json(directory: Path, file: str, change) -> None:  # type: ignore[no-untyped-def]
        data = json.loads((directory / file).read_text(encoding="utf-8"))
        change(data)
        (directory / file).write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")

    # A note rewritten in history.json: the file's sum no longer matches.
    out = tampered("note", lambda d: edit_json(d, "history.json", lambda h: h[-1].update(note="改过")))
    assert "history.json" in out
    # The same with the sums and the manifest fixed up: the event's hash gives it away.
    out = tampered("note-resummed", lambda d: (
        edit_json(d, "history.json", lambda h: h[1].update(actor="别人")), _rewrite_sums(d)))  # fmt: skip
    assert "审计记录第 2 条" in out and "内容与其 hash 不符" in out
    # An event removed from the middle, sums fixed: sequence and link break.
    out = tampered("dropped", lambda d: (edit_json(d, "history.json", lambda h: h.pop(2)), _rewrite_sums(d)))
    assert "链条断裂" in out
    # The stored letter content changed (a different name printed), sums fixed: the document hash disagrees.
    out = tampered("letter", lambda d: (
        edit_json(d, "documents.json", lambda docs: docs[0]["context"].update(name="张三")), _rewrite_sums(d)))  # fmt: skip
    assert "内容与系统记录的文书哈希不符" in out
    # A PDF replaced.
    out = tampered("pdf", lambda d: next((d / "documents").iterdir()).write_bytes(b"%PDF-1.4 forged"))
    assert "文件被改动" in out
    # The case's state changed, sums fixed: it no longer agrees with the chain's last event.
    out = tampered(
        "state", lambda d: (edit_json(d, "case.json", lambda c: c.update(state="draft")), _rewrite_sums(d))
    )
    assert "状态 draft" in out


def test_export_respects_scope_and_refuses_to_overwrite(sqlite_flow, pdf, tmp_path):
    flow = sqlite_flow
    case_id = _revoked(flow)
    for outsider in ("10593XW01", "prov45"):  # another unit; another province
        with pytest.raises(NotFound) as hidden:
            backups.export_case(flow, case_id, outsider, tmp_path / f"{outsider}.zip", pdf=pdf)
        assert hidden.value.rule == "case_exists" and not (tmp_path / f"{outsider}.zip").exists()
    with pytest.raises(NotFound):
        backups.export_case(flow, 999, "xwb01", tmp_path / "none.zip", pdf=pdf)
    target = tmp_path / "a.zip"
    backups.export_case(flow, case_id, "10635XW03", target, pdf=pdf)  # the unit's own account
    first = target.read_bytes()
    with pytest.raises(Conflict) as exists:
        backups.export_case(flow, case_id, "xwzx01", target, pdf=pdf)
    assert exists.value.field == "FILE" and "--force" in exists.value.message and target.read_bytes() == first
    backups.export_case(flow, case_id, "xwzx01", target, pdf=pdf, force=True)
    with zipfile.ZipFile(target) as archive:
        assert json.loads(archive.read("manifest.json"))["exported_by"]["username"] == "xwzx01"


def test_a_lost_or_altered_attachment_refuses_the_export(sqlite_flow, pdf, tmp_path):
    flow = sqlite_flow
    flow.attachments_dir = tmp_path / "att"
    case_id = open_case(flow, "revocation")
    stored = flow.add_attachment(case_id, "10635XW01", "证明.pdf", PDF_HEAD, 1 << 20)
    path = flow.attachments_dir / f"{stored['sha256']}.pdf"
    path.write_bytes(PDF_HEAD + b"changed")
    with pytest.raises(backups.dossier.DossierError) as altered:
        backups.export_case(flow, case_id, "10635XW01", tmp_path / "x.zip", pdf=pdf)
    assert altered.value.rule == "attachment_intact" and "证明.pdf" in altered.value.message
    path.unlink()
    with pytest.raises(backups.dossier.DossierError) as lost:
        backups.export_case(flow, case_id, "10635XW01", tmp_path / "x.zip", pdf=pdf)
    assert lost.value.rule == "attachment_file_present"
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".*partial"))


def test_a_case_whose_chain_is_broken_in_the_database_is_exported_as_it_is_and_flagged(
    sqlite_flow, pdf, tmp_path, monkeypatch
):
    flow = sqlite_flow
    monkeypatch.setenv("DEGREEFLOW_DATA_DIR", str(tmp_path / "var"))  # the command below finds the upload there
    case_id = _revoked(flow, tmp_path / "var")
    raw = sqlite3.connect(flow.db.url.database)
    raw.execute("DROP TRIGGER case_events_no_update")  # what an intruder with the database file could do
    raw.execute("UPDATE case_events SET note = '改过' WHERE case_id = ? AND seq = 3", (case_id,))
    raw.commit()
    raw.close()
    target = tmp_path / "evidence.zip"
    result = backups.export_case(flow, case_id, "xwb01", target, pdf=pdf)
    assert not result["audit"]["ok"] and not result["verified"] and target.is_file()
    assert result["audit"]["problems"][0]["seq"] == 3
    with zipfile.ZipFile(target) as archive:
        assert "unzip evidence.zip" in archive.read("README.txt").decode("utf-8")
        assert not json.loads(archive.read("manifest.json"))["audit_chain_in_database"]["ok"]
    checked = _verify(_unpack(target, tmp_path / "evidence"))
    assert checked.returncode == 1 and "审计记录第 3 条" in checked.stdout

    runner = CliRunner()
    done = runner.invoke(_app(), ["--db", _sqlite_url(flow), "case", "export", str(case_id), "--as", "xwb01",
                                  "-o", str(tmp_path / "cli.zip")])  # fmt: skip
    assert done.exit_code == 9 and "审计链有问题" in done.output and (tmp_path / "cli.zip").is_file()


def test_exporting_writes_nothing_to_the_database(flow, pdf, tmp_path):
    case_id = _revoked(flow)
    with flow.db.connect() as conn:
        before = conn.execute(select(Case.__table__).where(Case.__table__.c.id == case_id)).one()
        events = conn.execute(select(func.count()).select_from(CaseEvent.__table__)).scalar_one()
    backups.export_case(flow, case_id, "xwb01", tmp_path / "d.zip", pdf=pdf)
    with flow.db.connect() as conn:
        assert conn.execute(select(Case.__table__).where(Case.__table__.c.id == case_id)).one() == before
        assert conn.execute(select(func.count()).select_from(CaseEvent.__table__)).scalar_one() == events
    assert flow.verify_audit().ok


# -- database backup --------------------------------------------------------------------------------------
def _sqlite_url(flow: DegreeFlow) -> str:
    return flow.db.url.render_as_string(hide_password=False)


def test_sqlite_backup_is_a_checked_copy_and_never_overwrites(sqlite_flow, tmp_path):
    flow = sqlite_flow
    _revoked(flow)
    target = tmp_path / "backups" / "degreeflow-backup.db"
    seen: list[tuple[int, int]] = []
    result = backups.backup_database(_sqlite_url(flow), target, progress=lambda d, t: seen.append((d, t)))
    assert result["integrity"] == "ok" and result["audit"]["ok"] and result["tables"]["case_events"] >= 5
    assert seen and seen[-1][0] == seen[-1][1] == result["pages"]
    assert not Path(f"{target}-wal").exists() and not list(target.parent.glob(".*partial*"))
    copy = sqlite3.connect(target)
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert copy.execute("SELECT count(*) FROM cases").fetchone()[0] == result["tables"]["cases"]
    copy.close()
    restored = DegreeFlow(make_engine(f"sqlite:///{target}"))
    assert restored.verify_audit().ok and restored.list_cases()[0]["state"] == "revoked"
    restored.db.dispose()

    before = target.read_bytes()
    with pytest.raises(Conflict) as exists:
        backups.backup_database(_sqlite_url(flow), target)
    assert exists.value.rule == "file_exists" and target.read_bytes() == before
    assert backups.backup_database(_sqlite_url(flow), target, force=True)["audit"]["ok"]
    with pytest.raises(NotFound):
        backups.backup_database(f"sqlite:///{tmp_path}/missing.db", tmp_path / "m.db")
    assert not (tmp_path / "missing.db").exists()


def test_sqlite_backup_while_the_application_writes_is_one_consistent_moment(sqlite_flow, tmp_path):
    flow = sqlite_flow
    for _ in range(3):
        _revoked(flow)
    # Many small steps, so that cases are opened and walked between the backup's steps.
    writer_flow = DegreeFlow(make_engine(_sqlite_url(flow)), flow.clock)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                _revoked(writer_flow)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=write)
    original = backups.STEP_PAGES
    backups.STEP_PAGES = 1
    try:
        thread.start()
        result = backups.backup_database(_sqlite_url(flow), tmp_path / "live.db")
    finally:
        stop.set()
        thread.join()
        backups.STEP_PAGES = original
        writer_flow.db.dispose()
    assert not errors
    assert result["pages"] > 10 and result["audit"]["ok"]
    with flow.db.connect() as conn:
        now_cases = conn.execute(select(func.count()).select_from(Case.__table__)).scalar_one()
    assert now_cases > result["tables"]["cases"]  # the application went on writing during the copy


def test_a_broken_chain_refuses_the_backup(sqlite_flow, tmp_path):
    flow = sqlite_flow
    case_id = _revoked(flow)
    raw = sqlite3.connect(flow.db.url.database)
    raw.execute("DROP TRIGGER case_events_no_update")  # what an intruder with the file could do
    raw.execute("UPDATE case_events SET note = '改过' WHERE case_id = ? AND seq = 2", (case_id,))
    raw.commit()
    raw.close()
    with pytest.raises(backups.BackupError) as broken:
        backups.backup_database(_sqlite_url(flow), tmp_path / "b.db")
    assert broken.value.rule == "backup_audit_chain" and f"案件 #{case_id}" in broken.value.message
    assert not (tmp_path / "b.db").exists() and not list(tmp_path.glob(".*partial*"))


def test_postgresql_backup_runs_pg_dump_on_one_snapshot(flow, tmp_path):
    if flow.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    if not shutil.which("pg_dump"):
        pytest.skip("pg_dump not installed")
    _revoked(flow)
    url = flow.db.url.render_as_string(hide_password=False)
    target = tmp_path / "pg.dump"
    try:
        result = backups.backup_database(url, target)
    except backups.BackupError as error:  # pragma: no cover - a pg_dump older than the server
        if "version mismatch" in error.message:
            pytest.skip(error.message)
        raise
    assert result["backend"] == "postgresql" and result["audit"]["ok"]
    assert result["tables"]["case_events"] >= 5 and target.stat().st_size > 0
    assert "pg_restore --no-owner" in result["restore"]
    with pytest.raises(Conflict):
        backups.backup_database(url, target)


def test_postgresql_without_pg_dump_prints_the_commands(monkeypatch, tmp_path):
    monkeypatch.setattr(backups.shutil, "which", lambda _name: None)
    with pytest.raises(backups.BackupError) as refused:
        backups.backup_database("postgresql://ops@db.example:6543/degreeflow", tmp_path / "x.dump")
    message = refused.value.message
    assert refused.value.rule == "pg_dump_missing" and refused.value.exit_code != 0
    assert "pg_dump --format=custom --no-owner -h db.example -p 6543 -U ops -d degreeflow -f" in message
    assert (
        "pg_restore --no-owner --exit-on-error -h db.example -p 6543 -U ops -d degreeflow_restored" in message
    )
    assert not (tmp_path / "x.dump").exists()


# -- the commands -----------------------------------------------------------------------------------------
def _app() -> typer.Typer:
    """A fresh app with the real global options and the two commands, registered as degreeflow.cli will."""
    app = typer.Typer()
    app.callback()(cli._global)
    app.command("backup")(cli_backup.backup)
    case_app = typer.Typer()
    case_app.command("export")(cli_backup.case_export)
    case_app.command("show")(cli.case_show)
    app.add_typer(case_app, name="case")
    return app


def test_the_commands(sqlite_flow, tmp_path, monkeypatch):
    flow = sqlite_flow
    case_id = _revoked(flow, tmp_path / "var")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEGREEFLOW_DATA_DIR", str(tmp_path / "var"))
    url = _sqlite_url(flow)
    runner = CliRunner()
    app = _app()

    done = runner.invoke(
        app, ["--db", url, "--now", "2026-11-21T10:00", "case", "export", str(case_id), "--as", "prov50"]
    )
    assert done.exit_code == 0, done.output
    assert f"案件-{case_id}.zip" in done.output and "链头" in done.output
    assert (tmp_path / f"案件-{case_id}.zip").is_file()
    again = runner.invoke(app, ["--db", url, "case", "export", str(case_id), "--as", "prov50", "--json"])
    assert again.exit_code == 6 and json.loads(again.output)["error"]["rule"] == "file_exists"
    hidden = runner.invoke(
        app, ["--db", url, "case", "export", str(case_id), "--as", "10593XW01", "-o", "x.zip"]
    )
    assert hidden.exit_code == 4 and "不存在" in hidden.output and not (tmp_path / "x.zip").exists()
    as_json = runner.invoke(
        app, ["--db", url, "case", "export", str(case_id), "--as", "xwb01", "-o", "n.zip", "--json"]
    )
    data = json.loads(as_json.output)
    assert as_json.exit_code == 0 and data["exported_by"] == "xwb01" and data["verified"]
    with zipfile.ZipFile(tmp_path / f"案件-{case_id}.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["exported_at"].startswith("2026-11-21T10:00")

    made = runner.invoke(app, ["--db", url, "backup", "copy.db", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["audit"]["ok"] and (tmp_path / "copy.db").is_file()
    refused = runner.invoke(app, ["--db", url, "backup", "copy.db"])
    assert refused.exit_code == 6 and "--force" in refused.output
    forced = runner.invoke(app, ["--db", url, "backup", "copy.db", "--force"])
    assert forced.exit_code == 0 and "审计链完好" in forced.output

    pg = runner.invoke(
        app, ["--db", "postgresql://ops@db.example:6543/df", "backup", "pg.dump"], env={"PATH": ""}
    )
    assert pg.exit_code == 12 and "pg_dump --format=custom" in pg.output


def test_the_registration_lines_work_on_the_real_app(sqlite_flow, tmp_path):
    """The lines to add to degreeflow/cli.py, tried in a separate process (the real app is left as it is)."""
    flow = sqlite_flow
    case_id = _revoked(flow, tmp_path / "var")
    script = (
        "import sys\n"
        "from degreeflow import cli\n"
        "from degreeflow.cli_backup import backup, case_export\n"
        "cli.app.command('backup')(backup)\n"
        "cli.case_app.command('export')(case_export)\n"
        "sys.argv[0] = 'degreeflow'\n"
        "cli.main()\n"
    )
    env = {
        **os.environ,
        "DEGREEFLOW_DATABASE_URL": _sqlite_url(flow),
        "DEGREEFLOW_DATA_DIR": str(tmp_path / "var"),
    }
    for args in (["case", "export", str(case_id), "--as", "xwb01"], ["backup", "b.db"]):
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
    assert (tmp_path / f"案件-{case_id}.zip").is_file() and (tmp_path / "b.db").is_file()
