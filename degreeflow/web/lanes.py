"""Which requests one web process computes at once.

Pages and API reads are mostly Python computation (queries, row building, templates). CPython runs one
thread at a time, so several reads computed side by side only take turns mid-request: each takes as long as
all of them together and the slowest wait longest. Computed one after another, in arrival order, the same
process answers more reads per second with a far shorter tail (bench/bench_web.py: p99 70-75 ms against
127-129 ms with four at once, 20 connections on two processes). Requests that build files (PDF, XLSX), the
overview's aggregates and every write (which may render letters or wait on a lock) keep the thread pool
(`DEGREEFLOW_WEB_THREADS`) and never wait behind the reads, nor the reads behind them.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READ_METHODS = frozenset({"GET", "HEAD"})
# Reads that take long enough to hold up the pages behind them: they run beside the read lane.
SLOW_SUFFIXES = (".pdf", ".xlsx")
SLOW_PATHS = frozenset({"/overview", "/api/v1/overview"})


def is_lane_read(scope: Scope) -> bool:
    """Whether the request is a quick read computed in the read lane."""
    path: str = scope["path"]
    return (
        scope["method"] in READ_METHODS
        and not path.endswith(SLOW_SUFFIXES)
        and path.rstrip("/") not in SLOW_PATHS
        and not path.startswith("/static/")
    )


class ReadLane:
    """ASGI middleware: at most `size` quick reads (`is_lane_read`) are computed at once in this process,
    admitted in arrival order; a read leaves the lane when its response starts (a body streamed after that,
    such as a file, no longer holds it up) or when it ends without one."""

    def __init__(self, app: ASGIApp, size: int) -> None:
        self.app, self.size = app, size
        self._lane: Any = None  # an anyio.Semaphore, made in the running event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_lane_read(scope):
            await self.app(scope, receive, send)
            return
        if self._lane is None:
            self._lane = anyio.Semaphore(self.size)  # FIFO: waiters are admitted in arrival order
        lane = self._lane
        await lane.acquire()
        held = True

        def leave() -> None:
            nonlocal held
            if held:
                held = False
                lane.release()

        async def send_leaving(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        try:
            await self.app(scope, receive, send_leaving)
        finally:
            leave()
