"""Server-sent events: one stream per page, fed by the hub (flowdeck.server.dashboard.live).

Events carry HTML rendered for the page's own session (its scope decides the
buttons): `rows` replaces a list's rows, `run-state` a run's state panel, `log`
appends new log lines (its id is the log cursor, so a browser reconnecting by
itself resumes there), `done` ends a run page's stream a little after the run
ends (log lines can land just after the end)."""
from __future__ import annotations

import asyncio

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request

from flowdeck.server.dashboard import render
from flowdeck.server.dashboard.security import session_of
from flowdeck.server.dashboard.views import deployments as deps
from flowdeck.server.dashboard.views import runs
from flowdeck.server.dashboard.views.common import caller, context, dash

LIST_POLL = 1.0  # lists: a change shows within about a second
AFTER_END = 3.0  # a run page keeps listening this long after the run ends
PING = 15


def _stream(events) -> EventSourceResponse:
    # send_timeout: a tab that stopped reading is dropped instead of piling up.
    return EventSourceResponse(events, ping=PING, send_timeout=10, headers={"Cache-Control": "no-store"})


def _error_event(exc: Exception) -> dict:
    return {"event": "failed", "data": str(exc)}


def _list_stream(request: Request, kind: str, load, fingerprint, template: str, nav: str, query):
    d = dash(request)
    key = (session_of(request).key_id, kind, repr(query))

    async def fetch():
        data = await load(request, query)
        return fingerprint(data), data

    async def events():
        async with d.hub.listen(key, fetch, max(LIST_POLL, d.poll_seconds)) as listener:
            while True:
                data = await listener.next()
                if data is None:
                    return
                if isinstance(data, Exception):
                    yield _error_event(data)
                    return
                html = render.fragment(template, context(request, nav, query=query, **data))
                yield {"event": "rows", "data": html}

    return _stream(events())


async def live_runs(request: Request):
    query = runs.RunQuery.parse(request.query_params)
    return _list_stream(request, "runs", runs.load_runs, runs.runs_fingerprint, "_run_rows.html", "runs", query)


async def live_deployments(request: Request):
    query = deps.DeploymentQuery.parse(request.query_params)
    return _list_stream(request, "deployments", deps.load_deployments, deps.deployments_fingerprint,
                        "_deployment_rows.html", "deployments", query)


async def live_run(request: Request):
    d = dash(request)
    run_id = request.path_params["run_id"]
    level = runs._level(request.query_params)
    # A browser reconnecting by itself says where it was (Last-Event-ID); else the page's cursor.
    cursor = runs.LogCursor.parse(request.headers.get("last-event-id") or request.query_params.get("after"))
    key = (session_of(request).key_id, "run", run_id)
    fetch = runs.run_snapshot(request, run_id)
    call = caller(request)
    loop = asyncio.get_running_loop()

    async def new_lines():
        nonlocal cursor
        more = True
        while more:
            lines, cursor, more = await runs.read_logs(call, run_id, cursor, level)
            if lines:
                ctx = context(request, "runs", logs=lines, level=level)
                yield {"event": "log", "id": str(cursor), "data": render.fragment("_log_lines.html", ctx)}

    async def events():
        async with d.hub.listen(key, fetch, d.poll_seconds) as listener:
            shown, total, ends_at = None, None, None
            while True:
                timeout = None if ends_at is None else max(0.0, ends_at - loop.time())
                snap = await listener.next(timeout)
                if snap is None:
                    break
                if isinstance(snap, Exception):
                    yield _error_event(snap)
                    break
                run, lines = snap
                state = (run.state.type, run.state.name, run.updated.seconds, run.updated.nanos)
                if state != shown:
                    shown = state
                    ctx = context(request, "runs", run=run, cancellable=run.state.type in runs.CANCELLABLE)
                    yield {"event": "run-state", "data": render.fragment("_run_state.html", ctx)}
                if lines != total:
                    total = lines
                    async for event in new_lines():
                        yield event
                if run.state.type in render.TERMINAL and ends_at is None:
                    ends_at = loop.time() + AFTER_END
        yield {"event": "done", "data": "done"}

    return _stream(events())
