"""Live updates: the hub (one upstream poll per topic, bounded per-page queues)
with a finite source, and the SSE endpoints over a real uvicorn."""
from __future__ import annotations

import asyncio
import socket
import threading

import anyio
import httpx
import pytest

from flowdeck.server.dashboard.live import Hub
from dashboard_helpers import anyio_backend, seed  # noqa: F401 - fixtures

pytestmark = pytest.mark.anyio


async def test_one_poll_per_topic_fanned_out_newest_wins():
    hub, calls = Hub(), []
    snapshots = iter(range(1000))

    async def fetch():
        n = next(snapshots)
        calls.append(n)
        return n // 3, n // 3  # a new fingerprint every third poll

    async with hub.listen("t", fetch, 0.01) as a, hub.listen("t", fetch, 0.01) as b:
        first_a = await a.next(5)
        assert first_a == 0 and await b.next(5) == 0
        await asyncio.sleep(0.3)  # `a` does not read: it keeps only the newest snapshot
        newest = await a.next(5)
        assert newest >= 3 and newest == calls[-1] // 3
        assert len(hub.topics) == 1, "both pages share one poll"
    await asyncio.sleep(0.05)
    assert hub.topics == {}, "the poll stops with its last listener"
    stopped_at = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == stopped_at


async def test_a_failed_fetch_is_delivered_and_close_ends_listeners():
    hub = Hub()

    async def broken():
        raise RuntimeError("the API is down")

    async with hub.listen("bad", broken, 0.01) as listener:
        got = await listener.next(5)
        assert isinstance(got, RuntimeError)
    async with hub.listen("slow", broken, 60) as listener:
        await listener.next(5)
        hub.close()
        assert await listener.next(5) is None


# -- over real uvicorn -------------------------------------------------------------


@pytest.fixture
def live_url(server):
    """The dashboard served by uvicorn on 127.0.0.1 port 0, polling fast."""
    import uvicorn

    from flowdeck.server.dashboard.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    app = create_app(server.address, poll_seconds=0.1)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not uv.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    uv.should_exit = True
    thread.join(10)
    sock.close()


async def events(response):
    """(event, id, data) of a text/event-stream, as they come."""
    event, ident, data = "message", "", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, ident, "\n".join(data)
            event, ident, data = "message", "", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


async def next_event(stream, name: str, timeout: float = 20):
    with anyio.fail_after(timeout):
        async for event, ident, data in stream:
            if event == name:
                return ident, data


async def test_run_stream_states_logs_then_done(live_url, seed):
    dep = seed.deployment("d")
    run = seed.run(dep)
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        page = await client.get(f"/runs/{run.id}")
        assert page.status_code == 200
        async with client.stream("GET", f"/live/run/{run.id}?after=0:") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-store"
            stream = events(r)
            _, html = await next_event(stream, "run-state")
            assert "Scheduled" in html and "Cancel run" in html
            seed.state(run, "RUNNING")
            _, html = await next_event(stream, "run-state")
            assert "Running" in html
            seed.log(run, "Hello <b>Earth</b>!")
            ident, html = await next_event(stream, "log")
            assert "Hello &lt;b&gt;Earth&lt;/b&gt;!" in html and ident.startswith("1:")
            seed.log(run, "second")
            ident, html = await next_event(stream, "log")
            assert "second" in html and "Earth" not in html and ident.startswith("2:")
            seed.state(run, "COMPLETED")
            _, html = await next_event(stream, "run-state")
            assert "Completed" in html and "Cancel run" not in html
            await next_event(stream, "done")


async def test_reconnect_resumes_at_last_event_id(live_url, seed):
    run = seed.run(seed.deployment("d"))
    seed.log(run, "one", "two", "three")
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        async with client.stream("GET", f"/live/run/{run.id}", headers={"last-event-id": "2:"}) as r:
            _, html = await next_event(events(r), "log")
            assert "three" in html and "two" not in html


async def test_list_stream_shows_a_new_deployment(live_url, seed):
    seed.deployment("first")
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        async with client.stream("GET", "/live/deployments") as r:
            stream = events(r)
            _, html = await next_event(stream, "rows")
            assert "hello/first" in html and "hello/second" not in html
            seed.deployment("second", tags=["new"])
            _, html = await next_event(stream, "rows")
            assert "hello/second" in html and "hello/first" in html


async def test_runs_list_stream_follows_states(live_url, seed):
    run = seed.run(seed.deployment("d"), state="RUNNING")
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        async with client.stream("GET", "/live/runs?state=RUNNING&state=FAILED") as r:
            stream = events(r)
            _, html = await next_event(stream, "rows")
            assert run.id in html and "Running" in html
            seed.state(run, "FAILED", "boom")
            _, html = await next_event(stream, "rows")
            assert "Failed" in html and "Running" not in html
