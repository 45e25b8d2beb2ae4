"""A real HTTP server for the web tests: uvicorn on a free loopback port, in a thread of the test process,
serving the application over a real database (so the test can also read the database directly)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from cases.service import DegreeFlow
from degreeflow.demo import DEMO_PASSWORD
from degreeflow.settings import Settings
from degreeflow.web.app import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OPEN_CLIENTS: list[httpx.Client] = []  # closed when the server stops


def _client(**kwargs: object) -> httpx.Client:
    client = httpx.Client(**kwargs)  # type: ignore[arg-type]
    OPEN_CLIENTS.append(client)
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, timeout: float = 30.0) -> httpx.Response:
    """Poll `base`/login until a server answers 200 there (a process just started); its answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with httpx.Client(timeout=2) as client:
                page = client.get(base + "/login")
            if page.status_code == 200:
                return page
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no server answered at {base}")
        time.sleep(0.03)


@contextmanager
def serve(flow: DegreeFlow, data_dir: Path, **settings: object) -> Iterator[str]:
    port = free_port()
    config = Settings(demo=True, data_dir=str(data_dir), **settings)  # type: ignore[arg-type]
    app = create_app(flow, config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        while OPEN_CLIENTS:
            OPEN_CLIENTS.pop().close()
        server.should_exit = True
        thread.join(timeout=10)


class Browser:
    """A signed-in (or anonymous) HTTP client that reads the CSRF token from pages, as a browser would."""

    def __init__(self, base: str):
        self.client = _client(base_url=base, follow_redirects=False, timeout=30)
        self.csrf = ""

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = self.client.get(path, **kwargs)  # type: ignore[arg-type]
        found = (
            CSRF.search(response.text) if "text/html" in response.headers.get("content-type", "") else None
        )
        if found:
            self.csrf = found[1]
        return response

    def post(self, path: str, data: dict[str, object] | None = None, **kwargs: object) -> httpx.Response:
        form = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(path, data=form, **kwargs)  # type: ignore[arg-type]

    def login(self, username: str, password: str = DEMO_PASSWORD) -> httpx.Response:
        self.get("/login")
        return self.post("/login", {"username": username, "password": password, "next": "/queue"})

    def close(self) -> None:
        self.client.close()


class Api:
    """A JSON API client: signs in with POST /api/v1/session and sends the CSRF token as a header."""

    def __init__(self, base: str, username: str | None = None, password: str = DEMO_PASSWORD):
        self.client = _client(base_url=base + "/api/v1", timeout=30)
        if username:
            response = self.client.post("/session", json={"username": username, "password": password})
            assert response.status_code == 200, (username, response.status_code, response.text)
            self.client.headers["X-CSRF-Token"] = response.json()["csrf_token"]

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.client, name)
