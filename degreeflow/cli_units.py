"""`degreeflow dept ...` (departments inside a unit, their registration forms) and `degreeflow auth fees`
(verification tasks answered, for the fee statement). Issue 8 items 2-4; seed 001 art. 7-9, annexes 2-3.

degreeflow.cli registers these commands at its end (after `edge`, `flow` and `emit` are defined), so import
`degreeflow.cli` before this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cases import units
from degreeflow.cli import (
    AsOpt,
    JsonOpt,
    _date_arg,
    _FileErrors,
    _table,
    _write,
    app,
    edge,
    emit,
    flow,
    out,
    renderer,
)

dept_app = typer.Typer(help="单位内部门：认证牵头部门（一级账号）、学位信息核查部门（二级账号）、二级学院、管理部门。",
                       no_args_is_help=True)  # fmt: skip
auth_app = typer.Typer(help="学位认证：核查任务统计（核查劳务费）。", no_args_is_help=True)
app.add_typer(dept_app, name="dept")
app.add_typer(auth_app, name="auth")


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.replace("，", ",").replace("、", ",").split(",") if part.strip()]


@dept_app.command("add")
@edge
def dept_add(
    unit: Annotated[str, typer.Argument(help="学位授予单位代码，如 10635。")],
    name: Annotated[str, typer.Argument(help="部门名称，如 教务处。")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="lead（认证牵头部门）| verification（核查部门）| college（二级学院）| managing（管理部门）",
        ),
    ],
    levels: Annotated[
        str, typer.Option("--levels", help="可核查的学位层级：学士,硕士,博士 或 全部（默认全部）。")
    ] = "",
    years: Annotated[
        str, typer.Option("--years", help="可核查的授予年份：往届,应届 或 全部（默认全部）。")
    ] = "",
    forms: Annotated[
        str, typer.Option("--forms", help="学士的学习形式：普通,成人/自考,来华留学 或 全部（默认全部）。")
    ] = "",
    head: Annotated[str, typer.Option("--head", help="部门负责人姓名（登记表）。")] = "",
    as_json: JsonOpt = False,
) -> None:
    """登记单位内的一个部门（核查部门须写明可核查的范围，见学位中心〔2020〕18号附件三）。"""
    created = flow().add_department(unit, name, kind, levels=_list(levels), years=_list(years), forms=_list(forms),
                                    head_name=head)  # fmt: skip
    emit(created, lambda: out.print(f"已登记 {created['unit_name']} {created['name']}（{created['kind_label']}）"
                                    + (f"：{created['scope_label']}" if created["scope_label"] else "")))  # fmt: skip


@dept_app.command("list")
@edge
def dept_list(
    unit: Annotated[str, typer.Argument(help="学位授予单位代码。")],
    as_json: JsonOpt = False,
) -> None:
    """列出单位的部门、可核查范围和账号。"""
    rows = flow().departments(unit)
    emit(rows, lambda: _table(f"{unit} 的部门", ["编号", "名称", "类型", "可核查的信息", "账号"],
                              [[r["id"], r["name"], r["kind_label"], r["scope_label"],
                                "、".join(a["username"] for a in r["accounts"])] for r in rows]))  # fmt: skip


@dept_app.command("forms")
@edge
def dept_forms(
    unit: Annotated[str, typer.Argument(help="学位授予单位代码。")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="PDF 文件（默认：单位代码-认证账号登记表.pdf）。")
    ] = None,
    html: Annotated[bool, typer.Option("--html", help="输出 HTML 而非 PDF。")] = False,
    as_json: JsonOpt = False,
) -> None:
    """生成学位认证牵头部门及核查部门账号使用人登记表（附件二、三）的 PDF，供签字盖章后报学位中心。"""
    page = flow().registration_forms_html(unit, inline_css=html)
    target = output or Path(f"{unit}-认证账号登记表.{'html' if html else 'pdf'}")
    data = page.encode("utf-8") if html else renderer().pdf(page)
    _write(target, data)
    emit({"unit": unit, "file": str(target), "bytes": len(data)},
         lambda: out.print(f"已生成 {target}（{len(data) // 1024} KB）"))  # fmt: skip


@auth_app.command("fees")
@edge
def auth_fees(
    start: Annotated[str, typer.Option("--from", help="起始日期 YYYY-MM-DD（含）。")],
    end: Annotated[str, typer.Option("--to", help="截止日期 YYYY-MM-DD（含）。")],
    unit: Annotated[str | None, typer.Option("--unit", help="只统计该学位授予单位。")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="写入 XLSX 统计表。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """统计期间内各单位（及核查部门）已反馈的学位信息核查任务数，作为核查劳务费依据；可导出 XLSX。"""
    first, last = _date_arg(start, "--from"), _date_arg(end, "--to")
    rows = flow().verification_counts(first, last, unit)
    if output is not None:
        with _FileErrors(output, "--output"):
            units.fee_workbook(rows, first, last, output)
    emit(rows, lambda: _table(f"核查任务统计 {first} 至 {last}", ["单位码", "单位", "核查部门", "任务数"],
                              [[r["unit_code"], r["unit_name"], r["department"], r["tasks"]] for r in rows]
                              + [["合计", "", "", sum(r["tasks"] for r in rows)]]))  # fmt: skip


@auth_app.command("spot-check")
@edge
def auth_spot_check(
    month: Annotated[str, typer.Option("--month", help="抽查月份 YYYY-MM（该月办结的认证报告）。")],
    as_user: AsOpt,
    percent: Annotated[
        float | None,
        typer.Option("--percent", help="抽查比例，百分数（默认取 DEGREEFLOW_SPOT_CHECK_PERCENT，即 5）。"),
    ] = None,
    seed: Annotated[str, typer.Option("--seed", help="抽样种子（同一月份与种子抽出同样的报告）。")] = "",
    as_json: JsonOpt = False,
) -> None:
    """按比例随机抽查某月已办结的认证报告，每份开一个抽查复核案件（学位认证工作细则第十五条）；重复运行只补足差额。"""
    from degreeflow.settings import Settings

    share = Settings().spot_check_percent if percent is None else percent
    result = flow().spot_check(month, as_user, share, seed)
    emit(result, lambda: out.print(
        f"{month}：办结认证报告 {result['finished']} 份，按 {share:g}% 应抽 {result['target']} 份；"
        f"已抽查 {len(result['already_checked'])} 份，新开抽查案件 {len(result['opened'])} 个"
        + (f"：{'、'.join(f'#{i}' for i in result['opened'])}" if result["opened"] else "")))  # fmt: skip
