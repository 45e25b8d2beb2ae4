"""Bad input, tried for real (issue 7 item 5): malformed and hostile input to every API route, every web route
and every CLI command — wrong types, huge payloads, SQL and script injection, path traversal in file names,
invalid dates, unknown enum values, another organisation's IDs — over a real HTTP server and the real command
line, on SQLite and PostgreSQL. Each refused request must give a clean error (the API's one error shape with a
4xx status, an HTML error page, or the CLI's one line / usage message; never a 500 or a traceback) and leave
every table exactly as it was (row counts and a hash of the contents). Then schemathesis fuzzes the OpenAPI
schema with a signed-in session: no 5xx, and every response as documented.

Known bugs outside the web layer are marked `xfail(strict=True)` with the file and line to fix.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from fastapi.routing import APIRoute
from sqlalchemy import text
from starlette.routing import Mount, Route

from cases.service import DegreeFlow
from db import FixedClock, drop_schema, make_engine
from degreeflow import demo
from degreeflow.cli import app as cli_app
from degreeflow.demo import DEMO_PASSWORD
from tests.conftest import START, _pg_url_or_skip
from tests.helpers import OPEN_DATA, PHOTO, attach_required
from tests.hostile_inputs import (
    HUGE,
    LONG_NAME,
    NUL,
    SCRIPT,
    SQL,
    SQL_OR,
    TRAVERSAL,
    UNICODE_TRICKS,
    ForkedCli,
    Ran,
    changed,
    snapshot,
)
from tests.live import Api, Browser, serve
from tests.test_degree_record import VALID
from tests.test_docs import _commands

REVOCATION = OPEN_DATA["revocation"]
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
BIG_INT = "99999999999999999999999"
MB3 = "x" * (3 << 20)


# -- the world every probe runs against ---------------------------------------------------------------------
@dataclass
class World:
    flow: DegreeFlow
    root: Path  # tmp folder: the data dir lives under it; nothing may be written outside data/
    base: str = ""
    own_case: int = 0  # revocation of 10635 (reported), with a document and an attachment
    own_doc: int = 0
    own_attachment: int = 0
    other_case: int = 0  # photo case of 10593 (filed), with a document and an attachment
    other_doc: int = 0
    other_attachment: int = 0
    other_job: str = ""  # a records import job of 10593XW01
    record_of_10635: str = "1063532024000123"
    clients: dict[str, Any] = field(default_factory=dict)

    def api(self, username: str | None = None) -> Api:
        key = f"api:{username}"
        if key not in self.clients:
            self.clients[key] = Api(self.base, username)
        return self.clients[key]

    def browser(self, username: str | None = None) -> Browser:
        key = f"browser:{username}"
        if key not in self.clients:
            browser = Browser(self.base)
            if username:
                assert browser.login(username).status_code == 303
            browser.get("/queue" if username else "/login")  # a page with the CSRF token
            self.clients[key] = browser
        return self.clients[key]

    def fresh_api(self, username: str | None = None) -> Api:
        return Api(self.base, username)


def build_cases(flow: DegreeFlow) -> tuple[int, int]:
    """A reported revocation of 10635 (its report issued) and a filed photo case of 10593 (its letter issued)."""
    own = flow.open_case("revocation", "10635", "10635XW01", dict(REVOCATION)).case_id
    flow.fire(own, "submit", "10635XW01", "", {"resolution_no": "西南大学学位〔2026〕3号"})
    attach_required(flow, own, "verify")
    flow.fire(own, "verify", "10635XW02", "", {})
    other = flow.open_case("photo", "10593", "10593XW01", {}).case_id
    flow.fire(other, "submit", "10593XW01", "", dict(PHOTO))
    return own, other


def write_records(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _engine_url(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/hostile.db"
    url = _pg_url_or_skip()
    engine = make_engine(url)
    drop_schema(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp(f"hostile-{request.param}")
    engine = make_engine(_engine_url(request.param, root))
    flow = DegreeFlow(engine, FixedClock(START))
    flow.init_schema()
    demo.seed(flow, cases=False)
    flow.attachments_dir = root / "data" / "attachments"  # where the application run below keeps them
    own, other = build_cases(flow)
    flow.records_import(write_records(root / "records.csv", [VALID]), "10635", as_user="xwzx01")
    w = World(flow, root, own_case=own, other_case=other)
    with serve(flow, root / "data") as base:
        w.base = base
        w.own_doc = flow.documents(own)[0]["id"]
        w.other_doc = flow.documents(other)[0]["id"]
        for user, case_id, attr in (
            ("10635XW01", own, "own_attachment"),
            ("10593XW01", other, "other_attachment"),
        ):
            browser = w.browser(user)
            browser.get(f"/cases/{case_id}")
            done = browser.post(f"/cases/{case_id}/attachments", files={"file": ("proof.pdf", PDF)})
            assert done.status_code == 303, done.text
            setattr(w, attr, flow.attachments(case_id)[0]["id"])
        importer = w.browser("10593XW01")
        importer.get("/records")
        started = importer.post(
            "/records/import", files={"file": ("bad.csv", b"a,b\n1,2\n")}, data={"skip_invalid": "0"}
        )
        assert started.status_code == 303, started.text
        w.other_job = started.headers["location"].rsplit("/", 1)[-1]
        for _ in range(200):
            if importer.client.get(f"/records/jobs/{w.other_job}.json").json()["finished"]:
                break
            time.sleep(0.02)
        for user in ("10635XW01", "10635XW02", "10593XW01", "prov45", "xwb01"):
            w.api(user)
        w.browser(None)
        yield w
    engine.dispose()


# -- what a clean refusal looks like ------------------------------------------------------------------------
def no_traceback(body: str) -> None:
    assert "Traceback" not in body and 'File "' not in body, body[:2000]


def api_error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers.get("content-type", "").startswith("application/json"), response.text[:500]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


@dataclass
class Probe:
    method: str
    route: str  # the route's path template, as app.routes has it
    label: str
    send: Callable[[World], httpx.Response]
    status: int | tuple[int, ...]
    bug: str = ""  # a known bug outside the files this module may fix: the test is xfail(strict) for it
    changes: bool = False  # accepted on purpose (a harmless value stored verbatim): no snapshot comparison

    @property
    def id(self) -> str:
        return f"{self.method} {self.route} | {self.label}"


def _json(w: World, user: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return w.api(user).request(method, path, **kwargs)


def _case_body(**data: Any) -> dict[str, Any]:
    return {"type": "revocation", "data": {**REVOCATION, **data}}


def _forged_session(w: World) -> httpx.Response:
    client = w.fresh_api()
    client.cookies.set("degreeflow_session", "eyJ1aWQiOiAxfQ==.forged.signature")
    return client.get("/me")


def _chunked(w: World) -> httpx.Response:
    """3 MB sent in chunks without a Content-Length."""

    def chunks() -> Iterator[bytes]:
        yield b'{"type": "revocation", "note": "'
        for _ in range(48):
            yield b"x" * 65536
        yield b'"}'

    return w.api("10635XW01").post("/cases", content=chunks(), headers={"content-type": "application/json"})


U = "10635XW01"  # the unit collector most probes act as
V1 = "/api/v1"

API_PROBES: list[Probe] = [
    # sign-in
    Probe("POST", f"{V1}/session", "username of the wrong type",
          lambda w: w.fresh_api().post("/session", json={"username": ["x"], "password": 1}), 422),
    Probe("POST", f"{V1}/session", "SQL injection as username",
          lambda w: w.fresh_api().post("/session", json={"username": SQL_OR, "password": SQL}), 403),
    Probe("POST", f"{V1}/session", "script and NUL as username",
          lambda w: w.fresh_api().post("/session", json={"username": SCRIPT + NUL, "password": "x"}), 422),
    Probe("POST", f"{V1}/session", "1 MB username",
          lambda w: w.fresh_api().post("/session", json={"username": HUGE, "password": "x"}), 422),
    Probe("POST", f"{V1}/session", "3 MB body",
          lambda w: w.fresh_api().post("/session", json={"username": "a", "password": MB3}), 413),
    Probe("POST", f"{V1}/session", "not JSON at all",
          lambda w: w.fresh_api().post("/session", content=b"\xff\xfe<xml/>",
                                       headers={"content-type": "application/json"}), (400, 422)),
    Probe("POST", f"{V1}/session", "10,000 nested arrays",
          lambda w: w.fresh_api().post("/session", content=b"[" * 10000 + b"]" * 10000,
                                       headers={"content-type": "application/json"}), (400, 422)),
    Probe("DELETE", f"{V1}/session", "without the CSRF header",
          lambda w: w.fresh_api(U).delete("/session", headers={"X-CSRF-Token": ""}), 403),
    Probe("DELETE", f"{V1}/session", "with a forged CSRF token",
          lambda w: w.fresh_api(U).delete("/session", headers={"X-CSRF-Token": SCRIPT}), 403),
    Probe("DELETE", f"{V1}/session", "anonymous", lambda w: w.fresh_api().delete("/session"), 401),
    Probe("GET", f"{V1}/me", "anonymous", lambda w: w.fresh_api().get("/me"), 401),
    Probe("GET", f"{V1}/me", "forged session cookie", _forged_session, 401),
    # lists
    Probe("GET", f"{V1}/queue", "limit not a number", lambda w: _json(w, U, "GET", "/queue?limit=abc"), 422),
    Probe("GET", f"{V1}/queue", "negative offset", lambda w: _json(w, U, "GET", "/queue?offset=-1"), 422),
    Probe("GET", f"{V1}/queue", "offset beyond 64 bits", lambda w: _json(w, U, "GET", f"/queue?offset={BIG_INT}"), 422),
    Probe("GET", f"{V1}/queue", "offset 2**62", lambda w: _json(w, U, "GET", f"/queue?offset={2**62}"), 422),
    Probe("GET", f"{V1}/queue", "anonymous", lambda w: w.fresh_api().get("/queue"), 401),
    Probe("GET", f"{V1}/cases", "unknown case type (SQL)",
          lambda w: _json(w, U, "GET", "/cases", params={"type": SQL}), 404),
    Probe("GET", f"{V1}/cases", "open_only not a boolean",
          lambda w: _json(w, U, "GET", "/cases", params={"open_only": SCRIPT}), 422),
    Probe("GET", f"{V1}/cases", "limit 10**20", lambda w: _json(w, U, "GET", "/cases", params={"limit": BIG_INT}), 422),
    Probe("GET", f"{V1}/cases", "offset 2**62",
          lambda w: _json(w, U, "GET", "/cases", params={"offset": 2**62}), 422),
    Probe("GET", f"{V1}/cases", "q of 10 KB", lambda w: _json(w, U, "GET", "/cases", params={"q": "x" * 10000}), 422),
    # creating a case
    Probe("POST", f"{V1}/cases", "unknown case type", lambda w: _json(w, U, "POST", "/cases", json={"type": SQL}), 404),
    Probe("POST", f"{V1}/cases", "type of the wrong type",
          lambda w: _json(w, U, "POST", "/cases", json={"type": 5, "data": []}), 422),
    Probe("POST", f"{V1}/cases", "another organisation",
          lambda w: _json(w, U, "POST", "/cases", json={**_case_body(), "org": "10593"}), 403),
    Probe("POST", f"{V1}/cases", "organisation code injected",
          lambda w: _json(w, U, "POST", "/cases", json={**_case_body(), "org": "10635' OR 1=1"}), (403, 404)),
    Probe("POST", f"{V1}/cases", "invalid date 2021-02-30",
          lambda w: _json(w, U, "POST", "/cases", json=_case_body(conferral_date="2021-02-30")), 422),
    Probe("POST", f"{V1}/cases", "date as a number",
          lambda w: _json(w, U, "POST", "/cases", json=_case_body(decision_date=20261118.5)), 422),
    Probe("POST", f"{V1}/cases", "date 9999-12-31",
          lambda w: _json(w, U, "POST", "/cases", json=_case_body(decision_date="9999-12-31")), 422),
    Probe("POST", f"{V1}/cases", "certificate number of another unit",
          lambda w: _json(w, U, "POST", "/cases", json=_case_body(cert_no="1059342021000321")), 422),
    Probe("POST", f"{V1}/cases", "name as a list",
          lambda w: _json(w, U, "POST", "/cases", json=_case_body(name=["钱", "某某"])), 422),
    Probe("POST", f"{V1}/cases", "name of 1 MB (under the 2 MB body limit)",
          lambda w: _json(w, U, "POST", "/cases", json=_case_body(name=HUGE)), 422),
    Probe("POST", f"{V1}/cases", "3 MB body", lambda w: _json(w, U, "POST", "/cases", json=_case_body(note=MB3)), 413),
    Probe("POST", f"{V1}/cases", "3 MB body in chunks, no Content-Length", _chunked, 413),
    Probe("POST", f"{V1}/cases", "note over 2000 characters",
          lambda w: _json(w, U, "POST", "/cases", json={**_case_body(), "note": LONG_NAME}), 422),
    Probe("POST", f"{V1}/cases", "data not an object",
          lambda w: _json(w, U, "POST", "/cases", json={"type": "revocation", "data": [SQL]}), 422),
    Probe("POST", f"{V1}/cases", "without the CSRF header",
          lambda w: w.fresh_api(U).post("/cases", json=_case_body(), headers={"X-CSRF-Token": ""}), 403),
    Probe("POST", f"{V1}/cases", "anonymous", lambda w: w.fresh_api().post("/cases", json=_case_body()), 401),
    Probe("POST", f"{V1}/cases", "a province opening a unit's case",
          lambda w: _json(w, "prov45", "POST", "/cases", json={**_case_body(), "org": "10593"}), 403),
    # one case
    Probe("GET", f"{V1}/cases/{{case_id}}", "another organisation's case",
          lambda w: _json(w, U, "GET", f"/cases/{w.other_case}"), 404),
    Probe("GET", f"{V1}/cases/{{case_id}}", "another province's case",
          lambda w: _json(w, "prov45", "GET", f"/cases/{w.own_case}"), 404),
    Probe("GET", f"{V1}/cases/{{case_id}}", "id beyond 64 bits", lambda w: _json(w, U, "GET", f"/cases/{BIG_INT}"), 422),
    Probe("GET", f"{V1}/cases/{{case_id}}", "id 2**63", lambda w: _json(w, U, "GET", f"/cases/{2**63}"), 422),
    Probe("GET", f"{V1}/cases/{{case_id}}", "id not a number", lambda w: _json(w, U, "GET", "/cases/1;DROP"), 422),
    Probe("GET", f"{V1}/cases/{{case_id}}", "negative id", lambda w: _json(w, U, "GET", "/cases/-1"), 422),
    Probe("GET", f"{V1}/cases/{{case_id}}", "id that does not exist",
          lambda w: _json(w, U, "GET", "/cases/2147483647"), 404),
    # steps
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "another organisation's case",
          lambda w: _json(w, U, "POST", f"/cases/{w.other_case}/steps/acknowledge", json={}), 404),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "another province acting",
          lambda w: _json(w, "prov45", "POST", f"/cases/{w.own_case}/steps/confirm", json={}), 404),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "trigger is SQL",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/steps/{SQL}", json={}), 404),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "trigger is a script",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/steps/{SCRIPT}", json={}), 404),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "a unit confirming its own report",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/steps/confirm", json={}), 403),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "not allowed in this state",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/steps/submit", json={}), 409),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "version not a number",
          lambda w: _json(w, "prov50", "POST", f"/cases/{w.own_case}/steps/confirm", json={"version": "1 OR 1=1"}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "version beyond 64 bits",
          lambda w: _json(w, "prov50", "POST", f"/cases/{w.own_case}/steps/confirm", json={"version": 10**30}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "stale version",
          lambda w: _json(w, "prov50", "POST", f"/cases/{w.own_case}/steps/confirm", json={"version": 1}), 409),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "data not an object",
          lambda w: _json(w, "prov50", "POST", f"/cases/{w.own_case}/steps/confirm", json={"data": "x"}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "3 MB body",
          lambda w: _json(w, "prov50", "POST", f"/cases/{w.own_case}/steps/confirm", json={"note": MB3}), 413),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "id beyond 64 bits",
          lambda w: _json(w, U, "POST", f"/cases/{BIG_INT}/steps/submit", json={}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/steps/{{trigger}}", "without the CSRF header",
          lambda w: w.fresh_api("prov50").post(f"/cases/{w.own_case}/steps/confirm", json={},
                                                headers={"X-CSRF-Token": ""}), 403),
    # attachments
    Probe("POST", f"{V1}/cases/{{case_id}}/attachments", "another organisation's case",
          lambda w: _json(w, U, "POST", f"/cases/{w.other_case}/attachments", files={"file": ("p.pdf", PDF)},
                          data={"purpose": "proof"}), 404),
    Probe("POST", f"{V1}/cases/{{case_id}}/attachments", "purpose is SQL",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/attachments", files={"file": ("p.pdf", PDF)},
                          data={"purpose": SQL}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/attachments", "an executable as the resolution",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/attachments", files={"file": ("x.exe", b"MZ\x90\x00")},
                          data={"purpose": "revocation_resolution"}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/attachments", "no file",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/attachments", data={"purpose": "proof"}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/attachments", "id beyond 64 bits",
          lambda w: _json(w, U, "POST", f"/cases/{BIG_INT}/attachments", files={"file": ("p.pdf", PDF)}), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/attachments", "without the CSRF header",
          lambda w: w.fresh_api(U).post(f"/cases/{w.own_case}/attachments", files={"file": ("p.pdf", PDF)},
                                        headers={"X-CSRF-Token": ""}), 403),
    Probe("POST", f"{V1}/cases/{{case_id}}/attachments", "anonymous",
          lambda w: w.fresh_api().post(f"/cases/{w.own_case}/attachments", files={"file": ("p.pdf", PDF)}), 401),
    # authorization codes
    Probe("POST", f"{V1}/cases/{{case_id}}/authorization/{{trigger}}", "another organisation's case",
          lambda w: _json(w, U, "POST", f"/cases/{w.other_case}/authorization/verify"), 404),
    Probe("POST", f"{V1}/cases/{{case_id}}/authorization/{{trigger}}", "trigger is SQL",
          lambda w: _json(w, U, "POST", f"/cases/{w.own_case}/authorization/{SQL}"), (404, 409, 422)),
    Probe("POST", f"{V1}/cases/{{case_id}}/authorization/{{trigger}}", "id beyond 64 bits",
          lambda w: _json(w, U, "POST", f"/cases/{BIG_INT}/authorization/verify"), 422),
    Probe("POST", f"{V1}/cases/{{case_id}}/authorization/{{trigger}}", "without the CSRF header",
          lambda w: w.fresh_api(U).post(f"/cases/{w.own_case}/authorization/verify",
                                        headers={"X-CSRF-Token": ""}), 403),
    # documents
    Probe("GET", f"{V1}/cases/{{case_id}}/documents", "another organisation's case",
          lambda w: _json(w, U, "GET", f"/cases/{w.other_case}/documents"), 404),
    Probe("GET", f"{V1}/cases/{{case_id}}/documents", "id not a number",
          lambda w: _json(w, U, "GET", "/cases/abc/documents"), 422),
    Probe("GET", f"{V1}/documents/{{document_id}}.pdf", "another organisation's document",
          lambda w: _json(w, U, "GET", f"/documents/{w.other_doc}.pdf"), 404),
    Probe("GET", f"{V1}/documents/{{document_id}}.pdf", "id beyond 64 bits",
          lambda w: _json(w, U, "GET", f"/documents/{BIG_INT}.pdf"), 422),
    Probe("GET", f"{V1}/documents/{{document_id}}.pdf", "traversal as the id",
          lambda w: _json(w, U, "GET", "/documents/..%2F..%2Fetc%2Fpasswd.pdf"), (404, 422)),
    Probe("GET", f"{V1}/documents/{{document_id}}.pdf", "anonymous",
          lambda w: w.fresh_api().get(f"/documents/{w.own_doc}.pdf"), 401),
    # inbox, overview
    Probe("GET", f"{V1}/inbox", "negative limit", lambda w: _json(w, U, "GET", "/inbox?limit=-1"), 422),
    Probe("GET", f"{V1}/inbox", "limit beyond 64 bits", lambda w: _json(w, U, "GET", f"/inbox?limit={BIG_INT}"), 422),
    Probe("GET", f"{V1}/overview", "a unit", lambda w: _json(w, U, "GET", "/overview"), 403),
    Probe("GET", f"{V1}/overview", "anonymous", lambda w: w.fresh_api().get("/overview"), 401),
    # records
    Probe("GET", f"{V1}/records/{{cert_no}}", "another organisation's record",
          lambda w: _json(w, "10593XW01", "GET", f"/records/{w.record_of_10635}"), 404),
    Probe("GET", f"{V1}/records/{{cert_no}}", "another province's record",
          lambda w: _json(w, "prov45", "GET", f"/records/{w.record_of_10635}"), 404),
    Probe("GET", f"{V1}/records/{{cert_no}}", "SQL injection", lambda w: _json(w, U, "GET", f"/records/{SQL_OR}"), 404),
    Probe("GET", f"{V1}/records/{{cert_no}}", "path traversal",
          lambda w: _json(w, U, "GET", "/records/..%2F..%2F..%2Fetc%2Fpasswd"), 404),
    Probe("GET", f"{V1}/records/{{cert_no}}", "NUL in the number", lambda w: _json(w, U, "GET", "/records/1%00"), 422),
    Probe("GET", f"{V1}/cases", "NUL in the search", lambda w: _json(w, U, "GET", "/cases", params={"q": NUL}), 422),
    Probe("GET", f"{V1}/query", "NUL in the name",
          lambda w: _json(w, U, "GET", "/query", params={"cert_no": "1", "name": NUL}), 422),
    Probe("POST", f"{V1}/cases", "NUL in the name",
          lambda w: _json(w, U, "POST", "/cases", json=_case_body(name=NUL)), (201, 422), changes=True),
    Probe("GET", f"{V1}/records/{{cert_no}}", "10 KB", lambda w: _json(w, U, "GET", "/records/" + "1" * 10000), 404),
    # the public query
    Probe("GET", f"{V1}/query", "empty fields", lambda w: _json(w, U, "GET", "/query?cert_no=&name="), 422),
    Probe("GET", f"{V1}/query", "missing fields", lambda w: _json(w, U, "GET", "/query"), 422),
    Probe("GET", f"{V1}/query", "33-digit number", lambda w: _json(w, U, "GET", "/query", params={"cert_no": "1" * 33, "name": "张伟"}), 422),
    Probe("GET", f"{V1}/query", "SQL and script (answered: not found)",
          lambda w: _json(w, U, "GET", "/query", params={"cert_no": SQL_OR, "name": SCRIPT}), 200),
    Probe("GET", f"{V1}/query", "unicode tricks (answered: not found)",
          lambda w: _json(w, U, "GET", "/query", params={"cert_no": w.record_of_10635, "name": UNICODE_TRICKS}), 200),
    # definitions (public)
    Probe("GET", f"{V1}/definitions", "unknown query parameters are ignored",
          lambda w: w.fresh_api().get("/definitions", params={"type": SQL}), 200),
    Probe("GET", f"{V1}/definitions/{{case_type}}", "script as the type",
          lambda w: w.fresh_api().get(f"/definitions/{SCRIPT}"), 404),
    Probe("GET", f"{V1}/definitions/{{case_type}}", "SQL as the type", lambda w: w.fresh_api().get(f"/definitions/{SQL}"), 404),
]  # fmt: skip


def _form(
    w: World, user: str | None, path: str, data: dict[str, Any] | None = None, **kw: Any
) -> httpx.Response:
    return w.browser(user).post(path, data, **kw)


def _page(w: World, user: str | None, path: str, **kw: Any) -> httpx.Response:
    return w.browser(user).client.get(path, **kw)


def _upload(w: World, user: str, case_id: int, name: str, content: bytes) -> httpx.Response:
    return _form(w, user, f"/cases/{case_id}/attachments", files={"file": (name, content)})


PAGE_PROBES: list[Probe] = [
    Probe("GET", "/", "anonymous", lambda w: _page(w, None, "/"), 303),
    Probe("GET", "/login", "next is another site", lambda w: _page(w, None, "/login?next=//evil.example/x"), 200),
    Probe("POST", "/login", "NUL in the username", lambda w: _form(w, None, "/login", {"username": NUL, "password": "x"}), 401),
    Probe("POST", "/login", "without the CSRF token",
          lambda w: w.browser(None).client.post("/login", data={"username": "x", "password": "y"}), 403),
    Probe("POST", "/login", "SQL injection, 1 MB password",
          lambda w: _form(w, None, "/login", {"username": SQL_OR, "password": HUGE}), 400),
    Probe("POST", "/logout", "without the CSRF token",
          lambda w: w.browser(U).client.post("/logout", data={}), 403),
    Probe("GET", "/queue", "page number beyond 64 bits", lambda w: _page(w, U, f"/queue?page_no={BIG_INT}"), 422),
    Probe("GET", "/queue", "page number 2**40", lambda w: _page(w, U, f"/queue?page_no={2**40}"), 422),
    Probe("GET", "/cases", "unknown type (script)", lambda w: _page(w, U, "/cases", params={"type": SCRIPT}), 404),
    Probe("GET", "/cases", "NUL in the search", lambda w: _page(w, U, "/cases?q=%00"), 422),
    Probe("GET", "/cases", "page number not a number", lambda w: _page(w, U, "/cases?page_no=1%27"), 422),
    Probe("GET", "/cases/new", "anonymous", lambda w: _page(w, None, "/cases/new"), 303),
    Probe("GET", "/cases/new/{case_type}", "unknown type", lambda w: _page(w, U, f"/cases/new/{SQL}"), 404),
    Probe("GET", "/cases/new/{case_type}", "a type this unit may not open",
          lambda w: _page(w, U, "/cases/new/authentication"), 403),
    Probe("POST", "/cases/new/{case_type}", "invalid date",
          lambda w: _form(w, U, "/cases/new/revocation", {**REVOCATION, "conferral_date": "2021-13-45"}), 422),
    Probe("POST", "/cases/new/{case_type}", "another organisation",
          lambda w: _form(w, U, "/cases/new/revocation", {**REVOCATION, "org": "10593"}), 403),
    Probe("POST", "/cases/new/{case_type}", "unknown type", lambda w: _form(w, U, f"/cases/new/{SCRIPT}", {}), 404),
    Probe("POST", "/cases/new/{case_type}", "without the CSRF token",
          lambda w: w.browser(U).client.post("/cases/new/revocation", data=REVOCATION), 403),
    Probe("GET", "/cases/{case_id}", "another organisation's case", lambda w: _page(w, U, f"/cases/{w.other_case}"), 404),
    Probe("GET", "/cases/{case_id}", "id beyond 64 bits", lambda w: _page(w, U, f"/cases/{BIG_INT}"), 422),
    Probe("GET", "/cases/{case_id}/diagram.svg", "another organisation's case",
          lambda w: _page(w, U, f"/cases/{w.other_case}/diagram.svg"), 404),
    Probe("GET", "/cases/{case_id}/diagram.svg", "id beyond 64 bits",
          lambda w: _page(w, U, f"/cases/{BIG_INT}/diagram.svg"), 422),
    Probe("POST", "/cases/{case_id}/steps/{trigger}", "another organisation's case",
          lambda w: _form(w, U, f"/cases/{w.other_case}/steps/acknowledge", {}), 404),
    Probe("POST", "/cases/{case_id}/steps/{trigger}", "version beyond 64 bits",
          lambda w: _form(w, "prov50", f"/cases/{w.own_case}/steps/confirm", {"version": BIG_INT}), 409),
    Probe("POST", "/cases/{case_id}/steps/{trigger}", "trigger is SQL",
          lambda w: _form(w, U, f"/cases/{w.own_case}/steps/{SQL}", {}), 404),
    Probe("POST", "/cases/{case_id}/authorization/{trigger}", "another organisation's case",
          lambda w: _form(w, U, f"/cases/{w.other_case}/authorization/verify", {}), 404),
    Probe("POST", "/cases/{case_id}/attachments", "traversal name, not a PDF inside",
          lambda w: _upload(w, U, w.own_case, "../../etc/passwd.pdf", b"root:x:0:0:root:/root:/bin/bash\n"), 422),
    Probe("POST", "/cases/{case_id}/attachments", "an executable",
          lambda w: _upload(w, U, w.own_case, "..\\..\\evil.exe", b"MZ\x90\x00"), 422),
    Probe("POST", "/cases/{case_id}/attachments", "an empty file", lambda w: _upload(w, U, w.own_case, "x.pdf", b""), 422),
    Probe("POST", "/cases/{case_id}/attachments", "to another organisation's case",
          lambda w: _upload(w, U, w.other_case, "proof.pdf", PDF), 404),
    Probe("POST", "/cases/{case_id}/attachments", "over the size limit (by Content-Length)",
          lambda w: w.browser(U).client.post(f"/cases/{w.own_case}/attachments", content=b"x" * (21 << 20),
                                             headers={"content-type": "multipart/form-data; boundary=x"}), 422),
    Probe("GET", "/cases/{case_id}/attachments/{attachment_id}", "another organisation's attachment",
          lambda w: _page(w, U, f"/cases/{w.other_case}/attachments/{w.other_attachment}"), 404),
    Probe("GET", "/cases/{case_id}/attachments/{attachment_id}", "its attachment under my case",
          lambda w: _page(w, U, f"/cases/{w.own_case}/attachments/{w.other_attachment}"), 404),
    Probe("GET", "/cases/{case_id}/attachments/{attachment_id}", "traversal as the id",
          lambda w: _page(w, U, f"/cases/{w.own_case}/attachments/..%2F..%2Fetc%2Fpasswd"), (404, 422)),
    Probe("GET", "/documents/{document_id}.pdf", "another organisation's document",
          lambda w: _page(w, U, f"/documents/{w.other_doc}.pdf"), 404),
    Probe("GET", "/documents/{document_id}.pdf", "id beyond 64 bits", lambda w: _page(w, U, f"/documents/{BIG_INT}.pdf"), 422),
    Probe("GET", "/inbox", "anonymous", lambda w: _page(w, None, "/inbox"), 303),
    Probe("GET", "/query", "SQL and script (answered: not found)",
          lambda w: _page(w, U, "/query", params={"cert_no": SQL, "name": SCRIPT}), 200),
    Probe("GET", "/overview", "a unit", lambda w: _page(w, U, "/overview"), 404),
    Probe("GET", "/departments", "another unit's departments",
          lambda w: _page(w, U, "/departments", params={"unit": "10593"}), 404),
    Probe("GET", "/departments", "SQL as the unit", lambda w: _page(w, "xwb01", "/departments", params={"unit": SQL}), 404),
    Probe("GET", "/departments/forms.pdf", "another unit's forms",
          lambda w: _page(w, U, "/departments/forms.pdf", params={"unit": "10593"}), 404),
    Probe("GET", "/departments/forms.pdf", "a unit without departments",
          lambda w: _page(w, "10593XW01", "/departments/forms.pdf"), 422),
    Probe("GET", "/fees", "a province", lambda w: _page(w, "prov45", "/fees"), 404),
    Probe("GET", "/fees", "an invalid date", lambda w: _page(w, U, "/fees", params={"from": "2026-13-45"}), 422),
    Probe("GET", "/fees", "a far date", lambda w: _page(w, U, "/fees", params={"to": "9999-12-31"}), 422),
    Probe("GET", "/fees.xlsx", "script as the date", lambda w: _page(w, U, "/fees.xlsx", params={"from": SCRIPT}), 422),
    Probe("GET", "/fees.xlsx", "anonymous", lambda w: _page(w, None, "/fees.xlsx"), 303),
    Probe("GET", "/records", "another organisation's record",
          lambda w: _page(w, "10593XW01", "/records", params={"cert_no": w.record_of_10635}), 200),
    Probe("POST", "/records/import", "an executable behind a traversal name",
          lambda w: _form(w, U, "/records/import", files={"file": ("../../../evil.exe", b"MZ")}), 422),
    Probe("POST", "/records/import", "a province importing", lambda w: _form(
        w, "prov45", "/records/import", files={"file": ("r.csv", b"a\n")}), 403),
    Probe("POST", "/records/import", "without the CSRF token", lambda w: w.browser(U).client.post(
        "/records/import", files={"file": ("r.csv", b"a\n")}), 403),
    Probe("POST", "/records/imports/{import_id}/confirm", "an import that does not exist",
          lambda w: _form(w, U, "/records/imports/999999/confirm"), 404),
    Probe("POST", "/records/imports/{import_id}/confirm", "without the CSRF token",
          lambda w: w.browser(U).client.post("/records/imports/1/confirm"), 403),
    Probe("POST", "/records/imports/{import_id}/confirm", "a number beyond any id",
          lambda w: _form(w, U, "/records/imports/99999999999999999999/confirm"), 422),
    Probe("GET", "/records/jobs/{job_id}", "another person's job", lambda w: _page(w, U, f"/records/jobs/{w.other_job}"), 404),
    Probe("GET", "/records/jobs/{job_id}.json", "another person's job",
          lambda w: _page(w, U, f"/records/jobs/{w.other_job}.json"), 404),
    Probe("GET", "/records/jobs/{job_id}/report.xlsx", "another person's job",
          lambda w: _page(w, U, f"/records/jobs/{w.other_job}/report.xlsx"), 404),
    Probe("GET", "/records/jobs/{job_id}/report.xlsx", "traversal as the job",
          lambda w: _page(w, U, "/records/jobs/..%2F..%2Fetc/report.xlsx"), 404),
    Probe("GET", "/static", "path traversal", lambda w: _page(w, None, "/static/../../../etc/passwd"), 404),
    Probe("GET", "/static", "encoded path traversal", lambda w: _page(w, None, "/static/..%2F..%2F..%2Fetc%2Fpasswd"), 404),
    Probe("GET", "/api/openapi.json", "query junk is ignored", lambda w: _page(w, None, f"/api/openapi.json?x={SQL}"), 200),
    Probe("GET", "/api/docs", "query junk is ignored", lambda w: _page(w, None, f"/api/docs?x={SCRIPT}"), 200),
    Probe("GET", "/docs/oauth2-redirect", "script in the query",
          lambda w: _page(w, None, f"/docs/oauth2-redirect?state={SCRIPT}"), 200),
]  # fmt: skip


def _marks(probe: Probe) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=probe.bug)] if probe.bug else []


def _route_keys(routes: list[Any]) -> set[tuple[str, str]]:
    keys = set()
    for route in routes:
        included = getattr(
            route, "original_router", None
        )  # FastAPI's included router (its routes: full paths)
        if included is not None:
            keys |= _route_keys(included.routes)
        elif isinstance(route, Mount):
            keys.add(("GET", route.path))
        elif isinstance(route, APIRoute | Route):
            for method in route.methods or ():
                if method != "HEAD":
                    keys.add((method, route.path))
    return keys


def test_every_route_is_probed(world: World) -> None:
    """A new route cannot be forgotten: the probes cover exactly the routes the application has, and the API
    probes exactly the operations of the OpenAPI schema."""
    from degreeflow.settings import Settings
    from degreeflow.web.app import create_app

    app = create_app(world.flow, Settings(demo=True, data_dir=str(world.root / "data")))
    probed = {(p.method, p.route) for p in API_PROBES + PAGE_PROBES}
    assert probed == _route_keys(app.routes)
    schema = httpx.get(world.base + "/api/openapi.json").json()
    operations = {(m.upper(), path) for path, item in schema["paths"].items() for m in item}
    assert operations == {(p.method, p.route) for p in API_PROBES}


@pytest.mark.parametrize("probe", [pytest.param(p, id=p.id, marks=_marks(p)) for p in API_PROBES])
def test_api_refuses_cleanly_and_changes_nothing(world: World, probe: Probe) -> None:
    before = snapshot(world.flow.db)
    response = probe.send(world)
    after = snapshot(world.flow.db)
    expected = probe.status if isinstance(probe.status, tuple) else (probe.status,)
    no_traceback(response.text)
    assert response.status_code in expected, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = api_error(response)
        assert error["code"] and "Traceback" not in error["message"]
    if not probe.changes:
        assert changed(before, after) == []


@pytest.mark.parametrize("probe", [pytest.param(p, id=p.id, marks=_marks(p)) for p in PAGE_PROBES])
def test_pages_refuse_cleanly_and_change_nothing(world: World, probe: Probe) -> None:
    before = snapshot(world.flow.db)
    response = probe.send(world)
    after = snapshot(world.flow.db)
    expected = probe.status if isinstance(probe.status, tuple) else (probe.status,)
    no_traceback(response.text)
    assert response.status_code in expected, (response.status_code, response.text[:500])
    if response.status_code >= 400 and not probe.route.startswith("/records/jobs/{job_id}.json"):
        assert "text/html" in response.headers["content-type"] and "<html" in response.text
    if response.status_code == 303:
        assert response.headers["location"].startswith("/login")
    assert SCRIPT not in response.text  # reflected input is escaped
    assert changed(before, after) == []


def test_a_quick_succession_of_anonymous_queries_is_limited_cleanly(world: World) -> None:
    anonymous = world.fresh_api()
    before = snapshot(world.flow.db)
    answers = [anonymous.get("/query", params={"cert_no": SQL, "name": SCRIPT}) for _ in range(12)]
    assert answers[-1].status_code == 429 and api_error(answers[-1])["code"] == "rate_limited"
    assert {a.status_code for a in answers} <= {200, 429}
    assert changed(before, snapshot(world.flow.db)) == []


def test_scripts_in_names_are_stored_verbatim_and_shown_escaped(world: World) -> None:
    """Free text is free text: a name like <script>… is kept as typed (it may be a real typo) and every page
    shows it escaped; the JSON API returns it as JSON, never as HTML."""
    api = world.api(U)
    # (another certificate: one open revocation per certificate, and the world has one for REVOCATION's)
    made = api.post("/cases", json=_case_body(name=SCRIPT + SQL, cert_no="1063542021000987"), headers={})
    assert made.status_code == 201 and made.json()["payload"]["name"] == SCRIPT + SQL
    case_id = made.json()["id"]
    page = world.browser(U).client.get(f"/cases/{case_id}").text
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    listing = world.browser(U).client.get("/cases", params={"q": SCRIPT}).text
    assert SCRIPT not in listing
    with world.flow.db.connect() as conn:  # the tables are all still there
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() >= 3


def test_path_traversal_in_upload_names_stays_inside_the_data_folder(world: World) -> None:
    before = {p for p in world.root.rglob("*")}
    stored = _upload(world, U, world.own_case, "../../../../evil<script>.pdf", PDF)
    assert stored.status_code == 303
    names = [a["filename"] for a in world.flow.attachments(world.own_case)]
    assert "evil_script_.pdf" in names or any(n.startswith("evil") and "/" not in n for n in names), names
    started = _form(world, U, "/records/import", files={"file": ("../../../../evil.csv", b"a,b\n1,2\n")})
    assert started.status_code == 303
    new = {p for p in world.root.rglob("*")} - before
    data = (world.root / "data").resolve()
    outside = [
        p
        for p in new
        if not p.resolve().is_relative_to(data)
        and p.name not in ("hostile.db-wal", "hostile.db-shm", "hostile.db-journal")
    ]
    assert outside == []
    assert not any("evil" in p.name for p in new if p.parent.name == "attachments")  # stored under its hash


# -- the command line ---------------------------------------------------------------------------------------
@dataclass
class Invocation:
    command: str  # as _commands names it
    args: list[str]
    expect: (
        str  # "usage" (click refuses the arguments), "refused" (one 错误 line), "harmless" (rc 0, no change)
    )
    rc: int | None = None
    bug: str = ""
    stdin: str = ""

    @property
    def id(self) -> str:
        return " ".join(a if len(a) < 40 else a[:20] + f"…({len(a)})" for a in self.args)


C = "case"


def _invocations(w: dict[str, Any]) -> list[Invocation]:
    own, other, doc = str(w["own_case"]), str(w["other_case"]), str(w["own_doc"])
    rev = ["-f", "cert_no=1063542021000321", "-f", "name=钱某某", "-f", "conferral_date=2021-06-25"]
    return [
        Invocation("init", ["init", "--demo", "--bogus"], "usage"),
        Invocation("init", ["--db", SQL, "init"], "refused", 10),
        Invocation("init", ["--db", f"sqlite:///{TRAVERSAL}", "init"], "refused", 10),
        Invocation("demo", ["demo", SCRIPT], "usage"),
        Invocation("demo", ["--now", "2026-13-45", "demo"], "usage"),
        Invocation("serve", ["serve", "--port", "abc"], "usage"),
        Invocation("serve", ["serve", "--workers", "0"], "usage"),
        Invocation(
            "serve", ["serve", "--host", SCRIPT, "--port", "1"], "refused", 1
        ),  # secret key refused first
        Invocation("inbox", ["inbox", "--as", SQL], "refused", 4),
        Invocation("inbox", ["inbox", "--as", "prov50", "--limit", "abc"], "usage"),
        Invocation("inbox", ["inbox", "--as", "prov50", "--limit", BIG_INT], "refused", 7),
        Invocation("query", ["query", SQL_OR, SCRIPT], "refused", 4),
        Invocation("query", ["query", "1063532024000123", "张伟" * 5000, "--client", SQL], "refused", 4),
        Invocation("org add", ["org", "add", SQL, SCRIPT, "--kind", "emperor"], "refused", 7),
        Invocation(
            "org add", ["org", "add", "10635", "重复", "--kind", "unit", "--parent", "50"], "refused", 7
        ),
        Invocation(
            "org add", ["org", "add", "99998", "x", "--kind", "unit", "--parent", TRAVERSAL], "refused", 7
        ),
        Invocation(
            "org add",
            ["org", "add", "99997", "x" * 100000, "--kind", "unit", "--parent", "50"],
            "refused",
            7,
        ),
        Invocation("org list", ["org", "list", "--kind", SQL], "usage"),
        Invocation(
            "user add", ["user", "add", SQL, "x", "--role", "collector", "--org", "10635"], "refused", 7
        ),
        Invocation(
            "user add",
            ["user", "add", "10635XW09", SCRIPT, "--role", "emperor", "--org", "10635"],
            "refused",
            7,
        ),
        Invocation(
            "user add",
            ["user", "add", "10635XW09", "x", "--role", "collector", "--org", "10593"],
            "refused",
            7,
        ),
        Invocation(
            "user add",
            [
                "user",
                "add",
                "10635XW09",
                "x",
                "--role",
                "collector",
                "--org",
                "10635",
                "--email",
                "a@b.c\r\nBcc: all@example.org",
            ],
            "refused",
            7,
        ),
        Invocation(
            "user add",
            [
                "user",
                "add",
                "10635XW09",
                "x",
                "--role",
                "collector",
                "--org",
                "10635",
                "--email",
                f"a@b.c{SCRIPT}",
            ],
            "refused",
            7,
        ),
        Invocation("user passwd", ["user", "passwd", "10635XW01", "--password", "short"], "refused", 7),
        Invocation("user passwd", ["user", "passwd", SQL, "--password", "long-enough-1"], "refused", 4),
        Invocation(
            "user passwd", ["user", "passwd", "10635XW01"], "usage", stdin="a\nb\n"
        ),  # no match: aborts
        Invocation("user list", ["user", "list", "--org", SQL], "harmless"),
        Invocation("case open", [C, "open", "emperor", "--org", "10635", "--as", "10635XW01"], "refused", 4),
        Invocation(
            "case open",
            [
                C,
                "open",
                "revocation",
                "--org",
                "10593",
                "--as",
                "10635XW01",
                *rev,
                "-f",
                "decision_date=2026-11-18",
            ],
            "refused",
            5,
        ),
        Invocation("case open", [C, "open", "revocation", "--org", "10635", "--as", SQL], "refused", 4),
        Invocation(
            "case open",
            [
                C,
                "open",
                "revocation",
                "--org",
                "10635",
                "--as",
                "10635XW01",
                *rev,
                "-f",
                "decision_date=2026-02-30",
            ],
            "refused",
            7,
        ),
        Invocation(
            "case open",
            [
                C,
                "open",
                "revocation",
                "--org",
                "10635",
                "--as",
                "10635XW01",
                *rev,
                "-f",
                "decision_date=[1, 2]",
            ],
            "refused",
            7,
        ),
        Invocation(
            "case open",
            [C, "open", "revocation", "--org", "10635", "--as", "10635XW01", "--data", TRAVERSAL],
            "refused",
            7,
        ),
        Invocation(
            "case open",
            [C, "open", "revocation", "--org", "10635", "--as", "10635XW01", "--data", "binary.json"],
            "refused",
            7,
        ),
        Invocation(
            "case open",
            [C, "open", "revocation", "--org", "10635", "--as", "10635XW01", "--data", "huge.json"],
            "refused",
            7,
        ),
        Invocation(
            "case open",
            [C, "open", "revocation", "--org", "10635", "--as", "10635XW01", "-f", "novalue"],
            "refused",
            7,
        ),
        Invocation(
            "case open",
            [
                C,
                "open",
                "revocation",
                "--org",
                "10635",
                "--as",
                "10635XW01",
                *rev,
                "-f",
                "decision_date=9999-12-31",
            ],
            "refused",
            7,
        ),
        Invocation("case fire", [C, "fire", own, "confirm", "--as", "prov45"], "refused", 5),
        Invocation("case fire", [C, "fire", own, "verify", "--as", "10593XW02"], "refused", (3, 5)),
        Invocation("case fire", [C, "fire", other, "acknowledge", "--as", "prov50"], "refused", 5),
        Invocation("case fire", [C, "fire", own, SQL, "--as", "prov50"], "refused", 2),
        Invocation("case fire", [C, "fire", "abc", "confirm", "--as", "prov50"], "usage"),
        Invocation(
            "case fire",
            [C, "fire", own, "confirm", "--as", "prov50", "--expect-version", "1 OR 1=1"],
            "usage",
        ),
        Invocation(
            "case fire", [C, "fire", own, "confirm", "--as", "prov50", "--expect-version", "1"], "refused", 6
        ),
        Invocation("case fire", [C, "fire", BIG_INT, "confirm", "--as", "prov50"], "refused", 7),
        Invocation("case show", [C, "show", "'1'"], "usage"),
        Invocation("case show", [C, "show", "--", "-1"], "refused", 7),
        Invocation("case show", [C, "show", BIG_INT], "refused", 7),
        Invocation("case authorize", [C, "authorize", other, "verify", "--as", "10635XW02"], "refused", 4),
        Invocation("case authorize", [C, "authorize", own, SQL, "--as", "10635XW02"], "refused", 7),
        Invocation("case authorize", [C, "authorize", BIG_INT, "verify", "--as", "10635XW02"], "refused", 7),
        Invocation("case authorize", [C, "authorize", "abc", "verify", "--as", "10635XW02"], "usage"),
        Invocation("case attach", [C, "attach", other, "scan.pdf", "--as", "10635XW01"], "refused", 4),
        Invocation("case attach", [C, "attach", own, "scan.pdf", "--as", "10635XW01", "--purpose", SCRIPT], "refused", 7),
        Invocation("case attach", [C, "attach", own, "../etc/passwd", "--as", "10635XW01"], "refused", 7),
        Invocation("case attach", [C, "attach", own, "fake.xlsx", "--as", "10635XW01", "--purpose", SQL], "refused", 7),
        Invocation("case attach", [C, "attach", own, "nowhere.pdf", "--as", "10635XW01"], "refused", 7),
        Invocation("case attach", [C, "attach", BIG_INT, "binary.json", "--as", "10635XW01"], "refused", 7),
        Invocation("case list", [C, "list", "--type", SQL], "refused", 4),
        Invocation("case list", [C, "list", "--state", SCRIPT, "--org", TRAVERSAL], "harmless"),
        Invocation("audit verify", ["audit", "verify", "--case", "abc"], "usage"),
        Invocation("audit verify", ["audit", "verify", "--case", BIG_INT], "refused", 7),
        Invocation("definitions check", ["definitions", "check", SQL], "usage"),
        Invocation("definitions show", ["definitions", "show", SCRIPT], "refused", (1, 4)),
        Invocation("calendar import", ["calendar", "import", TRAVERSAL], "refused", 7),
        Invocation("calendar import", ["calendar", "import", "missing.csv"], "refused", 7),
        Invocation(
            "calendar import",
            ["calendar", "import", "binary.json"],
            "refused",
            7,
        ),
        Invocation("calendar template", ["calendar", "template", "MMXXVII"], "usage"),
        Invocation("calendar template", ["calendar", "template", "99999"], "refused", 7),
        Invocation("calendar template", ["calendar", "template", "2027", "-o", "."], "refused", 7),
        Invocation("calendar years", ["calendar", "years", SQL], "usage"),
        Invocation("calendar due", ["calendar", "due", "2021-13-45", "5"], "refused", 7),
        Invocation("calendar due", ["calendar", "due", "2026-01-01", "five"], "usage"),
        Invocation("calendar due", ["calendar", "due", "9999-12-31", "5"], "refused", 7),
        Invocation("calendar due", ["calendar", "due", "2026-01-01", "99999999999"], "refused", 7),
        Invocation("calendar is-workday", ["calendar", "is-workday", SQL], "refused", 7),
        Invocation("calendar is-workday", ["calendar", "is-workday", "2026-02-29"], "refused", 7),
        Invocation("deadlines list", ["deadlines", "list", "--due-within", "abc"], "usage"),
        Invocation("deadlines list", ["deadlines", "list", "--org", SQL], "harmless"),
        Invocation("deadlines list", ["deadlines", "list", "--due-within", "99999999"], "refused", 7),
        Invocation("deadlines sweep", ["deadlines", "sweep", "--org", SQL], "usage"),
        Invocation("scheduler run", ["scheduler", "run", "--interval", "abc"], "usage"),
        Invocation("scheduler run", ["scheduler", "run", "--interval", "-5"], "refused", 7),
        Invocation("records validate", ["records", "validate", TRAVERSAL], "refused", 7),
        Invocation("records validate", ["records", "validate", "missing.csv"], "refused", 7),
        Invocation("records validate", ["records", "validate", "fake.xlsx"], "refused", 7),
        Invocation("records import", ["records", "import", "records.csv", "--org", SQL, "--as", "xwzx01"], "refused", 4),
        Invocation("records import", ["records", "import", "records.csv", "--org", "10593", "--as", "xwzx01"], "refused", 7),
        Invocation("records import", ["records", "import", TRAVERSAL, "--org", "10635", "--as", "xwzx01"], "refused", 7),
        Invocation("records import", ["records", "import", "fake.xlsx", "--org", "10635", "--as", "xwzx01"], "refused", 7),
        Invocation("records import", ["records", "import", "records.csv", "--org", "10635"], "refused", 7),  # no importer
        Invocation("records import", ["records", "import", "records.csv", "--as", SQL], "refused", 4),
        Invocation("records confirm", ["records", "confirm", "1", "--as", SQL], "refused", 4),
        Invocation("records confirm", ["records", "confirm", "999999", "--as", "10635XW02"], "refused", 4),
        Invocation("records imports", ["records", "imports", "--as", SQL], "refused", 4),
        Invocation("records imports", ["records", "imports", "--limit", "0"], "usage"),
        Invocation("records export", ["records", "export", "out.csv", "--org", "10635", "--bogus"], "usage"),
        Invocation("records export", ["records", "export", "."], "refused", 7),
        Invocation("records export", ["records", "export", "no/such/folder/x.csv"], "refused", 7),
        Invocation("records history", ["records", "history", SQL], "refused", 4),
        Invocation("records history", ["records", "history", SCRIPT], "refused", 4),
        Invocation("case export", [C, "export", own, "--as", "10593XW01", "-o", "dossier.zip"], "refused", 4),
        Invocation("case export", [C, "export", own, "--as", SQL, "-o", "dossier.zip"], "refused", 4),
        Invocation("case export", [C, "export", own, "--as", "xwb01", "-o", TRAVERSAL], "refused", (6, 12)),
        Invocation("case export", [C, "export", BIG_INT, "--as", "xwb01", "-o", "d.zip"], "refused", 7),
        Invocation("backup", ["backup", TRAVERSAL], "refused", 6),
        Invocation("backup", ["backup", "copy.db", "--bogus", SQL], "usage"),
        Invocation("dept add", ["dept", "add", "10635", SQL, "--kind", "bogus"], "refused", 7),
        Invocation("dept add", ["dept", "add", SQL, "教务处", "--kind", "college"], "refused", 4),
        Invocation(
            "dept add",
            ["dept", "add", "10635", "研究生院", "--kind", "verification", "--levels", SCRIPT],
            "refused",
            7,
        ),  # fmt: skip
        Invocation("dept list", ["dept", "list", SQL], "refused", 4),
        Invocation("dept forms", ["dept", "forms", "10593", "-o", TRAVERSAL], "refused", 7),
        Invocation("dept forms", ["dept", "forms", SQL], "refused", 4),
        Invocation("auth fees", ["auth", "fees", "--from", "2026-13-01", "--to", "2026-12-01"], "refused", 7),
        Invocation("auth fees", ["auth", "fees", "--from", "2026-12-01", "--to", "2026-01-01"], "refused", 7),
        Invocation(
            "auth fees",
            ["auth", "fees", "--from", "2026-01-01", "--to", "2026-12-01", "--unit", SQL],
            "harmless",
        ),  # fmt: skip
        Invocation(
            "auth spot-check", ["auth", "spot-check", "--month", "2026-13", "--as", "xwzx01"], "refused", 7
        ),
        Invocation(
            "auth spot-check", ["auth", "spot-check", "--month", "2026-11", "--as", SQL], "refused", 4
        ),
        Invocation(
            "auth spot-check", ["auth", "spot-check", "--month", "2026-11", "--as", "10635XW01"], "refused", 5
        ),
        Invocation(
            "auth spot-check",
            ["auth", "spot-check", "--month", "2026-11", "--as", "xwzx01", "--percent", "1e9"],
            "refused",
            7,
        ),  # fmt: skip
        Invocation(
            "user add",
            ["user", "add", "10635XW31", "某某", "--role", "checker", "--org", "10635", "--department", SQL],
            "refused",
            7,
        ),  # fmt: skip
        Invocation("db upgrade", ["db", "upgrade", "--bogus"], "usage"),
        Invocation("db upgrade", ["--db", SQL, "db", "upgrade"], "refused", 10),
        Invocation("db current", ["db", "current", SQL], "usage"),
        Invocation("db check", ["--db", f"sqlite:///{TRAVERSAL}", "db", "check"], "refused", 10),
        Invocation("letter list", ["letter", "list", "abc"], "usage"),
        Invocation("letter list", ["letter", "list", BIG_INT], "refused", 7),
        Invocation("letter render", ["letter", "render", own, TRAVERSAL], "refused", 4),
        Invocation("letter render", ["letter", "render", other, "revocation_report"], "refused", 4),
        Invocation("letter reissue", ["letter", "reissue", doc, "--as", "10593XW01"], "refused", 5),
        Invocation("letter reissue", ["letter", "reissue", doc, "--as", SQL], "refused", 4),
        Invocation("letter reissue", ["letter", "reissue", "1.5", "--as", "10635XW01"], "usage"),
        Invocation("letter packet", ["letter", "packet", "--org", SQL, "--date", "2026-11-20"], "refused", 1),
        Invocation(
            "letter packet", ["letter", "packet", "--org", "10635", "--date", "2026-13-01"], "refused", 7
        ),
    ]


# The case and document IDs the invocations name (fixed by build_cases on a fresh database).
CLI_IDS = {"own_case": 1, "other_case": 2, "own_doc": 1}
INVOCATIONS = _invocations(CLI_IDS)


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An SQLite database with the same two cases and one record, a work folder with hostile files beside
    it (a fake /etc/passwd two levels up, a binary "JSON" file, a 1 MB JSON file, a non-ZIP .xlsx) and the CLI
    fork server."""
    root = tmp_path_factory.mktemp("hostile-cli")
    work = root / "a" / "b"
    work.mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (work / "binary.json").write_bytes(b"\xff\xfe\x00\x81" * 64)
    (work / "huge.json").write_text(json.dumps({"name": HUGE}), encoding="utf-8")
    (work / "fake.xlsx").write_bytes(b"\x00not a zip" * 100)
    (work / "scan.pdf").write_bytes(PDF)  # a real upload, for the refusals that are not about the file
    write_records(work / "records.csv", [VALID])
    url = f"sqlite:///{root}/cli.db"
    engine = make_engine(url)
    flow = DegreeFlow(engine, FixedClock(START))
    flow.init_schema()
    demo.seed(flow, cases=False)
    flow.attachments_dir = root / "data" / "attachments"  # where the application run below keeps them
    own, other = build_cases(flow)
    assert {"own_case": own, "other_case": other, "own_doc": flow.documents(own)[0]["id"]} == CLI_IDS
    runner = ForkedCli()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(root), "LANG": "C.UTF-8",
           "DEGREEFLOW_DATABASE_URL": url, "DEGREEFLOW_NOW": "2026-11-20T09:00",
           "DEGREEFLOW_DATA_DIR": str(root / "data")}  # fmt: skip
    yield {"engine": engine, "runner": runner, "env": env, "cwd": str(work), "root": root}
    runner.close()
    engine.dispose()


ONE_LINE_ERROR = re.compile(r"^错误 \[[a-z_]+(/[a-z_0-9]+)?\] \S")


def check_clean(inv: Invocation, ran: Ran) -> None:
    assert not ran.timed_out, f"still running after the timeout: {ran.output[-500:]}"
    no_traceback(ran.output)
    if inv.expect == "harmless":
        assert ran.rc == 0, ran.output[-800:]
        return
    assert ran.rc != 0, ran.output[-800:]
    if inv.expect == "usage":
        assert ran.rc in (1, 2) and ("Usage:" in ran.stderr or "Aborted" in ran.stderr), ran.output[-800:]
        return
    lines = ran.stderr.strip().splitlines()
    if inv.command == "query":  # the online query answers "not found" as a plain line
        assert len(lines) == 1 and "未查询到" in lines[0], ran.output
    else:
        echoed = any("\n" in arg for arg in inv.args)  # the message quotes the value, its line breaks too
        assert (len(lines) == 1 or echoed) and ONE_LINE_ERROR.match(lines[0]), ran.output[-800:]
    if inv.rc is not None:
        assert ran.rc in (inv.rc if isinstance(inv.rc, tuple) else (inv.rc,)), (ran.rc, ran.output[-800:])


def test_every_cli_command_gets_hostile_input() -> None:
    commands = set(_commands(typer.main.get_command(cli_app)))
    assert {inv.command for inv in INVOCATIONS} == commands


@pytest.mark.parametrize(
    "inv",
    [pytest.param(i, id=f"{i.command}: {i.id}", marks=[pytest.mark.xfail(strict=True, reason=i.bug)] if i.bug else [])
     for i in INVOCATIONS],
)  # fmt: skip
def test_cli_refuses_cleanly_and_changes_nothing(cli_world: dict[str, Any], inv: Invocation) -> None:
    before = snapshot(cli_world["engine"])
    timeout = 3 if inv.command in ("scheduler run", "serve") else 30
    ran = cli_world["runner"].run(inv.args, cli_world["env"], cli_world["cwd"], inv.stdin, timeout)
    after = snapshot(cli_world["engine"])
    check_clean(inv, ran)
    assert changed(before, after) == []
    assert not (Path(cli_world["root"]) / "etc" / "passwd-错误报告.xlsx").exists()


def test_cli_errors_as_json_have_the_one_shape(cli_world: dict[str, Any]) -> None:
    before = snapshot(cli_world["engine"])
    for args in (["case", "show", "--json", "--", "-1"], ["case", "list", "--type", SQL, "--json"],
                 ["case", "fire", "1", "confirm", "--as", "prov45", "--json"],
                 ["records", "history", SCRIPT, "--json"]):  # fmt: skip
        ran = cli_world["runner"].run(args, cli_world["env"], cli_world["cwd"])
        no_traceback(ran.output)
        body = json.loads(ran.stdout)
        assert ran.rc != 0 and set(body) == {"error"}
        assert {"code", "rule", "message"} <= set(body["error"]), body
    assert changed(before, snapshot(cli_world["engine"])) == []


def test_the_fork_server_runs_the_cli_as_the_installed_script_does(cli_world: dict[str, Any]) -> None:
    """The harness is faithful: the same invocation through the installed `degreeflow` script gives the same
    exit code and output."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("degreeflow", path=str(Path(sys.executable).parent)) or "degreeflow"
    for args in (["case", "fire", "1", SQL, "--as", "prov50"], ["case", "show", "abc"]):
        real = subprocess.run([exe, *args], env=cli_world["env"], cwd=cli_world["cwd"], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        forked = cli_world["runner"].run(args, cli_world["env"], cli_world["cwd"])
        assert (forked.rc, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)


def test_cli_on_postgresql_refuses_cleanly(world: World, tmp_path: Path) -> None:
    """The invocations that reach the database, against PostgreSQL (known bugs aside): the same clean
    refusals, nothing changed. (An ID beyond 64 bits used to reach the database: SQLite raised OverflowError,
    PostgreSQL a database error; the command line now refuses it first on both.)"""
    if world.flow.db.dialect.name != "postgresql":
        pytest.skip("the SQLite run is test_cli_refuses_cleanly_and_changes_nothing")
    ids = {"own_case": world.own_case, "other_case": world.other_case, "own_doc": world.own_doc}
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    write_records(work / "records.csv", [VALID])
    (work / "huge.json").write_text(json.dumps({"name": HUGE}), encoding="utf-8")
    (work / "binary.json").write_bytes(b"\xff\xfe\x00\x81" * 64)
    (work / "fake.xlsx").write_bytes(b"\x00not a zip" * 100)
    (work / "scan.pdf").write_bytes(PDF)  # a real upload, for the refusals that are not about the file
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "DEGREEFLOW_DATABASE_URL": world.flow.db.url.render_as_string(hide_password=False),
           "DEGREEFLOW_NOW": "2026-11-20T09:00"}  # fmt: skip
    chosen = [i for i in _invocations(ids) if not i.bug and i.expect != "usage" and i.command not in (
        "init", "serve", "scheduler run", "demo", "backup", "db upgrade", "db check")]  # fmt: skip
    runners = [ForkedCli(), ForkedCli()]  # two at a time (they only read: one snapshot around all of them)
    before = snapshot(world.flow.db)
    try:
        with ThreadPoolExecutor(len(runners)) as pool:
            ran = list(pool.map(lambda pair: runners[pair[0] % 2].run(pair[1].args, env, str(work)),
                                enumerate(chosen)))  # fmt: skip
    finally:
        for runner in runners:
            runner.close()
    failures = []
    for inv, result in zip(chosen, ran, strict=True):
        try:
            check_clean(inv, result)
        except AssertionError as problem:
            failures.append(f"{inv.id}: {problem}")
    assert failures == []
    assert changed(before, snapshot(world.flow.db)) == []
    assert any(inv.args == [C, "show", BIG_INT] for inv in chosen)


# -- schemathesis ---------------------------------------------------------------------------------------------
def test_schemathesis_finds_no_server_error_and_every_response_as_documented(world: World) -> None:
    """Fuzz every operation of the OpenAPI schema, signed in as a unit collector (session cookie and CSRF
    header), with valid and invalid data: no 5xx, documented status codes, content types and bodies."""
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    schema = schemathesis.openapi.from_url(world.base + "/api/openapi.json")
    session = requests.Session()
    signed = session.post(world.base + "/api/v1/session", json={"username": U, "password": DEMO_PASSWORD})
    session.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    operations = [result.ok() for result in schema.get_all_operations()]
    # Signing out would end the session the other operations fuzz with: it goes last.
    operations.sort(key=lambda op: op.label == "DELETE /api/v1/session")
    failures: list[str] = []
    calls = [0]

    def _fuzzer(strategy: Any, label: str) -> Callable[[], None]:
        @given(case=strategy)
        @settings(max_examples=8, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])  # fmt: skip
        def fuzz(case: Any) -> None:
            calls[0] += 1
            response = case.call(base_url=world.base, session=session, timeout=30)
            try:
                case.validate_response(response, checks=checks)
            except BaseException as failure:  # schemathesis reports a group of failures
                failures.append(f"{label} {response.status_code}: {failure}"[:1500])

        return fuzz

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz = _fuzzer(operation.as_strategy(generation_mode=mode), f"{operation.label} [{mode.value}]")

            try:
                fuzz()
            except Unsatisfiable:  # no invalid variant exists (an operation without parameters or body)
                assert mode is GenerationMode.NEGATIVE
    assert calls[0] > 150
    assert failures == []
