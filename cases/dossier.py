"""A case's dossier (案卷): everything about one case, as files that can be checked without degreeflow.

`gather` reads the case, its whole audit history with the hash-chain fields, its issued documents (with the
stored, immutable content each is printed from) and its attachments, in one consistent snapshot, as a person
who may see the case. `archive_files` turns that (plus the PDFs, which the application shell renders) into the
files of the archive: `case.json`, `history.json`, `documents.json`, `documents/<文号>.pdf`,
`attachments.json`, `attachments/<id>-<name>`, `manifest.json` (who exported what, when, and the SHA-256 of
every file), `SHA256SUMS` (coreutils format, for `sha256sum -c`), a `README.txt` in Chinese, and
`verify_chain.py`, a standalone checker using only the Python standard library.

Exporting changes nothing in the database: it is recorded in the archive's manifest (who, when), not in the
case's append-only history, whose chain is the very thing being exported.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cases import letters, voids
from db import Attachment, Case, CaseEvent, Document, Organisation, User
from db.clock import beijing_iso, utc_iso
from workflow import Forbidden, NotFound, WorkflowError
from workflow.audit import GENESIS, verify_chain

if TYPE_CHECKING:
    from cases.service import DegreeFlow

FORMAT = "degreeflow-dossier/1"
CASES = Case.__table__
EVENTS = CaseEvent.__table__
DOCS = Document.__table__
ATTACHMENTS = Attachment.__table__
USERS = User.__table__
ORGS = Organisation.__table__
_SNAPSHOT_TRIES = 5


class DossierError(WorkflowError):
    """The dossier cannot be made complete and true (a file missing or not what the database recorded)."""

    code = "dossier_incomplete"
    exit_code = 12


def default_name(case_id: int) -> str:
    return f"案件-{case_id}.zip"


@dataclass
class DossierDocument:
    meta: dict[str, Any]  # the entry of documents.json (without the PDF's hash, added when it is rendered)
    html: str  # rendered from the stored context, to be set as PDF by the application shell

    @property
    def path(self) -> str:
        return str(self.meta["file"])


@dataclass
class DossierAttachment:
    meta: dict[str, Any]  # the entry of attachments.json
    content: bytes

    @property
    def path(self) -> str:
        return str(self.meta["file"])


@dataclass
class Dossier:
    case: dict[str, Any]
    history: list[dict[str, Any]]
    documents: list[DossierDocument]
    attachments: list[DossierAttachment]
    exported_by: dict[str, Any]
    exported_at: str
    audit: dict[str, Any] = field(default_factory=dict)

    @property
    def case_id(self) -> int:
        return int(self.case["id"])


def safe_part(name: str, limit: int = 120) -> str:
    """A file name inside the archive: no separators, control characters or leading dots; CJK kept."""
    name = unicodedata.normalize("NFC", name or "")
    name = "".join("_" if ch in "/\\" or unicodedata.category(ch)[0] == "C" else ch for ch in name)
    name = name.strip().lstrip(".")
    return name[:limit] or "_"


def gather(flow: DegreeFlow, case_id: int, as_user: str) -> Dossier:
    """Everything about a case that `as_user` may see (another organisation's case is "not found")."""
    exporter = flow.actor(as_user)
    if not exporter.active:
        raise Forbidden(f"用户 {exporter.username} 已停用，不能导出案件", rule="active_user", field="as")
    for _ in range(_SNAPSHOT_TRIES):
        shown = flow.case_for(case_id, exporter.username)  # scope check; labels and deadlines
        snap = _snapshot(flow, case_id)
        if snap["case"].version == shown["version"]:
            break  # nobody acted between the two reads: the view and the snapshot agree
    else:  # pragma: no cover - only under a stream of steps on this very case
        raise WorkflowError(f"案件 #{case_id} 正在频繁变更，请稍后再导出", rule="stable_snapshot")
    row = snap["case"]
    users = snap["users"]
    seq_of_event = {e.id: e.seq for e in snap["events"]}
    case = {
        "id": row.id,
        "type": row.type,
        "type_label": shown["type_label"],
        "state": row.state,
        "state_label": shown["state_label"],
        "rule_set": row.rule_set,
        "version": row.version,
        "organisation": snap["organisation"],
        "opened_at": beijing_iso(row.opened_at),
        "opened_by": users.get(row.opened_by),
        "updated_at": beijing_iso(row.updated_at),
        "closed_at": beijing_iso(row.closed_at),
        "payload": row.payload,
        "deadlines": shown["deadlines"],
        "head": {"last_seq": row.last_seq, "hash": row.head_hash},
    }
    history = [
        {
            "seq": e.seq,
            "at": utc_iso(e.at),  # the exact text that is hashed (UTC, microseconds)
            "at_beijing": beijing_iso(e.at),
            "actor_id": e.actor_id,
            "actor": e.actor_name,
            "actor_username": (users.get(e.actor_id) or {}).get("username"),
            "trigger": e.trigger,
            "from": e.from_state,
            "to": e.to_state,
            "note": e.note,
            "payload": e.payload,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in snap["events"]
    ]
    documents = []
    numbers = {d.id: d.number for d in snap["documents"]}
    used: set[str] = set()
    for d in snap["documents"]:
        name = safe_part(d.number)
        path = f"documents/{name}.pdf"
        if path in used:
            path = f"documents/{name}-{d.id}.pdf"
        used.add(path)
        meta = {
            "id": d.id,
            "number": d.number,
            "kind": d.kind,
            "label": letters.KINDS[d.kind].label if d.kind in letters.KINDS else d.kind,
            "title": d.title,
            "issuer": d.org_name,
            "issued_at": beijing_iso(d.issued_at),
            "issued_by": users.get(d.issued_by),
            "event_seq": seq_of_event.get(d.event_id),
            "replaces": numbers.get(d.replaces_id) if d.replaces_id else None,
            "sha256": d.sha256,
            "template_sha256": d.template_sha256,
            "template_current": d.kind in letters.KINDS
            and d.template_sha256 == letters.template_sha256(d.kind),
            "context": d.context,
            "file": path,
            # 作废: when, by whom and why a later step voided it (None: in force); its PDF carries the mark.
            "void": snap["voids"].get(d.id),
        }
        html = voids.mark_void(letters.render_html(d.kind, d.context), meta["void"])
        documents.append(DossierDocument(meta, html))
    attachments = [_attachment(flow, case_id, a, users, exporter.username) for a in snap["attachments"]]
    return Dossier(
        case=case,
        history=history,
        documents=documents,
        attachments=attachments,
        exported_by={
            "username": exporter.username,
            "name": exporter.name,
            "organisation": exporter.org_code,
            "organisation_name": exporter.org_name,
        },
        exported_at=beijing_iso(flow.clock.now()) or "",
        audit=snap["audit"],
    )


def _snapshot(flow: DegreeFlow, case_id: int) -> dict[str, Any]:
    """The case row, its events, documents and attachments and the chain check, all from one snapshot."""
    with flow.db.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():  # SQLite (WAL): the first read fixes the snapshot until the end of the block
            row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
            if row is None:
                raise NotFound(f"案件 #{case_id} 不存在", rule="case_exists", field="case_id")
            events = conn.execute(
                select(EVENTS).where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq)
            ).all()
            documents = conn.execute(
                letters.document_query().where(DOCS.c.case_id == case_id).order_by(DOCS.c.id)
            ).all()
            attachments = conn.execute(
                select(ATTACHMENTS).where(ATTACHMENTS.c.case_id == case_id).order_by(ATTACHMENTS.c.id)
            ).all()
            document_voids = voids.voids_of(conn, [d.id for d in documents])
            report = verify_chain(conn, case_id)
            user_ids = {row.opened_by} | {e.actor_id for e in events} | {d.issued_by for d in documents}
            user_ids |= {a.uploaded_by for a in attachments}
            users = {
                u.id: {"username": u.username, "name": u.name}
                for u in conn.execute(
                    select(USERS.c.id, USERS.c.username, USERS.c.name).where(USERS.c.id.in_(user_ids))
                )
            }
            org = conn.execute(select(ORGS).where(ORGS.c.id == row.org_id)).one()
            parent = (
                conn.execute(select(ORGS.c.code, ORGS.c.name).where(ORGS.c.id == org.parent_id)).first()
                if org.parent_id
                else None
            )
    organisation = {"code": org.code, "name": org.name, "kind": org.kind,
                    "province": {"code": parent.code, "name": parent.name} if parent else None}  # fmt: skip
    audit = {"ok": report.ok, "events": report.events, "problems": [p.to_dict() for p in report.problems]}
    return {"case": row, "events": events, "documents": documents, "attachments": attachments,
            "users": users, "organisation": organisation, "audit": audit, "voids": document_voids}  # fmt: skip


def _attachment(
    flow: DegreeFlow, case_id: int, row: Any, users: Mapping[int, Any], as_user: str
) -> DossierAttachment:
    label = f"附件 #{row.id}（{row.filename}）"
    try:
        _, path = flow.attachment_file(case_id, row.id, as_user)
    except NotFound:
        raise DossierError(f"{label}：未配置附件目录，无法读取文件", rule="attachment_file_present") from None
    if not path.is_file():
        raise DossierError(
            f"{label}：文件缺失（{path.name}），卷宗不完整，未导出", rule="attachment_file_present"
        )
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise DossierError(
            f"{label}：文件内容与上传时记录的 SHA-256 不符（{row.sha256[:16]}…），未导出",
            rule="attachment_intact",
        )
    meta = {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "uploaded_by": users.get(row.uploaded_by),
        "uploaded_at": beijing_iso(row.uploaded_at),
        "file": f"attachments/{row.id}-{safe_part(row.filename, 100)}",
    }
    return DossierAttachment(meta, content)


# -- the archive's files ----------------------------------------------------------------------------------
def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive_files(
    dossier: Dossier,
    pdfs: Mapping[str, bytes],
    generator: str = "degreeflow",
    archive_name: str | None = None,
) -> dict[str, bytes]:
    """The archive's files in order, path -> bytes. `pdfs`: each document's PDF by its path in the archive."""
    documents = []
    for doc in dossier.documents:
        if doc.path not in pdfs:
            raise DossierError(f"文书 {doc.meta['number']} 的 PDF 未生成", rule="document_rendered")
        documents.append({**doc.meta, "file_sha256": sha256(pdfs[doc.path])})
    content: dict[str, bytes] = {
        "case.json": _json(dossier.case),
        "history.json": _json(dossier.history),
        "documents.json": _json(documents),
        "attachments.json": _json([a.meta for a in dossier.attachments]),
    }
    content.update((doc.path, pdfs[doc.path]) for doc in dossier.documents)
    content.update((a.path, a.content) for a in dossier.attachments)
    content["verify_chain.py"] = VERIFY_SCRIPT.encode("utf-8")
    content["README.txt"] = readme(dossier, archive_name).encode("utf-8")
    manifest = {
        "format": FORMAT,
        "generator": generator,
        "case_id": dossier.case_id,
        "case_type": dossier.case["type"],
        "case_state": dossier.case["state"],
        "exported_by": dossier.exported_by,
        "exported_at": dossier.exported_at,
        "head": dossier.case["head"],
        "events": len(dossier.history),
        "documents": len(dossier.documents),
        "attachments": len(dossier.attachments),
        "audit_chain_in_database": dossier.audit,
        "hash_algorithm": "sha256",
        "files": [
            {"path": path, "bytes": len(data), "sha256": sha256(data)} for path, data in content.items()
        ],
    }
    files = {"README.txt": content.pop("README.txt"), "manifest.json": _json(manifest), **content}
    files["SHA256SUMS"] = "".join(f"{sha256(data)}  {path}\n" for path, data in files.items()).encode("utf-8")
    return files


def readme(dossier: Dossier, archive_name: str | None = None) -> str:
    case, who = dossier.case, dossier.exported_by
    head = case["head"]
    audit = "完好" if dossier.audit.get("ok") else "有问题（见 manifest.json 的 audit_chain_in_database）"
    return README.format(
        id=case["id"],
        type_label=case["type_label"],
        type=case["type"],
        state_label=case["state_label"],
        org=f"{case['organisation']['code']} {case['organisation']['name']}",
        who=f"{who['username']}（{who['name']}，{who['organisation_name']}）",
        at=dossier.exported_at,
        events=len(dossier.history),
        documents=len(dossier.documents),
        attachments=len(dossier.attachments),
        head=head["hash"] or GENESIS,
        last_seq=head["last_seq"],
        audit=audit,
        zip=archive_name or default_name(case["id"]),
        genesis=GENESIS,
    )


README = """\
学位授予信息案件卷宗 —— 案件 #{id}（{type_label}，{type}），当前状态：{state_label}
所属单位：{org}
导出人：{who}
导出时间：{at}（北京时间）
审计记录 {events} 条，文书 {documents} 份，附件 {attachments} 个；导出时系统内的审计链核验：{audit}
链头（最后一条审计记录的哈希，第 {last_seq} 条）：
    {head}

一、卷宗内容
  README.txt        本说明
  manifest.json     清单：导出人、导出时间、链头，以及每个文件的字节数和 SHA-256
  SHA256SUMS        每个文件的 SHA-256（coreutils 格式，可直接用 sha256sum -c 核对）
  case.json         案件数据：类型、状态、适用规则、所属单位、填报数据（payload）、法定时限、链头
  history.json      完整审计记录（按 seq 排序），每条含 seq、at、actor_id、actor、trigger、from、to、
                    note、payload、prev_hash、hash
  documents.json    已签发文书：文号、类别、标题、签发机关、签发时间、所属审计记录（event_seq）、
                    系统记录的文书哈希 sha256、模板哈希 template_sha256、文书内容 context、PDF 文件及其哈希
  documents/*.pdf   每份已签发文书的 PDF，按系统中保存的、不可更改的文书内容排版
  attachments.json  上传的附件：文件名、类型、大小、上传时记录的 SHA-256、上传人、上传时间
  attachments/*     附件原文件
  verify_chain.py   独立核验脚本，只用 Python 3 标准库，不需要 degreeflow

二、不用 degreeflow 如何核验
  1. 解压到一个空目录：  unzip {zip} -d 案件-{id}
  2. 核对每个文件的 SHA-256（Linux）：
         cd 案件-{id} && sha256sum -c SHA256SUMS
     macOS：shasum -a 256 -c SHA256SUMS
     每一行都应显示 OK（或“成功”）。
  3. 重新计算审计哈希链和文书哈希（任何装有 Python 3 的电脑，Windows 亦可）：
         python3 verify_chain.py
     它会核对 SHA256SUMS、manifest.json、审计哈希链、链头、文书哈希与附件哈希；
     全部通过时输出“核验通过”，退出码为 0；否则逐条列出问题，退出码为 1。

三、审计哈希链的计算方法（可用任何语言自行复算）
  每条审计记录的 hash = SHA-256（十六进制小写）of 下面这个 JSON 数组的 UTF-8 编码：
      [案件ID, seq, at, actor_id, actor, trigger, from, to, note, payload, prev_hash]
  其中 案件ID 是 case.json 的 id，其余取 history.json 中该条记录的同名字段，原样使用
  （at 是 UTC 时间文本，形如 2026-11-20T01:00:00.000000Z；from 在新建案件时为空字符串）。
  JSON 的写法必须是“规范形式”：对象的键按字母顺序排列，元素之间只用 "," 和 ":" 分隔、不加空格，
  中文等非 ASCII 字符原样输出（不转义为 \\uXXXX）。在 Python 中即：
      json.dumps(值, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
  链接规则：第 1 条的 prev_hash 为 64 个 0（{genesis}）；
  第 n 条的 prev_hash 等于第 n-1 条的 hash；seq 从 1 起连续；
  最后一条的 hash 等于 case.json 中 head.hash，其 to 等于 case.json 的 state。

四、文书哈希的计算方法
  每份文书的 sha256 = SHA-256 of 规范形式 JSON（同上）的对象
      {{"kind": kind, "number": number, "context": context, "template": template_sha256}}
  各值取自 documents.json 中该文书的同名字段。它证明文书内容（context）就是签发时保存的内容。
  PDF 是导出时按该内容重新排版的；template_current 为 true 表示所用模板与签发时相同。
  documents.json 中的 file_sha256 是 PDF 文件本身的哈希（也列在 SHA256SUMS 中）。

五、须知
  SHA256SUMS 和哈希链能发现卷宗在传递中被改动或损坏，以及审计记录之间的不一致；
  但能接触卷宗的人也可以整体重算所有哈希。要确认卷宗与系统中的记录是同一份，
  请把上面的“链头”与系统中的链头比对（degreeflow case show {id} --json 中最后一条记录的 hash，
  或 degreeflow audit verify --case {id}），或与交接时另行记录的链头及本压缩包的 SHA-256 比对。
"""


VERIFY_SCRIPT = r'''#!/usr/bin/env python3
"""核验 degreeflow 案件卷宗，不需要 degreeflow，只用 Python 3 标准库。

用法：在解压后的卷宗目录中运行  python3 verify_chain.py  （或  python3 verify_chain.py 目录）
核对：SHA256SUMS 中每个文件的 SHA-256；manifest.json 的文件清单；审计哈希链（每条记录的哈希、
前后链接、序号、链头、案件状态）；每份文书的哈希；每个附件的哈希。全部通过时退出码为 0，否则为 1。
"""

import hashlib
import json
import os
import sys

GENESIS = "0" * 64


def canonical(value):
    """规范形式 JSON：键排序、无空格、非 ASCII 字符原样输出。"""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(directory, name):
    with open(os.path.join(directory, name), encoding="utf-8") as handle:
        return json.load(handle)


def inside(directory, name):
    """The file's path, refusing names that would leave the directory."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or ".." in parts or not name:
        raise ValueError(name)
    return os.path.join(directory, *parts)


def check_sums(directory, problems):
    listed = {}
    with open(os.path.join(directory, "SHA256SUMS"), encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            digest, mode, name = line[:64], line[64:66], line[66:]
            if len(digest) != 64 or mode not in ("  ", " *"):
                problems.append("SHA256SUMS 第 %d 行格式不正确" % number)
                continue
            try:
                path = inside(directory, name)
            except ValueError:
                problems.append("SHA256SUMS 第 %d 行：文件名不安全：%s" % (number, name))
                continue
            listed[name] = digest
            if not os.path.isfile(path):
                problems.append("缺少文件：%s" % name)
            elif sha256_file(path) != digest:
                problems.append("文件被改动（SHA-256 不符）：%s" % name)
    present = set()
    for root, _dirs, names in os.walk(directory):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), directory).replace(os.sep, "/")
            present.add(relative)
    extra = sorted(present - set(listed) - {"SHA256SUMS"})
    return listed, extra


def check_manifest(manifest, listed, problems):
    files = {item["path"]: item["sha256"] for item in manifest.get("files", [])}
    for path, digest in files.items():
        if listed.get(path) != digest:
            problems.append("manifest.json 与 SHA256SUMS 对文件 %s 的哈希不一致" % path)
    missing = sorted(set(listed) - set(files) - {"manifest.json"})
    for path in missing:
        problems.append("文件 %s 不在 manifest.json 的清单中" % path)


def check_chain(case, history, problems):
    prev = GENESIS
    for number, event in enumerate(history, 1):
        where = "审计记录第 %d 条" % number
        if event.get("seq") != number:
            problems.append("%s：序号应为 %d，实为 %s" % (where, number, event.get("seq")))
        if event.get("prev_hash") != prev:
            problems.append("%s：prev_hash 与前一条的 hash 不符（链条断裂）" % where)
        body = canonical([case["id"], event["seq"], event["at"], event["actor_id"], event["actor"],
                          event["trigger"], event["from"], event["to"], event["note"], event["payload"],
                          event["prev_hash"]])
        if sha256_text(body) != event.get("hash"):
            problems.append("%s：内容与其 hash 不符（记录被改动）" % where)
        prev = event.get("hash")
    head = case.get("head") or {}
    if head.get("last_seq") != len(history) or (history and head.get("hash") != prev):
        problems.append("case.json 的链头（head）与最后一条审计记录不符")
    if history and case.get("state") != history[-1].get("to"):
        problems.append("case.json 的状态 %s 与最后一条审计记录的结果 %s 不符"
                        % (case.get("state"), history[-1].get("to")))
    return prev


def check_documents(documents, history, listed, problems):
    seqs = {event.get("seq") for event in history}
    for doc in documents:
        where = "文书 %s" % doc.get("number")
        body = canonical({"kind": doc["kind"], "number": doc["number"], "context": doc["context"],
                          "template": doc["template_sha256"]})
        if sha256_text(body) != doc.get("sha256"):
            problems.append("%s：内容与系统记录的文书哈希不符" % where)
        if doc.get("event_seq") is not None and doc["event_seq"] not in seqs:
            problems.append("%s：所属审计记录第 %s 条不存在" % (where, doc["event_seq"]))
        if listed.get(doc.get("file")) != doc.get("file_sha256"):
            problems.append("%s：PDF 文件 %s 未列入 SHA256SUMS 或哈希不一致" % (where, doc.get("file")))


def check_attachments(attachments, listed, problems):
    for item in attachments:
        if listed.get(item.get("file")) != item.get("sha256"):
            problems.append("附件 %s：文件与上传时记录的 SHA-256 不符或缺失" % item.get("filename"))


def verify(directory):
    problems = []
    if not os.path.isfile(os.path.join(directory, "SHA256SUMS")):
        return ["找不到 SHA256SUMS：请在解压后的卷宗目录中运行"], [], None
    listed, extra = check_sums(directory, problems)
    try:
        manifest = load(directory, "manifest.json")
        case = load(directory, "case.json")
        history = load(directory, "history.json")
        documents = load(directory, "documents.json")
        attachments = load(directory, "attachments.json")
    except (OSError, ValueError) as error:
        problems.append("无法读取卷宗文件：%s" % error)
        return problems, extra, None
    check_manifest(manifest, listed, problems)
    try:
        head = check_chain(case, history, problems)
        check_documents(documents, history, listed, problems)
        check_attachments(attachments, listed, problems)
    except (KeyError, TypeError) as error:
        problems.append("卷宗文件缺少字段：%s" % error)
        head = None
    return problems, extra, {"case": case.get("id"), "events": len(history), "documents": len(documents),
                             "attachments": len(attachments), "files": len(listed), "head": head}


def main(argv):
    directory = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    problems, extra, summary = verify(directory)
    for name in extra:
        print("提示：文件 %s 不属于卷宗（未列入 SHA256SUMS）" % name)
    if problems:
        for problem in problems:
            print("问题：" + problem)
        print("核验未通过：%d 个问题" % len(problems))
        return 1
    print("核验通过：案件 #%s，%d 个文件，%d 条审计记录，%d 份文书，%d 个附件"
          % (summary["case"], summary["files"], summary["events"], summary["documents"], summary["attachments"]))
    print("链头：%s" % summary["head"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''
