"""The read lane (degreeflow/web/lanes.py): quick reads computed one at a time in arrival order, file
downloads, the overview and writes beside them; a read leaves the lane when its response starts or fails."""

from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from degreeflow.settings import Settings
from degreeflow.web.lanes import ReadLane, is_lane_read


class Probe:
    """Counts the handlers running at once and the order they started in."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[str] = []

    async def handler(self, request: Request) -> Response:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.append(request.query_params.get("n", ""))
        try:
            await anyio.sleep(0.02)
            if request.query_params.get("fail"):
                raise RuntimeError("handler failed")
        finally:
            self.running -= 1
        return PlainTextResponse("ok")


def lane_app(probe: Probe, size: int, streamed: anyio.Event | None = None) -> ReadLane:
    async def stream(request: Request) -> Response:
        async def body():  # type: ignore[no-untyped-def]
            yield b"start"
            assert streamed is not None
            await streamed.wait()  # the body goes on after the response started
            yield b"end"

        return StreamingResponse(body())

    paths = ["/queue", "/cases/1", "/overview", "/api/v1/overview", "/documents/3.pdf", "/fees.xlsx"]
    routes = [Route(p, probe.handler, methods=["GET", "POST"]) for p in paths]
    routes.append(Route("/stream", stream))
    return ReadLane(Starlette(routes=routes), size=size)


def run_together(app: ReadLane, requests: list[tuple[str, str]]) -> list[int]:
    statuses: list[int] = []

    async def main() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def one(method: str, url: str) -> None:
                statuses.append((await client.request(method, url)).status_code)

            async with anyio.create_task_group() as group:
                for method, url in requests:
                    group.start_soon(one, method, url)
                    await anyio.sleep(0.001)  # arrival order = list order

    anyio.run(main)
    return statuses


def test_quick_reads_are_computed_one_at_a_time_in_arrival_order() -> None:
    probe = Probe()
    statuses = run_together(lane_app(probe, 1), [("GET", f"/queue?n={i}") for i in range(6)])
    assert statuses == [200] * 6
    assert probe.most == 1
    assert probe.started == [str(i) for i in range(6)]


def test_the_lane_admits_its_size() -> None:
    probe = Probe()
    run_together(lane_app(probe, 2), [("GET", f"/cases/1?n={i}") for i in range(6)])
    assert probe.most == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/queue"),
        ("GET", "/documents/3.pdf"),
        ("GET", "/fees.xlsx"),
        ("GET", "/overview"),
        ("GET", "/api/v1/overview"),
    ],  # fmt: skip
)
def test_writes_files_and_the_overview_run_beside_the_lane(method: str, path: str) -> None:
    probe = Probe()
    run_together(lane_app(probe, 1), [(method, path)] * 4)
    assert probe.most == 4
    assert not is_lane_read({"method": method, "path": path})


def test_a_failed_read_leaves_the_lane() -> None:
    probe = Probe()
    statuses = run_together(lane_app(probe, 1), [("GET", "/queue?fail=1&n=0"), ("GET", "/queue?n=1")])
    assert sorted(statuses) == [200, 500]
    assert probe.started == ["0", "1"]


def test_a_streamed_body_does_not_hold_the_lane() -> None:
    probe = Probe()
    finished: list[str] = []

    async def main() -> None:
        streamed = anyio.Event()
        app = lane_app(probe, 1, streamed)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def download() -> None:
                async with client.stream("GET", "/stream") as response:
                    async for _ in response.aiter_bytes():
                        pass
                finished.append("stream")

            async def page() -> None:
                await anyio.sleep(0.01)
                assert (await client.get("/queue")).status_code == 200
                finished.append("page")
                streamed.set()

            with anyio.fail_after(5):
                async with anyio.create_task_group() as group:
                    group.start_soon(download)
                    group.start_soon(page)

    anyio.run(main)
    assert finished == ["page", "stream"]


def test_the_lane_size_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().web_reads == 1
    monkeypatch.setenv("DEGREEFLOW_WEB_READS", "3")
    assert Settings().web_reads == 3
    monkeypatch.setenv("DEGREEFLOW_WEB_READS", "0")
    with pytest.raises(ValueError, match="web_reads"):
        Settings()
