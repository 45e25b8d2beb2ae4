"""The `degreeflow` command line. Every command has `--json` for scripts and a readable table otherwise.

Errors exit non-zero with one line naming the rule that refused; with `--json` they print
`{"error": {"code": ..., "rule": ..., "message": ..., "field": ...}}` (stable `code`).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from cases import attachments as attachment_rules
from cases.service import DegreeFlow
from cases.vocabulary import LEVELS
from db.migrate import MigrationError
from degreeflow import app as wiring
from degreeflow import demo as demo_data
from degreeflow.pdf import FontError
from scheduler.calendar import MAX_LIMIT_DAYS, DateOutOfRange
from scheduler.calendar_file import CalendarFileError
from workflow import InvalidPayload, WorkflowError
from workflow.fields import DATE_MAX, DATE_MIN

app = typer.Typer(
    help="degreeflow：学位授予信息补报、修改、勘误、撤销、照片补报与学位认证案件管理。",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
org_app = typer.Typer(help="组织：国务院学位办、学位中心、省级学位办、学位授予单位。", no_args_is_help=True)
user_app = typer.Typer(help="用户及其角色。", no_args_is_help=True)
case_app = typer.Typer(help="案件：新建、办理（触发操作）、查看、列表。", no_args_is_help=True)
audit_app = typer.Typer(help="审计记录（防篡改哈希链）。", no_args_is_help=True)
defs_app = typer.Typer(help="流程定义。", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(case_app, name="case")
app.add_typer(audit_app, name="audit")
app.add_typer(defs_app, name="definitions")
calendar_app = typer.Typer(help="工作日历：法定节假日与调休上班日。", no_args_is_help=True)
deadlines_app = typer.Typer(help="法定时限：列表与到期检查（扫描）。", no_args_is_help=True)
scheduler_app = typer.Typer(help="调度器：定时运行时限扫描。", no_args_is_help=True)
app.add_typer(calendar_app, name="calendar")
app.add_typer(deadlines_app, name="deadlines")
app.add_typer(scheduler_app, name="scheduler")
records_app = typer.Typer(help="学位授予信息库：校验、导入、导出、变更历史。", no_args_is_help=True)
app.add_typer(records_app, name="records")
letter_app = typer.Typer(help="公文与表格：签发、生成 PDF、当日用印文书合集。", no_args_is_help=True)
app.add_typer(letter_app, name="letter")

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Options:
    db: str | None = None
    now: datetime | None = None
    json: bool = False


OPTIONS = Options()

JsonOpt = Annotated[bool, typer.Option("--json", help="输出 JSON（供脚本使用）。")]
AsOpt = Annotated[str, typer.Option("--as", help="办理人的用户名，如 10635XW01。")]
DataOpt = Annotated[
    str | None,
    typer.Option("--data", "-d", help='数据：JSON 文本（如 \'{"reason": "..."}\'）或 JSON 文件路径。'),
]
FieldOpt = Annotated[
    list[str] | None,
    typer.Option("--field", "-f", help="单个字段 KEY=VALUE，可重复；VALUE 为 JSON 列表/对象时按 JSON 解析。"),
]
NoteOpt = Annotated[str, typer.Option("--note", "-n", help="备注（驳回、退回时即为理由）。")]

F = TypeVar("F", bound=Callable[..., Any])

MAX_ID = 2**31 - 1  # case, document and version numbers (as the web API bounds them)
MAX_INTERVAL = 86400  # the scheduler's sweep interval: at least once a day

_OS_REASONS = {
    errno.ENOENT: "文件或其所在文件夹不存在",
    errno.EISDIR: "这是一个文件夹，不是文件",
    errno.ENOTDIR: "路径中有一段不是文件夹",
    errno.EACCES: "没有读写权限",
    errno.EPERM: "没有读写权限",
    errno.ENOSPC: "磁盘空间不足",
    errno.EROFS: "文件系统只读",
    errno.ENAMETOOLONG: "文件名过长",
    errno.EEXIST: "文件已存在",
}


def _fail(error: dict[str, Any], exit_code: int) -> typer.Exit:
    """Print one error (a line on stderr, or JSON with a stable `code`) and return the exit to raise."""
    if OPTIONS.json:
        out.print_json(json.dumps({"error": error}, ensure_ascii=False))
    else:
        tag = (
            f"[{error['code']}/{error['rule']}]"
            if error.get("rule") != error["code"]
            else f"[{error['code']}]"
        )
        err.print(f"[bold red]错误[/] {escape(tag)} {escape(error['message'])}")
    return typer.Exit(exit_code)


def edge(func: F) -> F:
    """Translate domain errors into one readable line (or JSON) and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("as_json"):
            OPTIONS.json = True
        try:
            return func(*args, **kwargs)
        except WorkflowError as error:
            raise _fail(error.to_dict(), error.exit_code) from None
        except FontError as error:
            raise _fail(error.to_dict(), 11) from None
        except CalendarFileError as error:
            raise _fail(error.to_dict(), 7) from None
        except MigrationError as error:
            raise _fail(error.to_dict(), 12) from None
        except DateOutOfRange as error:
            raise _fail(error.to_dict(), 7) from None
        except SQLAlchemyError as error:
            detail = getattr(error, "orig", None) or error
            message = f"数据库错误：{detail}（未做任何修改）"
            raise _fail({"code": "database_error", "rule": "database", "message": message}, 10) from None
        # Errors of the files and numbers the command was given, where no step above names them.
        except UnicodeDecodeError as error:
            raise _fail(_file_problem(error).to_dict(), 7) from None
        except zipfile.BadZipFile as error:
            raise _fail(_file_problem(error).to_dict(), 7) from None
        except OverflowError as error:
            message = f"数值超出可处理的范围（{error}），请检查命令中的编号、天数或日期"
            raise _fail({"code": "invalid_payload", "rule": "number_range", "message": message}, 7) from None
        except OSError as error:
            if error.filename is None:
                message = f"系统错误：{_os_reason(error)}"
                raise _fail({"code": "system_error", "rule": "os_error", "message": message}, 1) from None
            raise _fail(_file_problem(error).to_dict(), 7) from None

    return wrapper  # type: ignore[return-value]


def _os_reason(error: OSError) -> str:
    return _OS_REASONS.get(error.errno or 0, error.strerror or str(error))


def _file_problem(error: Exception, path: Path | str | None = None, option: str = "") -> InvalidPayload:
    """What is wrong with a file the command was given to read or write, naming it (and the option)."""
    where = f"参数 {option}：" if option else ""
    if isinstance(error, OSError):
        name = path if path is not None else error.filename
        return InvalidPayload(
            f"{where}无法读写文件 {name}：{_os_reason(error)}",
            field=option.lstrip("-") or None,
            rule="file_access",
        )
    name = f"文件 {path} " if path is not None else "文件"
    if isinstance(error, UnicodeDecodeError):
        return InvalidPayload(
            f"{where}{name}不是 UTF-8 编码的文本（第 {error.start + 1} 个字节无法解码），请另存为 UTF-8",
            field=option.lstrip("-") or None,
            rule="file_encoding",
        )
    return InvalidPayload(
        f"{where}{name}不是有效的 XLSX 工作簿（不是 ZIP 格式）；请用 Excel 另存为 .xlsx，或导出为 CSV",
        field=option.lstrip("-") or None,
        rule="xlsx_format",
    )


class _FileErrors:
    """Translate what goes wrong reading or writing `path` into one InvalidPayload that names it."""

    def __init__(self, path: Path, option: str = ""):
        self.path, self.option = path, option

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: Any) -> None:
        if isinstance(error, OSError) and error.filename not in (None, str(self.path), self.path):
            return None  # another file: the edge names it
        if isinstance(error, OSError | UnicodeDecodeError | zipfile.BadZipFile):
            raise _file_problem(error, self.path, self.option) from None
        return None


def _write(path: Path, data: str | bytes, option: str = "--output") -> None:
    with _FileErrors(path, option):
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)


def _bounded(value: int | None, name: str, low: int, high: int, what: str = "整数") -> None:
    """Refuse an integer argument outside low..high, naming the argument (None: not given)."""
    if value is not None and not low <= value <= high:
        shown = str(value) if len(str(value)) <= 24 else f"{str(value)[:20]}…（{len(str(value))} 位）"
        raise InvalidPayload(
            f"参数 {name}：应为 {low} 至 {high} 之间的{what}，收到 {shown}",
            field=name.lstrip("-").lower(),
            rule="number_range",
        )


def _id(value: int | None, name: str = "ID", what: str = "案件编号") -> None:
    _bounded(value, name, 1, MAX_ID, what)


@app.callback()
def _global(
    db: Annotated[
        str | None,
        typer.Option(
            "--db", envvar="DEGREEFLOW_DATABASE_URL", help="数据库 URL（默认 sqlite:///var/degreeflow.db）。"
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            envvar="DEGREEFLOW_NOW",
            help="设定当前时间（ISO 8601，如 2026-11-21T09:00），用于时限演练。",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="所有命令输出 JSON。")] = False,
) -> None:
    OPTIONS.db = db
    OPTIONS.json = as_json
    OPTIONS.now = None
    if now:
        try:
            OPTIONS.now = datetime.fromisoformat(now)
        except ValueError:
            raise typer.BadParameter(
                f"--now：时间格式应为 ISO 8601（如 2026-11-21T09:00），收到“{now}”"
            ) from None


def flow(*, need_schema: bool = True) -> DegreeFlow:
    service = wiring.build(OPTIONS.db, OPTIONS.now)
    if need_schema:
        try:
            ready = inspect(service.db).has_table("cases")
        except OperationalError as error:
            raise WorkflowError(f"无法连接数据库：{error.orig}", rule="database_reachable") from None
        if not ready:
            raise WorkflowError("数据库尚未初始化，请先运行 degreeflow init", rule="database_initialised")
    return service


def emit(data: Any, render: Callable[[], None]) -> None:
    if OPTIONS.json:
        out.print_json(json.dumps(data, ensure_ascii=False, default=str))
    else:
        render()


def read_payload(data: str | None, fields: list[str] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if data:
        text = data
        if not data.lstrip().startswith(("{", "[")):
            path = Path(data)
            if not path.is_file():
                raise InvalidPayload(
                    f"参数 --data：既不是 JSON 文本也不是存在的文件：{data}", field="data", rule="json"
                )
            with _FileErrors(path, "--data"):
                text = path.read_text(encoding="utf-8")
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidPayload(
                f"参数 --data：不是合法的 JSON（{error}）", field="data", rule="json"
            ) from None
        if not isinstance(loaded, dict):
            raise InvalidPayload("参数 --data：应为 JSON 对象 {...}", field="data", rule="json")
        payload.update(loaded)
    for item in fields or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidPayload(
                f"参数 --field：应为 KEY=VALUE，收到“{item}”", field="field", rule="key_value"
            )
        parsed: Any = value
        if value.lstrip().startswith(("[", "{")):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as error:
                raise InvalidPayload(
                    f"参数 --field {key}：不是合法的 JSON（{error}）", field=key, rule="json"
                ) from None
        payload[key.strip()] = parsed
    return payload


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    out.print(table)


# -- init / demo -------------------------------------------------------------------------------------------
@app.command()
@edge
def init(
    demo: Annotated[bool, typer.Option("--demo", help="同时写入演示组织、用户和案件（仅首次）。")] = False,
    as_json: JsonOpt = False,
) -> None:
    """初始化数据库（可重复运行，不会覆盖已有数据）。"""
    service = flow(need_schema=False)
    service.init_schema(migrate=True)
    seeded = demo_data.seed(service) if demo else False
    url = service.db.url.render_as_string(hide_password=True)
    emit(
        {"database": url, "demo_seeded": seeded},
        lambda: out.print(
            f"数据库已就绪：{url}" + ("；已写入演示数据" if seeded else ("；演示数据已存在" if demo else ""))
        ),
    )


@app.command()
@edge
def demo(as_json: JsonOpt = False) -> None:
    """命令行演示：把演示案件逐步办理到底，并打印案件看板（Web 应用见 serve）。"""
    service = flow()

    def show(line: demo_data.WalkLine) -> None:
        if not OPTIONS.json:
            mark = "[green]✓[/]" if line.ok else "[red]✗ 被拒绝[/]"
            out.print(
                f"{mark} 案件 #{line.case_id} {line.case_type:<14} {line.trigger:<12} {line.user:<10} {line.message}"
            )

    lines = demo_data.walk(service, show)
    cases = service.list_cases()
    if OPTIONS.json:
        emit({"steps": [vars(line) for line in lines], "cases": cases}, lambda: None)
        return
    if not lines:
        out.print("所有演示案件均已办结。")
    _board(cases)


def _board(cases: list[dict[str, Any]]) -> None:
    _table(
        "案件看板",
        ["ID", "类型", "单位", "状态", "state", "规则", "下一时限", "版本", "更新时间"],
        [
            [c["id"], c["type_label"], f"{c['org']} {c['org_name']}", c["state_label"], c["state"],
             c["rule_set"], c["next_due"] or "—", c["version"], (c["updated_at"] or "")[:16].replace("T", " ")]
            for c in cases
        ],
    )  # fmt: skip


# -- organisations and users -------------------------------------------------------------------------------
@org_app.command("add")
@edge
def org_add(
    code: Annotated[
        str, typer.Argument(help="代码：省级为2位 GB/T 2260 代码，单位为5位代码，国家级如 XWB。")
    ],
    name: Annotated[str, typer.Argument(help="名称。")],
    kind: Annotated[str, typer.Option("--kind", help="national | center | province | unit")] = "unit",
    parent: Annotated[str | None, typer.Option("--parent", help="学位授予单位所属省级代码。")] = None,
    organ_code: Annotated[
        str, typer.Option("--organ-code", help="机关代字（发文字号用），如 渝学位办。")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """登记一个组织。"""
    created = flow().add_org(code, name, kind, parent, organ_code)
    emit(created, lambda: out.print(f"已登记组织 {created['code']} {created['name']}（{created['kind']}）"))


@org_app.command("list")
@edge
def org_list(as_json: JsonOpt = False) -> None:
    """列出组织。"""
    rows = flow().list_orgs()
    emit(rows, lambda: _table("组织", ["代码", "名称", "类型", "上级"],
                              [[r["code"], r["name"], r["kind"], r["parent"]] for r in rows]))  # fmt: skip


@user_app.command("add")
@edge
def user_add(
    username: Annotated[str, typer.Argument(help="用户名，如 10635XW01。")],
    name: Annotated[str, typer.Argument(help="姓名。")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="单位：collector|verifier|lead|checker|leader|admin；省级：reviewer|admin；国家级：officer|admin",
        ),
    ],
    org: Annotated[str, typer.Option("--org", help="所属组织代码。")],
    email: Annotated[str | None, typer.Option("--email", help="邮箱（接收时限提醒邮件）。")] = None,
    department: Annotated[
        str | None,
        typer.Option("--department", help="单位内部门（名称或编号；二级账号 checker 须属于核查部门）。"),
    ] = None,
    phone: Annotated[str, typer.Option("--phone", help="电话（登记表）。")] = "",
    mobile: Annotated[str, typer.Option("--mobile", help="手机（登记表）。")] = "",
    fax: Annotated[str, typer.Option("--fax", help="传真（登记表）。")] = "",
    address: Annotated[str, typer.Option("--address", help="通讯地址（登记表）。")] = "",
    as_json: JsonOpt = False,
) -> None:
    """登记一个用户。"""
    contact = {"phone": phone, "mobile": mobile, "fax": fax, "address": address}
    created = flow().add_user(username, name, role, org, email, department=department, contact=contact)
    emit(
        created,
        lambda: out.print(f"已登记用户 {created['username']} {created['name']}（{created['role']}，{org}）"),
    )


@user_app.command("passwd")
@edge
def user_passwd(
    username: Annotated[str, typer.Argument(help="用户名，如 10635XW01。")],
    password: Annotated[
        str | None, typer.Option("--password", help="新密码（至少 8 位；不给出时交互输入，不回显）。")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """设置用户的 Web 登录密码（argon2id 哈希存储）。"""
    if password is None:
        password = typer.prompt("新密码", hide_input=True, confirmation_prompt=True)
    flow().set_password(username, password)
    emit({"username": username, "password_set": True}, lambda: out.print(f"已设置 {username} 的密码"))


@user_app.command("list")
@edge
def user_list(
    org: Annotated[str | None, typer.Option("--org", help="只列出该组织的用户。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """列出用户。"""
    rows = flow().list_users(org)
    emit(rows, lambda: _table("用户", ["用户名", "姓名", "角色", "组织"],
                              [[r["username"], r["name"], r["role"], r["org"]] for r in rows]))  # fmt: skip


# -- schema migrations -------------------------------------------------------------------------------------
db_app = typer.Typer(help="数据库结构：迁移（Alembic）。", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@edge
def db_upgrade(
    revision: Annotated[str, typer.Option("--revision", help="目标版本（默认最新 head）。")] = "head",
    as_json: JsonOpt = False,
) -> None:
    """把数据库结构升级到最新版本（可重复运行；旧版本创建的库在结构一致时被接管）。"""
    from db.migrate import upgrade

    service = flow(need_schema=False)
    done = upgrade(service.db, revision)
    url = service.db.url.render_as_string(hide_password=True)
    emit({**done, "database": url}, lambda: out.print(
        f"数据库结构：{done['before'] or '（空）'} → {done['after']}" + ("（已接管旧库）" if done["adopted"] else "")
        + f"  {url}"))  # fmt: skip


@db_app.command("current")
@edge
def db_current(as_json: JsonOpt = False) -> None:
    """显示数据库当前的结构版本与最新版本。"""
    from db.migrate import current, head

    service = flow(need_schema=False)
    info = {"current": current(service.db), "head": head()}
    emit(info, lambda: out.print(f"当前版本：{info['current'] or '（未迁移）'}；最新版本：{info['head']}"))


@db_app.command("check")
@edge
def db_check(as_json: JsonOpt = False) -> None:
    """比较数据库结构与程序的数据模型；有差异时以非零状态退出。"""
    from db.migrate import differences

    found = [str(d) for d in differences(flow(need_schema=False).db)]
    emit({"differences": found}, lambda: out.print("数据库结构与模型一致" if not found else "\n".join(found)))
    if found:
        raise typer.Exit(12)


# -- web ---------------------------------------------------------------------------------------------------
@app.command()
@edge
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="监听地址（默认 DEGREEFLOW_HOST 或 127.0.0.1）。")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="端口（默认 DEGREEFLOW_PORT 或 8000）。")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="演示模式：写入演示数据（仅首次），允许占位密钥，打印演示账号。")
    ] = False,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="不在本进程运行时限扫描（另有 `scheduler run` 进程时）。")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=32, help="Web 工作进程数（多核时可设为 CPU 核数）。")
    ] = 1,
) -> None:
    """运行 Web 应用（服务端渲染页面 + /api/v1 JSON 接口），默认同进程运行时限扫描调度器。"""
    import uvicorn

    from degreeflow.settings import Settings
    from degreeflow.web.app import create_app, prepare_to_serve

    overrides: dict[str, Any] = {"demo": True} if demo else {}
    if OPTIONS.db:
        overrides["database_url"] = OPTIONS.db
    if OPTIONS.now:
        overrides["now"] = OPTIONS.now
    settings = Settings(**overrides)
    problem = settings.secret_problem()
    if problem:
        raise WorkflowError(problem, rule="secret_key")
    service = wiring.build(settings.database_url, settings.now, settings=settings)
    service.init_schema(migrate=True)
    if demo:
        demo_data.seed(service)
    bind_host, bind_port = host or settings.host, port or settings.port
    out.print(
        f"degreeflow 已启动：http://{bind_host}:{bind_port}/  （数据库 {service.db.url.render_as_string(hide_password=True)}）"
    )
    if demo:
        out.print(f"演示账号（密码均为 {demo_data.DEMO_PASSWORD}）：")
        for username, name, role, org in demo_data.USERS:
            out.print(f"  {username:<10} {name}（{org}，{role}）")
    if not no_scheduler:
        out.print(f"时限扫描：每 {settings.sweep_interval_seconds} 秒一次（同进程）")
    if workers == 1:
        application = create_app(service, settings, scheduler=not no_scheduler)
        prepare_to_serve(application)
        uvicorn.run(application, host=bind_host, port=bind_port, log_level="warning", access_log=False)
        return
    # Several worker processes: each builds the application from the environment; the scheduler runs once,
    # in this supervising process (a sweep is idempotent anyway, so a second scheduler would be harmless).
    os.environ.update(
        {"DEGREEFLOW_DATABASE_URL": settings.database_url, "DEGREEFLOW_DEMO": str(settings.demo)}
    )
    if settings.now:
        os.environ["DEGREEFLOW_NOW"] = settings.now.isoformat()
    sweeping = None
    if not no_scheduler:
        from degreeflow.jobs import sweep_scheduler

        sweeping = sweep_scheduler(service.db, settings.sweep_interval_seconds, settings.now, blocking=False)
        sweeping.start()
    service.db.dispose()
    try:
        uvicorn.run("degreeflow.web.asgi:create", factory=True, workers=workers, host=bind_host, port=bind_port,
                    log_level="warning", access_log=False)  # fmt: skip
    finally:
        if sweeping is not None:
            sweeping.shutdown(wait=False)


# -- cases -------------------------------------------------------------------------------------------------
@case_app.command("open")
@edge
def case_open(
    case_type: Annotated[
        str,
        typer.Argument(metavar="TYPE", help="supplement|amendment|errata|revocation|photo|authentication"),
    ],
    org: Annotated[str, typer.Option("--org", help="案件所属学位授予单位代码。")],
    as_user: AsOpt,
    data: DataOpt = None,
    field: FieldOpt = None,
    note: NoteOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """新建案件。"""
    result = flow().open_case(case_type, org, as_user, read_payload(data, field), note)
    emit(
        vars(result),
        lambda: out.print(f"已新建案件 #{result.case_id}（{case_type}），状态：{result.to_state}"),
    )


@case_app.command("fire")
@edge
def case_fire(
    case_id: Annotated[int, typer.Argument(metavar="ID")],
    trigger: Annotated[str, typer.Argument(help="操作名，如 submit、approve、reject。")],
    as_user: AsOpt,
    note: NoteOpt = "",
    data: DataOpt = None,
    field: FieldOpt = None,
    expect_version: Annotated[
        int | None, typer.Option("--expect-version", help="仅当案件仍为该版本时办理（防止覆盖他人的修改）。")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """办理案件：触发一个操作。"""
    _id(case_id)
    _bounded(expect_version, "--expect-version", 1, MAX_ID, "版本号")
    result = flow().fire(case_id, trigger, as_user, note, read_payload(data, field), expect_version)

    def render() -> None:
        for event in result.events:
            out.print(
                f"案件 #{result.case_id}：{event['trigger']}  {event['from_state']} → {event['to_state']}"
            )
        out.print(f"当前状态：{result.to_state}（版本 {result.version}）")
        if result.notice:
            out.print(f"请注意：{result.notice}")

    emit(vars(result), render)


@case_app.command("attach")
@edge
def case_attach(
    case_id: Annotated[int, typer.Argument(metavar="ID")],
    path: Annotated[Path, typer.Argument(metavar="FILE", help="要上传的文件（PDF、JPG、PNG、XLSX、DOCX）。")],
    as_user: AsOpt,
    purpose: Annotated[
        str,
        typer.Option(
            "--purpose",
            help="附件用途（办理步骤按用途检查所需附件，公文附件清单按用途列出）："
            + attachment_rules.choices()
            + "。决议与证明材料须为扫描件（PDF、JPG、PNG）。",
        ),
    ] = attachment_rules.DEFAULT_PURPOSE,
    as_json: JsonOpt = False,
) -> None:
    """上传案件附件（如撤销学位决议、授予学位决议扫描件、证明材料），并注明用途。"""
    from degreeflow.settings import Settings

    _id(case_id)
    limit = Settings().max_upload_mb * 1024 * 1024
    try:
        with path.open("rb") as handle:
            content = handle.read(limit + 1)
    except OSError as error:
        raise InvalidPayload(f"无法读取文件 {path}：{error.strerror}", field="file", rule="file_readable") from None
    saved = flow().add_attachment(case_id, as_user, path.name, content, limit, purpose=purpose)
    emit(saved, lambda: out.print(
        f"案件 #{case_id}：已上传附件 {saved['filename']}（{saved['purpose_label']}，{saved['size']} 字节）"
    ))  # fmt: skip


@case_app.command("authorize")
@edge
def case_authorize(
    case_id: Annotated[int, typer.Argument(metavar="ID")],
    trigger: Annotated[str, typer.Argument(help="须主管领导授权的操作，如 verify（2024年规则下的报送与撤销）。")],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """申请主管领导授权码：授权码发送至主管领导的收件箱（10 分钟内有效），办理时用 -f authorization_code=授权码 填写。"""
    _id(case_id)
    sent = flow().request_authorization(case_id, trigger, as_user)
    emit(sent, lambda: out.print(
        f"案件 #{case_id}：授权码已发送给主管领导 {sent['leaders']}（10 分钟内有效）；"
        f"请向其索取后办理：degreeflow case fire {case_id} {trigger} --as {as_user} -f authorization_code=授权码"
    ))  # fmt: skip


@case_app.command("show")
@edge
def case_show(
    case_id: Annotated[int, typer.Argument(metavar="ID")],
    as_user: Annotated[str | None, typer.Option("--as", help="列出该用户此刻可执行的操作。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """查看案件：状态、规则、可执行操作、时限与完整历史。"""
    _id(case_id)
    case = flow().show(case_id, as_user)

    def render() -> None:
        out.print(
            f"[bold]案件 #{case['id']}[/] {case['type_label']}（{case['type']}） {case['org']} {case['org_name']}"
        )
        out.print(
            f"状态：{case['state_label']}（{case['state']}）  规则：{case['rule_set']}  版本：{case['version']}"
        )
        if case["allowed"] is not None:
            options = "、".join(f"{a['trigger']}（{a['label']}）" for a in case["allowed"]) or "无"
            out.print(f"{as_user} 可执行：{options}")
        if case["deadlines"]:
            _deadline_table(case["deadlines"])
        _table("历史", ["#", "时间", "办理人", "操作", "从", "到", "备注"], [
            [h["seq"], h["at"], h["actor"], h["trigger"], h["from"] or "—", h["to"], h["note"]]
            for h in case["history"]
        ])  # fmt: skip

    emit(case, render)


@case_app.command("list")
@edge
def case_list(
    case_type: Annotated[str | None, typer.Option("--type", help="案件类型。")] = None,
    state: Annotated[str | None, typer.Option("--state", help="状态。")] = None,
    org: Annotated[str | None, typer.Option("--org", help="单位代码。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """案件列表（看板）。"""
    rows = flow().list_cases(case_type, state, org)
    emit(rows, lambda: _board(rows))


def _deadline_table(deadlines: list[dict[str, Any]], with_case: bool = False) -> None:
    status_labels = {"running": "计时中", "paused": "暂停", "breached": "[red]已超期[/]", "met": "按时办结",
                     "superseded": "已重新起算", "cancelled": "已取消"}  # fmt: skip
    columns = (["案件", "单位"] if with_case else []) + [
        "时限",
        "期限",
        "办理方",
        "起算日",
        "截止日",
        "剩余工作日",
        "状态",
    ]
    rows = []
    for d in deadlines:
        prefix = [f"#{d['case_id']} {d['type_label']}", d["org_name"]] if with_case else []
        left = d["remaining_working_days"]
        rows.append(prefix + [
            d["label"] or d["name"], f"{d['days']}{'个工作日' if d['working'] else '日'}", LEVELS.get(d["owner"], d["owner"]),
            d["start_date"],
            d["due_date"] + ("（暂定）" if d["provisional"] else ""), "" if left is None else str(left),
            status_labels.get(d["status"], d["status"]),
        ])  # fmt: skip
    table = Table(title="时限")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if any(d["provisional"] for d in deadlines):
        out.print(
            "（暂定）：截止日所在年份的节假日安排尚未导入，按周末推算；导入后自动重算（degreeflow calendar import）。"
        )


# -- calendar ----------------------------------------------------------------------------------------------
def _date_arg(value: str, name: str = "DATE") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidPayload(
            f"参数 {name}：日期格式应为 YYYY-MM-DD，收到“{value}”", field=name, rule="date_format"
        ) from None


@calendar_app.command("import")
@edge
def calendar_import(
    file: Annotated[Path, typer.Argument(help="CSV（date,working,name）或 YAML 文件，包含一年中的每一天。")],
    as_json: JsonOpt = False,
) -> None:
    """导入一年的节假日安排（国务院办公厅通知），并重算暂定的截止日。"""
    result = flow().calendar_import(file)
    emit(result, lambda: out.print(
        f"已导入 {result['year']} 年日历：{result['days']} 天，其中工作日 {result['working_days']} 天；"
        f"重算暂定时限 {result['recomputed_deadlines']} 个。"))  # fmt: skip


@calendar_app.command("template")
@edge
def calendar_template(
    year: Annotated[int, typer.Argument(help="年份，如 2027。")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="写入文件（默认输出到屏幕）。")
    ] = None,
) -> None:
    """生成某年的日历模板（周末休息），供按通知填写节假日与调休后导入。"""
    _bounded(year, "YEAR", DATE_MIN.year, DATE_MAX.year, "年份")
    text = DegreeFlow.calendar_template(year)
    if output:
        _write(output, text)
        out.print(
            f"已写入 {output}：{year} 年共 {len(text.splitlines()) - 1} 天，请按当年通知标注节假日和调休上班日。"
        )
    else:
        sys.stdout.write(text)


@calendar_app.command("years")
@edge
def calendar_years(as_json: JsonOpt = False) -> None:
    """列出已导入的年份及来源。"""
    rows = flow().calendar_years()
    emit(rows, lambda: _table("已覆盖的年份", ["年份", "来源", "导入时间"],
                              [[r["year"], r["source"], r["loaded_at"]] for r in rows]))  # fmt: skip


@calendar_app.command("due")
@edge
def calendar_due(
    start: Annotated[str, typer.Argument(metavar="DATE", help="事件发生日（YYYY-MM-DD），次日起算。")],
    days: Annotated[int, typer.Argument(metavar="N", help="期限天数。")],
    working: Annotated[bool, typer.Option("--working", help="按工作日计算（N个工作日）。")] = False,
    as_json: JsonOpt = False,
) -> None:
    """计算截止日：N日（末日为节假日顺延）或 N个工作日。"""
    _bounded(days, "N", 1, MAX_LIMIT_DAYS, "天数")
    result = flow().calendar_due(_date_arg(start), days, working)
    unit = "个工作日" if working else "日"
    emit(result, lambda: out.print(
        f"{result['start']} 起 {days}{unit}：截止日 {result['due_date']}"
        + ("（暂定：该年节假日安排尚未导入）" if result["provisional"] else "")))  # fmt: skip


@calendar_app.command("is-workday")
@edge
def calendar_is_workday(
    day: Annotated[str, typer.Argument(metavar="DATE")],
    as_json: JsonOpt = False,
) -> None:
    """判断某天是否工作日（含调休上班）。"""
    result = flow().calendar_day(_date_arg(day))
    emit(result, lambda: out.print(
        f"{result['date']}：{'工作日' if result['working'] else '休息日'}"
        + (f"（{result['name']}）" if result["name"] else "")
        + ("（暂定：该年节假日安排尚未导入）" if result["provisional"] else "")))  # fmt: skip


# -- deadlines, scheduler, inbox ---------------------------------------------------------------------------
@deadlines_app.command("list")
@edge
def deadlines_list(
    org: Annotated[str | None, typer.Option("--org", help="只看该单位。")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="只看已超期的。")] = False,
    due_within: Annotated[
        int | None, typer.Option("--due-within", help="只看 N 个工作日内到期的（含已超期）。")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """未办结的时限，按紧急程度排序。"""
    _bounded(due_within, "--due-within", 0, MAX_LIMIT_DAYS, "工作日数")
    rows = flow().deadlines(org, overdue, due_within)
    emit(rows, lambda: _deadline_table(rows, with_case=True) if rows else out.print("没有符合条件的时限。"))


@deadlines_app.command("sweep")
@edge
def deadlines_sweep(as_json: JsonOpt = False) -> None:
    """运行一次时限扫描：到期提醒、当日到期、超期记录与督办（可重复运行，不会重复提醒）。"""
    report, delivery = flow().sweep()
    data = report.to_dict() | ({"emailed": vars(delivery)} if delivery else {})
    emit(data, lambda: out.print(
        f"扫描完成（{report.now}）：提醒 {report.reminders}，今日到期 {report.due_today}，超期 {report.breaches}，"
        f"督办 {report.escalations}，消息 {report.messages}，重算暂定 {report.recomputed}"
        + (f"；邮件已发送 {delivery.sent}，失败 {delivery.failed}" if delivery else "")))  # fmt: skip


@scheduler_app.command("run")
@edge
def scheduler_run(
    interval: Annotated[int | None, typer.Option("--interval", help="扫描间隔（秒），默认 60。")] = None,
) -> None:
    """启动调度器：每分钟运行一次时限扫描（Ctrl-C 停止）。多个进程同时运行也不会重复提醒。"""
    import logging

    from degreeflow.jobs import sweep_scheduler
    from degreeflow.settings import Settings

    _bounded(interval, "--interval", 1, MAX_INTERVAL, "秒数")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    service = flow()
    seconds = interval if interval is not None else Settings().sweep_interval_seconds
    scheduler = sweep_scheduler(service.db, seconds, OPTIONS.now, blocking=True)
    out.print(f"调度器已启动：每 {seconds} 秒扫描一次时限（Ctrl-C 停止）。")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        out.print("调度器已停止。")


@app.command()
@edge
def inbox(
    as_user: AsOpt,
    limit: Annotated[int, typer.Option("--limit", help="最多显示条数。")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """站内收件箱：时限提醒、到期、超期与督办消息。"""
    _bounded(limit, "--limit", 1, 500, "条数")
    rows = flow().inbox(as_user, limit)

    def render() -> None:
        if not rows:
            out.print(f"{as_user} 的收件箱为空。")
            return
        _table(f"{as_user} 的收件箱", ["时间", "类别", "主题", "案件"],
               [[r["at"][:16].replace("T", " "), r["kind"], r["subject"], r["case_id"]] for r in rows])  # fmt: skip

    emit(rows, render)


# -- letters -----------------------------------------------------------------------------------------------
def renderer():  # type: ignore[no-untyped-def]
    from degreeflow.pdf import PdfRenderer
    from degreeflow.settings import Settings

    settings = Settings()
    return PdfRenderer(settings.letter_fonts, settings.letter_title_fonts)


@letter_app.command("list")
@edge
def letter_list(
    case_id: Annotated[int, typer.Argument(metavar="CASE_ID")],
    as_json: JsonOpt = False,
) -> None:
    """列出案件已签发的文书（文号、签发机关、是否已作废、SHA-256）。"""
    _id(case_id, "CASE_ID")
    rows = flow().documents(case_id)
    emit(rows, lambda: _table(f"案件 #{case_id} 的文书", ["#", "类别", "文号", "标题", "签发机关", "签发时间", "替代", "效力", "SHA-256"], [
        [r["id"], r["kind"], r["number"], r["title"], r["org"], (r["issued_at"] or "")[:16].replace("T", " "),
         r["replaces_id"] or "", f"已作废（{r['void']['reason']}）" if r["void"] else "有效", r["sha256"][:16] + "…"]
        for r in rows
    ]) if rows else out.print(f"案件 #{case_id} 尚无文书。"))  # fmt: skip


@letter_app.command("render")
@edge
def letter_render(
    case_id: Annotated[int, typer.Argument(metavar="CASE_ID")],
    kind: Annotated[
        str, typer.Argument(metavar="KIND", help="文书类别，如 supplement_application、province_rejection。")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="PDF 文件（默认：文号.pdf）。")
    ] = None,
    html: Annotated[bool, typer.Option("--html", help="输出 HTML 而非 PDF。")] = False,
    as_json: JsonOpt = False,
) -> None:
    """生成案件某类文书（最近一次签发的）的 PDF，供打印、签字、盖章。"""
    _id(case_id, "CASE_ID")
    service = flow()
    document, page = service.document_html(service.latest_document(case_id, kind), inline_css=html)
    target = output or Path(f"{document['number']}.{'html' if html else 'pdf'}")
    data = page.encode("utf-8") if html else renderer().pdf(page)
    _write(target, data)
    info = {"document": document["id"], "number": document["number"], "file": str(target), "bytes": len(data)}
    emit(info, lambda: out.print(f"已生成 {target}（{document['number']}，{len(data) // 1024} KB）"))


@letter_app.command("reissue")
@edge
def letter_reissue(
    document_id: Annotated[int, typer.Argument(metavar="DOCUMENT_ID")],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """重新签发：按案件当前数据生成新文号的文书，并注明所替代的文书。"""
    _id(document_id, "DOCUMENT_ID", "文书编号")
    result = flow().reissue(document_id, as_user)
    emit(result, lambda: out.print(f"已重新签发 {result['number']}（替代 {result['replaces']}）"))


@letter_app.command("packet")
@edge
def letter_packet(
    org: Annotated[str, typer.Option("--org", help="签发机关代码。")],
    day: Annotated[str, typer.Option("--date", help="签发日期 YYYY-MM-DD（默认今天）。")] = "",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="PDF 文件。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """把某机关当日签发的文书合成一个 PDF（首页为用印清单），便于集中打印盖章。"""
    from rich.progress import Progress

    service = flow()
    when = _date_arg(day) if day else service.clock.today()
    documents = service.documents(org=org, day=when)
    if not documents:
        raise WorkflowError(f"{org} 在 {when} 没有签发文书", rule="packet_empty")
    pages = [_cover(org, when, documents)] + [service.document_html(d["id"])[1] for d in documents]
    pdf = renderer()
    with Progress(transient=True, disable=OPTIONS.json or not sys.stderr.isatty(), console=err) as progress:
        task = progress.add_task("正在排版文书", total=len(pages))
        data = pdf.packet(pages, progress=lambda: progress.advance(task))
    target = output or Path(f"用印文书-{org}-{when}.pdf")
    _write(target, data)
    info = {"file": str(target), "documents": len(documents), "bytes": len(data)}
    emit(info, lambda: out.print(f"已生成 {target}：{len(documents)} 份文书，{len(data) // 1024} KB"))


def _cover(org: str, when: date, documents: list[dict[str, Any]]) -> str:
    from html import escape as html_escape

    rows = "".join(
        f"<tr><td class='num'>{i}</td><td class='code'>{html_escape(d['number'])}</td><td>{html_escape(d['title'])}</td>"
        f"<td class='num'>#{d['case_id']}</td><td></td></tr>"
        for i, d in enumerate(documents, 1)
    )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'></head><body>"
        f"<section class='form' style='page-break-before: auto'><h2>用印文书清单</h2>"
        f"<div class='meta'><span>签发机关：{html_escape(documents[0]['org'])}（{html_escape(org)}）</span>"
        f"<span>日期：{when.year}年{when.month}月{when.day}日</span><span>共 {len(documents)} 份</span></div>"
        "<table><thead><tr><th style='width: 8%'>序号</th><th style='width: 26%'>文号</th><th>标题</th>"
        "<th style='width: 9%'>案件</th><th style='width: 14%'>用印人签字</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section></body></html>"
    )


# -- registry of degree records ---------------------------------------------------------------------------------
@records_app.command("validate")
@edge
def records_validate(
    file: Annotated[Path, typer.Argument(help="CSV（UTF-8 或 GB18030）或 XLSX，列名为填报规则中的字段名。")],
    org: Annotated[str | None, typer.Option("--org", help="按该学位授予单位校验单位码。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """逐行校验学位授予信息文件（不导入），并在文件旁生成错误报告工作簿。"""
    with _FileErrors(file):
        result = flow().records_validate(file, org)

    def render() -> None:
        if not result["problems"]:
            out.print(f"{file.name}：{result['rows']} 行全部通过校验。")
            return
        _table(f"{file.name}：{result['invalid_rows']} 行有错误（共 {result['rows']} 行）", ["行", "字段", "代码", "说明"],
               [[p["row"] or "—", p["column"], p["code"], p["message"]] for p in result["problems"]])  # fmt: skip
        out.print(f"错误报告：{result['report']}")

    emit(result, render)
    if result["problems"]:
        raise typer.Exit(7)


@records_app.command("import")
@edge
def records_import(
    file: Annotated[Path, typer.Argument(help="CSV（UTF-8 或 GB18030）或 XLSX。")],
    as_user: Annotated[
        str | None, typer.Option("--as", help="导入人的用户名（每次导入都记录导入人），如 10635XW01。")
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="学位授予单位代码（单位工作人员导入本单位，可省略）。")
    ] = None,
    filed: Annotated[
        bool,
        typer.Option(
            "--filed",
            help="本单位已备案的学位授予信息：须本单位另一名工作人员确认（records confirm）后生效。",
        ),
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="跳过有错误的行，只导入正确的行。")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """在一个事务中导入：任何一行有错误则整份文件不导入（除非 --skip-invalid）。

    学位中心或国务院学位委员会办公室导入的是全国学位授予信息库，导入即可网上查询；学位授予单位导入的是工作副本，
    不公开；单位导入已备案数据（--filed）须另一名工作人员确认。每次导入都记录导入人、文件 SHA-256 和行数。"""
    from rich.progress import Progress

    with Progress(transient=True, disable=OPTIONS.json or not sys.stderr.isatty(), console=err) as progress:
        task = progress.add_task("正在导入", total=None)
        with _FileErrors(file):
            result = flow().records_import(file, org, skip_invalid, lambda n: progress.advance(task, n),
                                           as_user=as_user, filed=filed)  # fmt: skip
    emit(
        result,
        lambda: out.print(
            f"已导入 {result['stored']} 条记录（导入记录 #{result['import_id']}：{result['status_label']}）"
            + (f"，跳过 {result['skipped']} 行（见 {result['report']}）" if result["skipped"] else "")
            + (
                "。请由本单位另一名工作人员确认：degreeflow records confirm "
                f"{result['import_id']} --as 用户名"
                if result["status"] == "pending"
                else ""
            )
        ),
    )


@records_app.command("confirm")
@edge
def records_confirm(
    import_id: Annotated[int, typer.Argument(metavar="IMPORT_ID", help="导入记录编号（records imports）。")],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """确认本单位导入的已备案数据（须由导入人以外的本单位工作人员确认）。"""
    found = flow().records_confirm(import_id, as_user)
    emit(found, lambda: out.print(
        f"导入记录 #{found['id']}（{found['filename']}，{found['accepted']} 条）已由 {found['confirmed_by_name']} 确认"
    ))  # fmt: skip


@records_app.command("imports")
@edge
def records_imports(
    as_user: Annotated[str | None, typer.Option("--as", help="只列出该用户可见的导入。")] = None,
    org: Annotated[str | None, typer.Option("--org", help="只列出该单位的导入。")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="最多列出多少条。")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """导入记录：导入人、时间、文件及其 SHA-256、接受与拒绝的行数、状态、确认人。"""
    found = flow().records_imports(as_user, org, limit)

    def render() -> None:
        if not found:
            out.print("没有导入记录。")
            return
        _table("学位授予信息导入记录", ["编号", "时间", "单位", "导入人", "文件", "SHA-256", "接受", "拒绝", "类别", "状态", "确认人"], [
            [r["id"], (r["at"] or "")[:16].replace("T", " "), r["unit_code"], f"{r['importer_name']}（{r['importer']}）",
             r["filename"], r["sha256"][:12], r["accepted"], r["refused"], r["kind_label"], r["status_label"],
             f"{r['confirmed_by_name']}（{r['confirmed_by']}）" if r["confirmed_by"] else ""]
            for r in found
        ])  # fmt: skip

    emit(found, render)


@records_app.command("export")
@edge
def records_export(
    file: Annotated[Path, typer.Argument(help="输出文件：.csv（UTF-8）或 .xlsx。")],
    org: Annotated[str | None, typer.Option("--org", help="只导出该单位。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """导出学位授予信息（含状态）。"""
    with _FileErrors(file):
        count = flow().records_export(file, org)
    emit({"file": str(file), "rows": count}, lambda: out.print(f"已导出 {count} 条记录到 {file}"))


@records_app.command("history")
@edge
def records_history(
    cert_no: Annotated[str, typer.Argument(metavar="CERT_NO")],
    as_json: JsonOpt = False,
) -> None:
    """一条记录的变更历史（每个旧值及修改它的案件）。"""
    found = flow().record_history(cert_no)

    def render() -> None:
        out.print(f"{found['cert_no']} {found['name']}  状态：{found['standing']}  来源：{found['source']}")
        _table("变更历史", ["时间", "案件", "操作", "字段", "原值", "新值"], [
            [c["at"], c["case_id"] or "", c["action"], c["field_label"], c["old"], c["new"]] for c in found["changes"]
        ])  # fmt: skip

    emit(found, render)


@app.command()
@edge
def query(
    cert_no: Annotated[str, typer.Argument(metavar="CERT_NO")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    client: Annotated[str, typer.Option("--client", help="查询方（地址或单位），用于限流与日志。")] = "local",
    member: Annotated[bool, typer.Option("--member", help="会员单位查询（不限流）。")] = False,
    as_json: JsonOpt = False,
) -> None:
    """学位证书网上查询：按证书编号和姓名查询已备案、未撤销、可公开的学位信息。"""
    answer = flow().query_certificate(cert_no, name, client, member)

    def render() -> None:
        if answer["status"] != "found":
            err.print(answer["message"])
            return
        _table("学位证书查询结果", ["项目", "内容"], [[k, v] for k, v in answer["record"].items()])

    emit(answer, render)
    if answer["status"] == "limited":
        raise typer.Exit(12)
    if answer["status"] != "found":
        raise typer.Exit(4)


# -- audit and definitions ---------------------------------------------------------------------------------
@audit_app.command("verify")
@edge
def audit_verify(
    case_id: Annotated[int | None, typer.Option("--case", help="只核验该案件。")] = None,
    as_json: JsonOpt = False,
) -> None:
    """核验审计哈希链：每条记录的内容与前后链接均未被篡改。"""
    _id(case_id, "--case")
    report = flow().verify_audit(case_id)
    data = {"ok": report.ok, "cases": report.cases, "events": report.events,
            "problems": [p.to_dict() for p in report.problems]}  # fmt: skip

    def render() -> None:
        if report.ok:
            out.print(f"审计链完好：{report.cases} 个案件，{report.events} 条记录。")
        else:
            for problem in report.problems:
                err.print(f"案件 #{problem.case_id} 第 {problem.seq} 条：{problem.problem}")

    emit(data, render)
    if not report.ok:
        raise typer.Exit(9)


@defs_app.command("check")
@edge
def definitions_check(as_json: JsonOpt = False) -> None:
    """检查流程定义：不可达状态、死胡同、无守卫的操作。"""
    problems = DegreeFlow.definitions_check()
    emit({"ok": not problems, "problems": problems},
         lambda: out.print("流程定义检查通过。" if not problems else "\n".join(problems)))  # fmt: skip
    if problems:
        raise typer.Exit(8)


@defs_app.command("show")
@edge
def definitions_show(
    case_type: Annotated[str | None, typer.Argument(metavar="[TYPE]")] = None,
    as_json: JsonOpt = False,
) -> None:
    """列出各案件类型的状态与操作。"""
    from cases.registry import DEFINITIONS

    chosen = [DEFINITIONS[case_type]] if case_type in DEFINITIONS else list(DEFINITIONS.values())
    if case_type and case_type not in DEFINITIONS:
        raise WorkflowError(
            f"案件类型 {case_type} 不存在（可用：{'、'.join(DEFINITIONS)}）", rule="case_type_exists"
        )
    data = [
        {"type": d.name, "label": d.label, "initial": d.initial, "terminal": sorted(d.terminal),
         "steps": [{"trigger": s.trigger, "from": s.source, "to": s.dest, "actors": list(s.actors),
                    "automatic": s.automatic, "label": s.label} for s in d.steps]}
        for d in chosen
    ]  # fmt: skip

    def render() -> None:
        for d in chosen:
            _table(f"{d.label}（{d.name}）", ["从", "操作", "到", "办理方", "说明"], [
                [s.source, s.trigger + ("（自动）" if s.automatic else ""), s.dest, "、".join(s.actors), s.label]
                for s in d.steps
            ])  # fmt: skip

    emit(data, render)


# Backup and case dossiers (degreeflow/cli_backup.py uses edge, flow and emit defined above).
from degreeflow import cli_units  # noqa: E402, F401 - registers `dept` and `auth`
from degreeflow.cli_backup import backup, case_export  # noqa: E402

app.command("backup")(backup)
case_app.command("export")(case_export)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
