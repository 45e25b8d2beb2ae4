"""`degreeflow backup FILE` and `degreeflow case export ID`: the database backup and a case's dossier archive.

degreeflow.cli registers these two commands at its end (after `edge`, `flow`, `emit` and the option types are
defined), so import `degreeflow.cli` before this module.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cases import dossier
from degreeflow import backup as backups
from degreeflow.cli import OPTIONS, AsOpt, JsonOpt, _id, edge, emit, err, flow, out, renderer

ForceOpt = Annotated[bool, typer.Option("--force", help="覆盖已存在的文件。")]


def _progress() -> Any:
    from rich.progress import Progress

    return Progress(transient=True, disable=OPTIONS.json or not sys.stderr.isatty(), console=err)


@edge
def backup(
    target: Annotated[
        Path, typer.Argument(metavar="FILE", help="备份文件（新文件；已存在时须加 --force）。")
    ],
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """备份数据库：SQLite 用在线备份（应用可继续写入）并核验副本；PostgreSQL 用 pg_dump。"""
    from degreeflow.settings import Settings

    url = OPTIONS.db or Settings().database_url
    with _progress() as progress:
        task = progress.add_task("正在备份数据库", total=None)
        result = backups.backup_database(
            url,
            target,
            force=force,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )

    def render() -> None:
        rows = sum(result["tables"].values())
        out.print(
            f"已备份到 {result['file']}（{result['bytes'] // 1024} KB，{len(result['tables'])} 张表，{rows} 行）"
        )
        out.print(
            f"核验：完整性 {result['integrity']}；各表行数一致；审计链完好（{result['audit']['events']} 条记录）"
        )
        out.print(f"SHA-256：{result['sha256']}")
        if result["backend"] == "postgresql":
            out.print(result["restore"])

    emit(result, render)


@edge
def case_export(
    case_id: Annotated[int, typer.Argument(metavar="ID")],
    as_user: AsOpt,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="卷宗压缩包（默认：案件-ID.zip）。")
    ] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """导出案件卷宗（ZIP）：案件数据、完整审计记录、全部文书 PDF、附件、带哈希的清单，可脱离本系统核验。"""
    _id(case_id)
    target = output or Path(dossier.default_name(case_id))
    with _progress() as progress:
        task = progress.add_task("正在排版文书", total=None)
        result = backups.export_case(
            flow(), case_id, as_user, target, pdf=renderer(), force=force,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip

    def render() -> None:
        out.print(
            f"已导出案件 #{case_id} 的卷宗 {result['file']}：{result['events']} 条审计记录，"
            f"{result['documents']} 份文书，{result['attachments']} 个附件，{result['bytes'] // 1024} KB"
        )
        out.print(f"链头：{result['head_hash']}")
        out.print(f"压缩包 SHA-256：{result['sha256']}")
        if result["audit"]["ok"]:
            out.print("核验：解压后运行 python3 verify_chain.py 或 sha256sum -c SHA256SUMS（见 README.txt）")
        else:
            for problem in result["audit"]["problems"]:
                err.print(f"[bold red]审计链有问题[/] 第 {problem['seq']} 条：{problem['problem']}")

    emit(result, render)
    if not result["audit"]["ok"]:
        raise typer.Exit(9)
