"""JSON API under /api/v1: the same service calls and rules as the pages; errors are always
`{"error": {"code", "message", "field"}}`. Sign in with POST /api/v1/session (a session cookie plus the CSRF
token to send as `X-CSRF-Token` on every unsafe request)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from cases import attachments, registry, worklist
from cases.service import DegreeFlow
from degreeflow.settings import Settings
from workflow import Actor, Forbidden, NotFound

# Identifiers are 32-bit integer columns (PostgreSQL INTEGER): a larger number cannot name a row, and reaching
# the database with it fails there (SQLite: OverflowError; PostgreSQL: out of range) instead of answering 404.
MAX_ID = 2**31 - 1
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="案件编号")]
DocumentId = Annotated[int, Path(ge=1, le=MAX_ID, description="文书编号")]
# The largest request body the API reads (a supplement with hundreds of records is well under 1 MB).
MAX_BODY_BYTES = 2 * 1024 * 1024


class SignIn(BaseModel):
    # No NUL: PostgreSQL text cannot hold it (the sign-in would fail in the database instead of refusing).
    username: str = Field(max_length=64, pattern=r"^[^\x00]*$", description="用户名，如 10635XW01")
    password: str = Field(max_length=256)


class OpenCase(BaseModel):
    type: str = Field(
        max_length=32, description="supplement | amendment | errata | revocation | photo | authentication"
    )
    org: str | None = Field(default=None, max_length=16, description="单位代码（默认：本人所在单位）")
    data: dict[str, Any] = Field(default_factory=dict, description="新建所需字段（见 /api/v1/definitions）")
    note: str = Field(default="", max_length=2000)


class FireStep(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict, description="此操作所需字段")
    note: str = Field(default="", max_length=2000)
    version: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="页面上看到的案件版本；已被他人修改时返回 409"
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorShape(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorShape, "description": text}
    for status, text in {400: "请求内容无法解析（不是合法的 JSON）", 401: "未登录", 403: "无权办理或 CSRF 校验失败",
                         404: "不存在（含无权查看的案件）", 409: "状态已变化（他人已办理）",
                         413: "请求内容过大", 422: "字段无效（field 指明字段）"}.items()
}  # fmt: skip


def router(
    flow: DegreeFlow,
    settings: Settings,
    current: Callable[[Request], Actor | None],
    check_csrf: Callable[[Request, Any], None],
    client_address: Callable[[Request], str],
    document_pdf: Callable[[Actor, int], tuple[dict[str, Any], bytes]],
) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["degreeflow"], responses=ERRORS)

    def who(request: Request, *, unsafe: bool = False) -> Actor:
        from degreeflow.web.app import LoginRequired

        actor = current(request)
        if actor is None:
            raise LoginRequired()
        if unsafe:
            check_csrf(request, request.headers.get("x-csrf-token"))
        return actor

    @api.post("/session", summary="登录（返回 CSRF 令牌）")
    def sign_in(body: SignIn, request: Request) -> dict[str, Any]:
        actor = flow.sign_in(body.username, body.password, client_address(request))
        request.session.clear()
        token = secrets.token_urlsafe(32)
        request.session.update(uid=actor.id, csrf=token)
        return {"user": _user(actor), "csrf_token": token}

    @api.delete("/session", summary="退出登录")
    def sign_out(request: Request) -> dict[str, Any]:
        who(request, unsafe=True)
        request.session.clear()
        return {"signed_out": True}

    @api.get("/me", summary="当前用户")
    def me(request: Request) -> dict[str, Any]:
        return _user(who(request))

    @api.get("/queue", summary="待我办理的案件（按时限排序）")
    def queue(
        request: Request, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_ID)
    ) -> dict[str, Any]:
        rows, total = flow.queue(who(request), limit=limit, offset=offset)
        return {"total": total, "total_is_capped": total >= worklist.COUNT_CAP, "cases": rows}

    @api.get("/cases", summary="案件列表（按类型、状态、单位筛选，按证书编号或姓名搜索）")
    def cases(
        request: Request,
        type: str | None = Query(None, max_length=32),
        state: str | None = Query(None, max_length=32),
        org: str | None = Query(None, max_length=16),
        q: str | None = Query(None, max_length=64),
        open_only: bool = False,
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=MAX_ID),
    ) -> dict[str, Any]:
        rows, total = flow.search_cases(who(request).id, case_type=type, state=state, org=org, text=q,
                                        open_only=open_only, limit=limit, offset=offset)  # fmt: skip
        return {"total": total, "cases": rows}

    @api.post("/cases", status_code=201, summary="新建案件")
    def open_case(body: OpenCase, request: Request) -> dict[str, Any]:
        actor = who(request, unsafe=True)
        result = flow.open_case(body.type, body.org or actor.org_code, actor.username, body.data, body.note)
        return flow.case_for(result.case_id, actor.id)

    @api.get("/cases/{case_id}", summary="案件详情（数据、可执行操作、历史、时限）")
    def case(case_id: CaseId, request: Request) -> dict[str, Any]:
        actor = who(request)
        data = flow.case_for(case_id, actor.id)
        data["documents"] = flow.documents(case_id)
        data["attachments"] = flow.attachments(case_id)
        data["attachment_needs"] = flow.attachment_needs(case_id, data["rule_set"], data["type"])
        return data

    @api.post("/cases/{case_id}/attachments", status_code=201, summary="上传附件（multipart：file 文件，purpose 用途）")
    def upload_attachment(
        case_id: CaseId,
        request: Request,
        file: Annotated[UploadFile, File(description="PDF、JPG、PNG（决议与证明材料须为扫描件），其他材料另可 XLSX、DOCX")],
        purpose: Annotated[str, Form(max_length=64, description=f"用途：{attachments.choices()}")] = (
            attachments.DEFAULT_PURPOSE
        ),
    ) -> dict[str, Any]:
        actor = who(request, unsafe=True)
        limit = settings.max_upload_mb * 1024 * 1024
        content = file.file.read(limit + 1)
        return flow.add_attachment(case_id, actor.id, file.filename or "", content, limit, purpose=purpose)

    @api.post("/cases/{case_id}/steps/{trigger}", summary="办理：执行一个操作（触发器）")
    def fire(case_id: CaseId, trigger: str, body: FireStep, request: Request) -> dict[str, Any]:
        actor = who(request, unsafe=True)
        flow.ensure_visible(case_id, actor.id)  # 404 outside the person's scope
        result = flow.fire(
            case_id, trigger, actor.username, body.note, body.data, expected_version=body.version
        )
        return {"case_id": result.case_id, "from": result.from_state, "to": result.to_state,
                "version": result.version, "events": len(result.events)}  # fmt: skip

    @api.post("/cases/{case_id}/authorization/{trigger}", summary="向主管领导申请一次性授权码")
    def authorization(case_id: CaseId, trigger: str, request: Request) -> dict[str, Any]:
        actor = who(request, unsafe=True)
        return flow.request_authorization(case_id, trigger, actor.username)

    @api.get("/cases/{case_id}/documents", summary="案件的公文与表格")
    def documents(case_id: CaseId, request: Request) -> list[dict[str, Any]]:
        flow.ensure_visible(case_id, who(request).id)
        return flow.documents(case_id)

    @api.get("/documents/{document_id}.pdf", summary="文书 PDF", response_class=Response)
    def document(document_id: DocumentId, request: Request) -> Response:
        _doc, data = document_pdf(who(request), document_id)
        return Response(data, media_type="application/pdf")

    @api.get("/inbox", summary="收件箱（提醒、逾期、授权码）")
    def inbox(request: Request, limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
        return flow.inbox(who(request).username, limit=limit)

    @api.get("/overview", summary="统计概览（省级、国家级）")
    def overview(request: Request) -> dict[str, Any]:
        actor = who(request)
        if actor.org_kind == "unit":
            raise Forbidden("统计概览仅供省级和国家级用户使用", rule="overview_level")
        return flow.overview(actor.id)

    @api.get("/records/{cert_no}", summary="学位授予信息及变更历史")
    def record(cert_no: str, request: Request) -> dict[str, Any]:
        return flow.record_history_for(cert_no[:32], who(request).id)

    @api.get(
        "/query",
        summary="学位证书网上查询（匿名用户按地址限流）",
        responses={429: {"model": ErrorShape, "description": "查询过于频繁（匿名用户按地址限流）"}},
    )
    def query(
        request: Request, cert_no: str = Query(..., min_length=1, max_length=32),
        name: str = Query(..., min_length=1, max_length=100),
    ) -> JSONResponse:  # fmt: skip
        actor = current(request)
        answer = flow.query_certificate(
            cert_no, name, client=client_address(request), member=actor is not None
        )
        if answer["status"] == "limited":
            return JSONResponse({"error": {"code": "rate_limited", "message": answer["message"], "field": None}},
                                status_code=429)  # fmt: skip
        return JSONResponse(answer)

    @api.get("/definitions", summary="流程定义（状态、操作、所需字段）")
    def definitions() -> dict[str, Any]:
        return {name: _definition(d) for name, d in registry.DEFINITIONS.items()}

    @api.get("/definitions/{case_type}", summary="某类案件的流程定义")
    def definition(case_type: str) -> dict[str, Any]:
        if case_type not in registry.DEFINITIONS:
            raise NotFound(f"案件类型 {case_type} 不存在", field="case_type", rule="case_type_exists")
        return _definition(registry.DEFINITIONS[case_type])

    return api


def _user(actor: Actor) -> dict[str, Any]:
    return {"id": actor.id, "username": actor.username, "name": actor.name, "role": actor.role,
            "org": actor.org_code, "org_name": actor.org_name, "org_kind": actor.org_kind}  # fmt: skip


def _rule(rule: Any) -> dict[str, Any]:
    data = {"name": rule.name, "label": rule.label, "kind": rule.kind, "required": rule.required}
    if rule.choices:
        data["choices"] = list(rule.choices)
    if rule.items:
        data["items"] = [_rule(item) for item in rule.items]
    return data


def _definition(defn: Any) -> dict[str, Any]:
    return {
        "name": defn.name, "label": defn.label, "states": dict(defn.states), "initial": defn.initial,
        "terminal": sorted(defn.terminal), "open": {"actors": list(defn.open_actors),
                                                   "fields": [_rule(r) for r in defn.open_requires]},
        "steps": [{"trigger": s.trigger, "from": s.source, "to": s.dest, "label": s.label, "actors": list(s.actors),
                   "roles": list(s.roles), "automatic": s.automatic, "second_person": s.second_person,
                   "authorization_rule_sets": list(s.authorization), "fields": [_rule(r) for r in s.requires]}
                  for s in defn.steps],
    }  # fmt: skip
