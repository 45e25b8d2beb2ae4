"""The web application: server-rendered pages in Simplified Chinese and a JSON API under /api/v1.

Every route calls the service layer (`cases.service.DegreeFlow`) with the signed-in person; the service applies
the same role and scope rules as the CLI. Another organisation's case is answered with 404, never 403.
Sessions are signed cookies (Starlette's SessionMiddleware, itsdangerous); every form carries a CSRF token
kept in the session, and the API takes it in the `X-CSRF-Token` header.
"""

from __future__ import annotations

import gc
import io
import logging
import secrets
import shutil
import threading
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cases import attachments as attachment_rules
from cases import records as records_rules
from cases import registry, worklist
from cases import units as unit_rules
from cases.degree_record import COLUMN as RECORD_COLUMNS
from cases.service import DegreeFlow
from cases.vocabulary import CENTER, LEVELS, NATIONAL, PROVINCE, ROLES_BY_KIND, UNIT
from degreeflow.settings import Settings
from degreeflow.web import diagram
from degreeflow.web.api import MAX_BODY_BYTES, MAX_ID, CaseId, DocumentId
from degreeflow.web.forms import FormField, form_fields, payload_from_form, values_for_form
from degreeflow.web.lanes import ReadLane
from scheduler.calendar import DateOutOfRange
from workflow import (
    Actor,
    Conflict,
    FieldSet,
    Forbidden,
    InvalidPayload,
    NotAllowedInState,
    NotFound,
    UnknownTrigger,
    WorkflowError,
)

log = logging.getLogger("degreeflow.web")
HERE = Path(__file__).resolve().parent
PAGE_SIZE = 50
STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, InvalidPayload: 422, NotAllowedInState: 409,
          UnknownTrigger: 404}  # fmt: skip
# Steps that cannot be undone: pressing the button shows a confirmation page first (HTML only, no script), and
# the step is taken when the person confirms there. What the confirmation says happens besides the new state.
CONFIRM_FIRST = {
    "reject": "驳回后案件即办结，复函（附驳回理由）将编号签发。",
    "revoke": "撤销备案后，该学位授予信息从网上查询中删除，案件办结。",
    "cancel": "作废后案件即办结，不再提醒或督办。",
    "refuse": "不予受理后案件即办结。",
}
CONFIRMED = "confirmed"  # the confirmation page's hidden input (never part of a step's data)


def status_of(error: WorkflowError) -> int:
    for kind, status in STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


class LoginRequired(Exception):
    pass


class CsrfFailed(Exception):
    pass


@dataclass
class ImportJob:
    id: str
    owner: int
    org: str
    filename: str
    total: int = 0
    done: int = 0
    phase: str = "校验中"
    finished: bool = False
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    report: Path | None = None
    started: datetime = field(default_factory=datetime.now)


def create_app(flow: DegreeFlow, settings: Settings | None = None, *, scheduler: bool = False) -> FastAPI:
    settings = settings or Settings()
    problem = settings.secret_problem()
    if problem:
        raise RuntimeError(problem)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.auto_reload = False  # the templates ship with the code: no stat() of every file per page
    templates.env.globals.update(levels=LEVELS, roles=ROLES_BY_KIND, now=flow.clock.now)
    render_lock = threading.Lock()
    renderer_box: dict[str, Any] = {}
    jobs: dict[str, ImportJob] = {}
    data_dir = Path(settings.data_dir)
    max_upload = settings.max_upload_mb * 1024 * 1024
    if flow.attachments_dir is None:
        flow.attachments_dir = data_dir / "attachments"

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        # Handlers run in worker threads. Python runs one thread at a time, so forty threads (the default) only
        # take turns mid-request and queue for database connections: quick reads go one at a time through the
        # read lane (degreeflow/web/lanes.py), writes and file downloads share a few threads beside it.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        running = None
        if scheduler:
            from degreeflow.jobs import sweep_scheduler

            running = sweep_scheduler(flow.db, settings.sweep_interval_seconds, settings.now, blocking=False)
            running.start()
            log.info("scheduler started: sweep every %s s", settings.sweep_interval_seconds)
        yield
        if running is not None:
            running.shutdown(wait=False)

    app = FastAPI(
        title="degreeflow",
        summary="学位授予信息补报、修改、勘误、撤销、照片补报与学位认证案件管理",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="degreeflow_session",
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, prefix="/api/", upload_limit=max_upload + 65536)
    # Added last, so outermost: a read's whole computation (session, page) is in the lane.
    app.add_middleware(ReadLane, size=settings.web_reads)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.flow = flow
    app.state.jobs = jobs
    app.state.templates = templates

    # -- helpers ---------------------------------------------------------------------------------------
    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def check_csrf(request: Request, submitted: Any) -> None:
        expected = request.session.get("csrf")
        if not expected or not isinstance(submitted, str) or not secrets.compare_digest(expected, submitted):
            raise CsrfFailed()

    def current(request: Request) -> Actor | None:
        uid = request.session.get("uid")
        if not isinstance(uid, int):
            return None
        try:
            actor = flow.actor(uid)
        except NotFound:
            request.session.clear()
            return None
        if not actor.active:
            request.session.clear()
            return None
        return actor

    def require(request: Request) -> Actor:
        actor = current(request)
        if actor is None:
            raise LoginRequired()
        return actor

    def client_address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def flash(request: Request, message: str, kind: str = "ok") -> None:
        request.session.setdefault("flash", []).append([kind, message])

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        user = context.pop("user", None) or current(request)
        flashes = request.session.pop("flash", []) if "flash" in request.session else []
        context.update(user=user, csrf_token=csrf_token(request), flashes=flashes, path=request.url.path)
        return templates.TemplateResponse(request, name, context, status_code=status)

    def renderer():  # type: ignore[no-untyped-def]
        if "pdf" not in renderer_box:
            from degreeflow.pdf import PdfRenderer

            renderer_box["pdf"] = PdfRenderer(settings.letter_fonts, settings.letter_title_fonts)
        return renderer_box["pdf"]

    def can_open(actor: Actor) -> list[tuple[str, str]]:
        return [(name, d.label) for name, d in registry.DEFINITIONS.items()
                if actor.org_kind in d.open_actors and (not d.open_roles or actor.role in d.open_roles)]  # fmt: skip

    def units_for(actor: Actor) -> list[dict[str, Any]]:
        orgs = flow.list_orgs()
        units = [o for o in orgs if o["kind"] == UNIT]
        if actor.org_kind == UNIT:
            return [o for o in units if o["code"] == actor.org_code]
        if actor.org_kind == PROVINCE:
            return [o for o in units if o["parent"] == actor.org_code]
        return units

    def api_error(code: str, message: str, field: str | None, status: int) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    # -- errors, translated at the edge ----------------------------------------------------------------
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return api_error("not_signed_in", "请先登录", None, 401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        message = "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
        if is_api(request):
            return api_error("csrf_failed", message, "X-CSRF-Token", 403)
        return page(request, "error.html", {"title": "请求被拒绝", "message": message}, 403)

    @app.exception_handler(WorkflowError)
    async def _workflow_error(request: Request, exc: WorkflowError) -> Response:
        status = status_of(exc)
        if is_api(request):
            return api_error(exc.code, exc.message, exc.field, status)
        title = {404: "未找到", 403: "无权办理", 409: "状态已变化"}.get(status, "无法办理")
        return page(request, "error.html", {"title": title, "message": exc.message}, status)

    @app.exception_handler(DateOutOfRange)
    async def _date_out_of_range(request: Request, exc: DateOutOfRange) -> Response:
        # A date the calendar cannot count from (field dates are bounded before; this is the second line).
        if is_api(request):
            return api_error(exc.code, exc.message, exc.field, 422)
        return page(request, "error.html", {"title": "无法办理", "message": exc.message}, 422)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = f"请求参数 {where or ''} 无效：{first.get('msg', '')}".strip()
        if is_api(request):
            return api_error("invalid_request", message, where, 422)
        return page(request, "error.html", {"title": "请求无效", "message": message}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {400: "请求内容无法解析（不是合法的 JSON 或表单）", 404: "页面不存在", 405: "不支持此请求方式",
                   413: f"请求内容过大（上限 {MAX_BODY_BYTES // 1048576} MB）"}.get(exc.status_code, str(exc.detail))  # fmt: skip
        if is_api(request):
            return api_error("http_error", message, None, exc.status_code)
        return page(request, "error.html", {"title": message, "message": message}, exc.status_code)

    # -- sign-in ---------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        return RedirectResponse("/queue" if current(request) else "/login", status_code=303)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/queue") -> Response:
        return page(request, "login.html", {"next": _safe_next(next), "demo": settings.demo,
                                            "demo_users": _demo_users() if settings.demo else []})  # fmt: skip

    def _demo_users() -> list[dict[str, Any]]:
        from degreeflow import demo

        return [{"username": u, "name": n, "role": r, "org": o} for u, n, r, o in demo.USERS]

    @app.post("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, form.get("csrf_token"))
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        username = username.replace("\x00", "")  # PostgreSQL text cannot hold NUL: no such user, refused
        target = _safe_next(str(form.get("next", "/queue")))
        try:
            actor = flow.sign_in(username, password, client_address(request))
        except Forbidden as exc:
            return page(request, "login.html", {"next": target, "error": exc.message, "username": username[:64],
                                                "demo": settings.demo,
                                                "demo_users": _demo_users() if settings.demo else []}, 401)  # fmt: skip
        request.session.clear()  # a fresh session (and CSRF token) after sign-in
        request.session.update(uid=actor.id, csrf=secrets.token_urlsafe(32))
        return RedirectResponse(target, status_code=303)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, form.get("csrf_token"))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- pages -----------------------------------------------------------------------------------------
    @app.get("/queue", response_class=HTMLResponse, include_in_schema=False)
    def queue_page(request: Request, page_no: PageNo = 1) -> Response:
        actor = require(request)
        page_no = max(page_no, 1)
        rows, total = flow.queue(actor, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
        return page(request, "queue.html", {"user": actor, "rows": rows, "total": total, "page_no": page_no,
                                            "count_cap": worklist.COUNT_CAP,
                                            "pages": max(1, -(-total // PAGE_SIZE))})  # fmt: skip

    @app.get("/cases", response_class=HTMLResponse, include_in_schema=False)
    def cases_page(
        request: Request, type: str = "", state: str = "", org: str = "", q: str = "", open: str = "",
        page_no: PageNo = 1,
    ) -> Response:  # fmt: skip
        actor = require(request)
        page_no = max(page_no, 1)
        filters = {"case_type": type or None, "state": state or None, "org": org or None, "text": q or None,
                   "open_only": open == "1"}  # fmt: skip
        rows, total = flow.search_cases(
            actor.id, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE, **filters
        )
        states = sorted({(s, d.state_label(s)) for n, d in registry.DEFINITIONS.items() if not type or n == type
                         for s in d.states})  # fmt: skip
        query = urlencode(
            {k: v for k, v in {"type": type, "state": state, "org": org, "q": q, "open": open}.items() if v}
        )
        return page(request, "cases.html", {
            "user": actor, "rows": rows, "total": total, "page_no": page_no, "pages": max(1, -(-total // PAGE_SIZE)),
            "types": [(n, d.label) for n, d in registry.DEFINITIONS.items()], "states": states,
            "units": units_for(actor), "f": {"type": type, "state": state, "org": org, "q": q, "open": open},
            "query": query, "can_open": can_open(actor),
        })  # fmt: skip

    @app.get("/cases/new", response_class=HTMLResponse, include_in_schema=False)
    def new_case_choice(request: Request) -> Response:
        actor = require(request)
        return page(request, "new_choice.html", {"user": actor, "types": can_open(actor)})

    def _open_fields(case_type: str) -> list[FormField]:
        return form_fields(flow.engine.definition(case_type).open_requires)

    def refuse_oversized(request: Request, field: str, label: str) -> None:
        """A request larger than an upload may be is refused before its body is read."""
        if int(request.headers.get("content-length") or 0) > max_upload + 65536:
            raise InvalidPayload(f"字段 {field}（{label}）：文件超过上限 {settings.max_upload_mb} MB", field=field,
                                 rule="file_size")  # fmt: skip

    async def save_record_file(
        upload: Any, folder: Path, *, field: str, label: str, limit: int | None = None
    ) -> Path:
        """An uploaded record file (CSV or XLSX, by its name) copied into `folder`, at most `limit` bytes."""
        name = attachment_rules.safe_name(upload.filename or "records.csv")
        if not name.lower().endswith((".csv", ".xlsx")):
            raise InvalidPayload(
                f"{label}：只接受 .csv 或 .xlsx 文件，收到“{name}”", field=field, rule="file_type"
            )
        folder.mkdir(parents=True, exist_ok=True)
        path, size = folder / name, 0
        with path.open("wb") as handle:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if limit is not None and size > limit:
                    raise InvalidPayload(f"{label}：文件超过上限 {settings.max_upload_mb} MB", field=field,
                                         rule="file_size")  # fmt: skip
                handle.write(chunk)
        return path

    async def rows_from_files(form: Any, fields: list[FormField], payload: dict[str, Any]) -> None:
        """The rows of a degree-record list (`FormField.upload`) from its uploaded CSV or XLSX file, read as
        `records import` reads one (Chinese column names, UTF-8 or GB18030); the file is not kept."""
        from cases import record_files

        for spec in fields:
            upload = form.get(spec.file_input) if spec.upload else None
            if upload is None or isinstance(upload, str) or not upload.filename:
                continue
            label = f"字段 {spec.name}（{spec.label}）"
            folder = data_dir / "uploads" / uuid.uuid4().hex
            try:
                path = await save_record_file(upload, folder, field=spec.name, label=label, limit=max_upload)
                try:
                    rows = await anyio.to_thread.run_sync(record_files.read_rows, path)
                except WorkflowError as exc:
                    raise InvalidPayload(f"{label}：{exc.message}", field=spec.name, rule=exc.rule) from exc
                except Exception as exc:  # a damaged workbook, a file that is not what its name says
                    raise InvalidPayload(f"{label}：无法读取文件“{path.name}”（{type(exc).__name__}），请检查文件格式",
                                         field=spec.name, rule="file_unreadable") from exc  # fmt: skip
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            if not rows:
                raise InvalidPayload(
                    f"{label}：文件“{path.name}”中没有记录", field=spec.name, rule="required_field"
                )
            payload[spec.name] = [dict(row) for row in rows]

    def field_errors(exc: WorkflowError, fields: list[FormField]) -> dict[str, str]:
        """The refusal next to the input it names; a record of an uploaded file (`data[3].gender`) next to the
        file input too, as its rows have no inputs of their own."""
        errors = {exc.field or "_": exc.message}
        head = (exc.field or "").split("[", 1)[0]
        if head != exc.field and any(f.upload and f.name == head for f in fields):
            errors[head] = exc.message
        return errors

    @app.get("/cases/new/{case_type}", response_class=HTMLResponse, include_in_schema=False)
    def new_case_form(request: Request, case_type: str) -> Response:
        actor = require(request)
        defn = flow.engine.definition(case_type)
        if (case_type, defn.label) not in can_open(actor):
            raise Forbidden(f"{actor.org_name}不能新建{defn.label}案件", rule="actor_level")
        fields = _open_fields(case_type)
        return page(request, "new_case.html", {"user": actor, "defn": defn, "fields": fields, "values": {},
                                               "errors": {}, "units": units_for(actor)})  # fmt: skip

    @app.post("/cases/new/{case_type}", response_class=HTMLResponse, include_in_schema=False)
    async def new_case(request: Request, case_type: str) -> Response:
        actor = require(request)
        refuse_oversized(request, "data", "上传文件")
        async with request.form() as form:  # closes the uploaded files' spools at the end
            check_csrf(request, form.get("csrf_token"))
            defn = flow.engine.definition(case_type)
            fields = _open_fields(case_type)
            payload = payload_from_form(form, fields)
            org = str(form.get("org") or actor.org_code)
            note = str(form.get("note", ""))[:2000]
            try:
                await rows_from_files(form, fields, payload)
                result = flow.open_case(case_type, org, actor.username, payload, note)
            except WorkflowError as exc:
                errors = field_errors(exc, fields)
                return page(request, "new_case.html", {
                    "user": actor, "defn": defn, "fields": fields, "values": values_for_form(payload, fields),
                    "errors": errors, "error": exc.message, "units": units_for(actor), "org": org, "note": note,
                }, status_of(exc))  # fmt: skip
            flash(request, f"已新建{defn.label}案件 #{result.case_id}")
            return RedirectResponse(f"/cases/{result.case_id}", status_code=303)

    def _actions(case: dict[str, Any], defn: Any) -> list[dict[str, Any]]:
        """The steps this person may take now, each with the form fields it needs (prefilled from the case); a
        step the two-person rule keeps from this person is listed too, with the reason (`blocked`)."""
        actions = []
        for item in (case["allowed"] or []) + (case.get("blocked") or []):
            step = defn.candidates(case["state"], item["trigger"])[0]
            fields = form_fields(step.requires)
            prefill = {
                k: v
                for k, v in case["payload"].items()
                if not any(r.fresh and r.name == k for r in step.requires)
            }
            actions.append({**item, "fields": fields, "values": values_for_form(prefill, fields),
                            "danger": item["trigger"] in ("reject", "refuse", "return", "withdraw", *CONFIRM_FIRST),
                            "confirm": item["trigger"] in CONFIRM_FIRST})  # fmt: skip
        return actions

    def _case_context(actor: Actor, case_id: int) -> dict[str, Any]:
        case = flow.case_for(case_id, actor.id)
        defn = flow.engine.definition(case["type"])
        needs = flow.attachment_needs(case_id, case["rule_set"], case["type"])
        return {
            "user": actor, "case": case, "defn": defn, "actions": _actions(case, defn),
            "documents": flow.documents(case_id), "attachments": flow.attachments(case_id),
            "attachment_needs": needs, "purposes": attachment_rules.PURPOSES.values(),
            "purpose": next((n["purpose"] for n in needs if not n["uploaded"]), attachment_rules.DEFAULT_PURPOSE),
            "diagram": diagram.svg(defn, case["state"]), "errors": {}, "failed": None,
            "data_rows": _data_rows(case["payload"]), "labels": _labels(defn),
        }  # fmt: skip

    @app.get("/cases/{case_id}", response_class=HTMLResponse, include_in_schema=False)
    def case_page(request: Request, case_id: CaseId) -> Response:
        actor = require(request)
        return page(request, "case.html", _case_context(actor, case_id))

    @app.get("/cases/{case_id}/diagram.svg", include_in_schema=False)
    def case_diagram(request: Request, case_id: CaseId) -> Response:
        actor = require(request)
        case = flow.case_for(case_id, actor.id)
        return Response(
            diagram.svg(flow.engine.definition(case["type"]), case["state"]), media_type="image/svg+xml"
        )

    @app.post("/cases/{case_id}/steps/{trigger}", response_class=HTMLResponse, include_in_schema=False)
    async def fire_step(request: Request, case_id: CaseId, trigger: str) -> Response:
        actor = require(request)
        refuse_oversized(request, "data", "上传文件")
        async with request.form() as form:  # closes the uploaded files' spools at the end
            check_csrf(request, form.get("csrf_token"))
            case = flow.case_for(case_id, actor.id)  # also: 404 for a case outside the person's scope
            defn = flow.engine.definition(case["type"])
            action = next((a for a in _actions(case, defn) if a["trigger"] == trigger), None)
            fields = action["fields"] if action else []
            payload = payload_from_form(form, fields)
            payload.pop(CONFIRMED, None)
            code = str(form.get("authorization_code", "")).strip()
            if code:
                payload["authorization_code"] = code[:32]
            note = str(form.get("note", ""))[:2000]
            try:
                version = int(str(form.get("version", "")))
            except ValueError:
                version = None
            if version is not None and not 1 <= version <= MAX_ID:
                version = (
                    0  # no case has this version: refused as changed by someone else (409), as any stale one
                )

            def refused(exc: WorkflowError) -> Response:
                context = _case_context(actor, case_id)
                for item in context["actions"]:
                    if item["trigger"] == trigger:
                        item["values"] = values_for_form(payload, item["fields"])
                        item["note"] = note
                context.update(errors=field_errors(exc, fields), failed=trigger, error=exc.message)
                return page(request, "case.html", context, status_of(exc))

            if action is not None and action["confirm"] and form.get(CONFIRMED) != "1":
                # Not yet: the fields are checked (a missing reason is said on the case page, as ever), then
                # the person sees what will happen and confirms, or goes back; nothing changes before that.
                step = defn.candidates(case["state"], trigger)[0]
                try:
                    FieldSet(step.requires).validate({**case["payload"], **payload}, note, dict(payload))
                except WorkflowError as exc:
                    return refused(exc)
                # What was typed, by its label (a reason typed as the note is shown as the reason).
                shown = [(r.label, payload.get(r.name) or note) for r in step.requires
                         if payload.get(r.name) or (r.from_note and note)]  # fmt: skip
                note_used = any(r.from_note and not payload.get(r.name) for r in step.requires)
                hidden = [(k, v) for k, v in form.multi_items() if isinstance(v, str) and k not in ("csrf_token", CONFIRMED)]
                return page(request, "confirm.html", {
                    "user": actor, "case": case, "action": action, "consequence": CONFIRM_FIRST[trigger],
                    "to_state": defn.state_label(step.dest), "voids": step.voids_letters, "shown": shown,
                    "note": "" if note_used else note, "hidden": hidden, "confirmed": CONFIRMED,
                })  # fmt: skip
            try:
                await rows_from_files(form, fields, payload)
                result = flow.fire(case_id, trigger, actor.username, note, payload, expected_version=version)
            except WorkflowError as exc:
                return refused(exc)
            notice = f"。请注意：{result.notice}" if result.notice else ""
            flash(
                request,
                f"已办理：{action['label'] if action else trigger}，当前状态：{defn.state_label(result.to_state)}{notice}",
            )
            return RedirectResponse(f"/cases/{case_id}", status_code=303)

    @app.post("/cases/{case_id}/authorization/{trigger}", include_in_schema=False)
    async def request_code(request: Request, case_id: CaseId, trigger: str) -> Response:
        actor = require(request)
        form = await request.form()
        check_csrf(request, form.get("csrf_token"))
        sent = flow.request_authorization(case_id, trigger, actor.username)
        flash(request, f"授权码已发送给主管领导：{sent['leaders']}（10 分钟内有效）")
        return RedirectResponse(f"/cases/{case_id}#step-{trigger}", status_code=303)

    @app.post("/cases/{case_id}/attachments", include_in_schema=False)
    async def upload(request: Request, case_id: CaseId) -> Response:
        actor = require(request)
        refuse_oversized(request, "file", "附件")
        async with request.form(max_part_size=max_upload + 1) as form:
            check_csrf(request, form.get("csrf_token"))
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise InvalidPayload("字段 file（附件）：请选择文件", field="file", rule="required_field")
            content = await upload.read(max_upload + 1)
            filename = upload.filename or ""
            purpose = str(form.get("purpose") or attachment_rules.DEFAULT_PURPOSE)[:64]
        try:
            saved = flow.add_attachment(case_id, actor.id, filename, content, max_upload, purpose=purpose)
        except InvalidPayload as exc:
            context = _case_context(actor, case_id)
            context.update(errors={exc.field or "file": exc.message}, error=exc.message, purpose=purpose)
            return page(request, "case.html", context, 422)
        flash(request, f"已上传附件 {saved['filename']}（{saved['purpose_label']}）")
        return RedirectResponse(f"/cases/{case_id}#attachments", status_code=303)

    @app.get("/cases/{case_id}/attachments/{attachment_id}", include_in_schema=False)
    def download_attachment(request: Request, case_id: CaseId, attachment_id: CaseId) -> Response:
        actor = require(request)
        row, path = flow.attachment_file(case_id, attachment_id, actor.id)
        headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['filename'])}",
                   "X-Content-Type-Options": "nosniff"}  # fmt: skip
        return Response(path.read_bytes(), media_type=row["content_type"], headers=headers)

    def _document_pdf(actor: Actor, document_id: int) -> tuple[dict[str, Any], bytes]:
        document, html = flow.document_for(document_id, actor.id)
        with render_lock:
            data = renderer().pdf(html)
        return document, data

    @app.get("/documents/{document_id}.pdf", include_in_schema=False)
    def document_pdf(request: Request, document_id: DocumentId) -> Response:
        actor = require(request)
        document, data = _document_pdf(actor, document_id)
        name = f"{document['number']}.pdf"
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}"})  # fmt: skip

    @app.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
    def inbox_page(request: Request) -> Response:
        actor = require(request)
        return page(request, "inbox.html", {"user": actor, "messages": flow.inbox(actor.username, limit=200)})

    @app.get("/query", response_class=HTMLResponse, include_in_schema=False)
    def query_page(request: Request, cert_no: str = "", name: str = "") -> Response:
        answer = None
        errors: dict[str, str] = {}
        if cert_no or name:
            if not cert_no.strip():
                errors["cert_no"] = "字段 cert_no（学位证书编号）：必须填写"
            if not name.strip():
                errors["name"] = "字段 name（姓名）：必须填写"
            if not errors:
                actor = current(request)
                answer = flow.query_certificate(cert_no[:32], name[:100], client=client_address(request),
                                                member=actor is not None)  # fmt: skip
        status = 429 if answer and answer["status"] == "limited" else 200
        return page(request, "query.html", {"answer": answer, "cert_no": cert_no[:32], "name": name[:100],
                                            "errors": errors}, status)  # fmt: skip

    @app.get("/overview", response_class=HTMLResponse, include_in_schema=False)
    def overview_page(request: Request) -> Response:
        actor = require(request)
        if actor.org_kind == UNIT:
            raise NotFound("页面不存在", rule="page_exists")
        return page(request, "overview.html", {"user": actor, "data": flow.overview(actor.id)})

    # -- inside a unit: departments and registration forms; verification task counts (issue 8) -------------
    def unit_in_scope(actor: Actor, unit: str) -> str:
        """The unit this person may look at: a unit user their own; a province its units; the national
        levels any. Another one is "not found"."""
        code = actor.org_code if actor.org_kind == UNIT and not unit else unit.strip()[:16]
        if code not in {u["code"] for u in units_for(actor)}:
            raise NotFound(
                f"字段 unit（学位授予单位）：没有可查看的单位“{code}”", field="unit", rule="unit_in_scope"
            )
        return code

    @app.get("/departments", response_class=HTMLResponse, include_in_schema=False)
    def departments_page(request: Request, unit: str = "") -> Response:
        actor = require(request)
        code = unit_in_scope(actor, unit) if unit or actor.org_kind == UNIT else ""
        found = flow.departments(code) if code else []
        return page(request, "departments.html", {"user": actor, "unit": code, "departments": found,
                                                  "units": units_for(actor)})  # fmt: skip

    @app.get("/departments/forms.pdf", include_in_schema=False)
    def registration_forms(request: Request, unit: str = "") -> Response:
        code = unit_in_scope(require(request), unit)
        html = flow.registration_forms_html(code)
        with render_lock:
            data = renderer().pdf(html)
        name = f"{code}-学位认证账号登记表.pdf"
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}"})  # fmt: skip

    def fee_period(actor: Actor, start: str, end: str) -> tuple[date, date, str | None]:
        if actor.org_kind == PROVINCE:
            raise NotFound("页面不存在", rule="page_exists")
        today = flow.clock.today()
        first = _form_date(start, "from", today.replace(day=1))
        last = _form_date(end, "to", today)
        return first, last, actor.org_code if actor.org_kind == UNIT else None

    @app.get("/fees", response_class=HTMLResponse, include_in_schema=False)
    def fees_page(
        request: Request, start: str = Query("", alias="from"), end: str = Query("", alias="to")
    ) -> Response:
        actor = require(request)
        first, last, unit = fee_period(actor, start, end)
        rows = flow.verification_counts(first, last, unit)
        return page(request, "fees.html", {"user": actor, "rows": rows, "start": first.isoformat(),
                                           "end": last.isoformat(), "total": sum(r["tasks"] for r in rows)})  # fmt: skip

    @app.get("/fees.xlsx", include_in_schema=False)
    def fees_xlsx(
        request: Request, start: str = Query("", alias="from"), end: str = Query("", alias="to")
    ) -> Response:
        actor = require(request)
        first, last, unit = fee_period(actor, start, end)
        buffer = io.BytesIO()
        unit_rules.fee_workbook(flow.verification_counts(first, last, unit), first, last, buffer)
        name = f"学位信息核查任务统计-{first.isoformat()}-{last.isoformat()}.xlsx"
        return Response(buffer.getvalue(), media_type=attachment_rules.ALLOWED["xlsx"][0],
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})  # fmt: skip

    # -- records -------------------------------------------------------------------------------------------
    def records_context(actor: Actor, cert_no: str = "") -> dict[str, Any]:
        history = None
        error = None
        if cert_no.strip():
            try:
                history = flow.record_history_for(cert_no.strip()[:32], actor.id)
            except NotFound as exc:
                error = exc.message
        mine = [j for j in jobs.values() if j.owner == actor.id]
        return {"user": actor, "history": history, "cert_no": cert_no[:32], "error": error, "jobs": mine[-5:],
                "units": units_for(actor), "imports": flow.records_imports(actor.id, limit=20),
                "confirm_roles": records_rules.CONFIRM_ROLES}  # fmt: skip

    @app.get("/records", response_class=HTMLResponse, include_in_schema=False)
    def records_page(request: Request, cert_no: str = "") -> Response:
        actor = require(request)
        return page(request, "records.html", records_context(actor, cert_no))

    @app.post("/records/imports/{import_id}/confirm", include_in_schema=False)
    async def records_confirm(
        request: Request, import_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]
    ) -> Response:
        actor = require(request)
        async with request.form() as form:
            check_csrf(request, form.get("csrf_token"))
        try:
            found = flow.records_confirm(import_id, actor.id)
        except WorkflowError as exc:
            # The refusal next to the import's button, nothing changed.
            context = records_context(actor)
            context.update(import_error={"id": import_id, "message": exc.message})
            return page(request, "records.html", context, status=status_of(exc))
        flash(request, f"已确认导入记录 #{found['id']}（{found['filename']}，{found['accepted']} 条）")
        return RedirectResponse("/records", status_code=303)

    @app.post("/records/import", include_in_schema=False)
    async def records_import(request: Request) -> Response:
        actor = require(request)
        async with request.form(max_part_size=max_upload + 1) as form:
            check_csrf(request, form.get("csrf_token"))
            if actor.org_kind != UNIT and actor.org_kind not in (NATIONAL, CENTER):
                raise Forbidden("只有学位授予单位或学位中心可以导入学位授予信息", rule="records_import_level")
            filed = actor.org_kind == UNIT and form.get("kind") == "filed"
            records_rules.import_kind(actor, filed)  # the importer's role, before the file is read
            org = actor.org_code if actor.org_kind == UNIT else str(form.get("org", ""))
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise InvalidPayload(
                    "字段 file（数据文件）：请选择 CSV 或 XLSX 文件", field="file", rule="required_field"
                )
            job_id = uuid.uuid4().hex
            path = await save_record_file(
                upload, data_dir / "imports" / job_id, field="file", label="字段 file（数据文件）"
            )
            job = ImportJob(job_id, actor.id, org, path.name)
            skip = form.get("skip_invalid") == "1"
        jobs[job.id] = job
        threading.Thread(target=_run_import, args=(job, path, skip, filed), daemon=True).start()
        return RedirectResponse(f"/records/jobs/{job.id}", status_code=303)

    def _run_import(job: ImportJob, path: Path, skip: bool, filed: bool = False) -> None:
        from cases import record_files

        try:
            job.total = sum(1 for _ in record_files.iter_rows(path))
            job.phase = "导入中"

            def advance(n: int) -> None:
                job.done += n

            job.result = flow.records_import(path, job.org, skip, progress=advance, as_user=job.owner, filed=filed)
            job.phase = "已完成"
            report = job.result.get("report")
            job.report = Path(report) if report else None
        except WorkflowError as exc:
            job.error = exc.to_dict()
            job.phase = "未导入"
            report = record_files.report_path(path)
            job.report = report if report.exists() else None
        except Exception as exc:  # pragma: no cover - shown to the user, logged for the operator
            log.exception("import failed")
            job.error = {"code": "import_failed", "message": f"导入失败：{exc}"}
            job.phase = "未导入"
        finally:
            job.finished = True

    def _job(actor: Actor, job_id: str) -> ImportJob:
        job = jobs.get(job_id)
        if job is None or job.owner != actor.id:
            raise NotFound("导入任务不存在", rule="job_exists")
        return job

    @app.get("/records/jobs/{job_id}.json", include_in_schema=False)
    def job_status(request: Request, job_id: str) -> Response:
        actor = require(request)
        job = _job(actor, job_id)
        return JSONResponse({"phase": job.phase, "total": job.total, "done": job.done, "finished": job.finished,
                             "result": job.result, "error": job.error,
                             "report": bool(job.report and job.report.exists())})  # fmt: skip

    @app.get("/records/jobs/{job_id}/report.xlsx", include_in_schema=False)
    def job_report(request: Request, job_id: str) -> Response:
        actor = require(request)
        job = _job(actor, job_id)
        if not job.report or not job.report.exists():
            raise NotFound("此导入没有错误报告", rule="report_exists")
        name = f"错误报告-{job.filename}.xlsx"
        return Response(job.report.read_bytes(), media_type=attachment_rules.ALLOWED["xlsx"][0],
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})  # fmt: skip

    @app.get("/records/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: str) -> Response:
        actor = require(request)
        return page(request, "import_job.html", {"user": actor, "job": _job(actor, job_id)})

    from degreeflow.web import api

    app.include_router(api.router(flow, settings, current, check_csrf, client_address, _document_pdf))
    return app


PageNo = Annotated[int, Query(ge=1, le=MAX_ID // PAGE_SIZE)]


def prepare_to_serve(app: FastAPI) -> None:
    """Before a web process takes requests: compile every page template, then freeze what the process holds.

    A full run of Python's cycle collector walks every object the process holds (some 125,000 after start-up:
    modules, the ORM's metadata, compiled templates), about 80 ms during which no request moves: the tail of
    the response times. What exists at start-up lives as long as the process, so it is moved out of the
    collector's sight (`gc.freeze`, as Python's documentation advises for servers); later collections walk
    only what requests create."""
    templates = app.state.templates
    for name in templates.env.list_templates():
        templates.env.get_template(name)
    gc.collect()
    gc.freeze()


def _form_date(text: str, field: str, default: date) -> date:
    if not text.strip():
        return default
    try:
        value = date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise InvalidPayload(
            f"字段 {field}（日期）：格式应为 YYYY-MM-DD，收到“{text[:40]}”", field=field, rule="date_format"
        ) from None
    if not 1900 <= value.year <= 2100:
        raise InvalidPayload(
            f"字段 {field}（日期）：须在 1900 至 2100 年之间", field=field, rule="date_range"
        )
    return value


class BodyLimit:
    """Refuse an API request body over `limit` bytes (413) before it is read into memory and parsed: by its
    Content-Length at once, or, sent in chunks, as soon as the bytes received pass the limit. Any request with
    a NUL character in its path or query is refused (422)."""

    def __init__(self, app: ASGIApp, limit: int, prefix: str, upload_limit: int | None = None) -> None:
        self.app, self.limit, self.prefix = app, limit, prefix
        self.upload_limit = upload_limit or limit  # an attachment upload (POST .../attachments) may be larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            # PostgreSQL text cannot hold NUL: refuse here rather than fail in the database.
            message = "请求参数无效：不能包含 NUL 字符"
            if scope["path"].startswith(self.prefix):
                body = {"error": {"code": "invalid_request", "message": message, "field": None}}
                await JSONResponse(body, status_code=422)(scope, receive, send)
            else:
                await HTMLResponse(f"<!doctype html><html><body><p>{message}</p></body></html>", 422)(
                    scope, receive, send
                )
            return
        if not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"].endswith("/attachments") else self.limit
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            message = f"请求内容过大（上限 {limit // 1048576} MB）"
            body = {"error": {"code": "payload_too_large", "message": message, "field": None}}
            await JSONResponse(body, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413)
            return message

        await self.app(scope, limited, send)


def _safe_next(target: str) -> str:
    """Only same-site paths (no scheme, no //host) after sign-in."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target[:500]


def _data_rows(payload: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in payload.items() if key != "authorization_code"]


def _labels(defn: Any) -> dict[str, str]:
    """Chinese labels of the payload keys a definition knows (for the case data table)."""
    labels: dict[str, str] = {}
    rules = list(defn.open_requires)
    for step in defn.steps:
        rules.extend(step.requires)
    while rules:
        rule = rules.pop()
        labels.setdefault(rule.name, rule.label)
        rules.extend(rule.items)
    # Rows of degree records (supplement, filing) carry the record's fields: their names in the filling rules.
    for key, column in RECORD_COLUMNS.items():
        labels.setdefault(key, column)
    return labels
