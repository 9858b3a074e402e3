"""Flow runs: the list (filters in the URL query, keyset pages through the
API's page tokens, states live) and one run (state timeline, parameters,
lease, logs with a live tail, Cancel)."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from urllib.parse import urlencode

from google.protobuf import timestamp_pb2
from starlette.requests import Request

from flowdeck.server.dashboard import render
from flowdeck.server.dashboard.security import checked_form
from flowdeck.server.dashboard.views.common import back, caller, context, dash, now_utc, page, request_id
from flowdeck.v1 import flow_run_service_pb2 as rpb
from flowdeck.v1 import log_service_pb2 as lpb

STATES = ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED"]
STATE_NUMBER = {name: i for i, name in render.STATE_TYPES.items()}
WINDOWS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
PAGE_SIZE = 50
LOG_PAGE = 500
CANCELLABLE = {1, 2, 3}  # scheduled, pending, running


def timestamp(d: dt.datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(d)
    return out


@dataclasses.dataclass
class RunQuery:
    """The runs list's filters, as the URL query says them."""

    view: str = "started"  # started (newest first) or upcoming (scheduled ahead, soonest first)
    states: tuple[str, ...] = ()
    deployment: str = ""
    flow: str = ""
    since: str = ""
    before: str = ""  # pins "now" while paging, so pages neither repeat nor skip
    page: str = ""
    size: int = PAGE_SIZE

    @classmethod
    def parse(cls, params) -> "RunQuery":
        states = tuple(s for s in params.getlist("state") if s in STATES)
        size = params.get("size", "")
        return cls(view="upcoming" if params.get("view") == "upcoming" else "started", states=states,
                   deployment=params.get("deployment", "")[:64], flow=params.get("flow", "")[:200],
                   since=params.get("since", "") if params.get("since", "") in WINDOWS else "",
                   before=params.get("before", "")[:40], page=params.get("page", "")[:2000],
                   size=min(int(size), PAGE_SIZE) if size.isdigit() and int(size) > 0 else PAGE_SIZE)

    def pinned_now(self) -> dt.datetime:
        if self.before:
            try:
                return dt.datetime.fromisoformat(self.before)
            except ValueError:
                pass
        return now_utc()

    def api_request(self) -> rpb.ListFlowRunsRequest:
        now = self.pinned_now()
        req = rpb.ListFlowRunsRequest(page_size=self.size, page_token=self.page, deployment_id=self.deployment,
                                      flow_name=self.flow)
        if self.view == "upcoming":
            req.state_types.append(STATE_NUMBER["SCHEDULED"])
            req.expected_start_after.CopyFrom(timestamp(now))
            req.order_by = "expected_start_time"
        else:
            req.state_types.extend(STATE_NUMBER[s] for s in self.states)
            req.expected_start_before.CopyFrom(timestamp(now))
            req.order_by = "expected_start_time desc"
            if self.since:
                req.expected_start_after.CopyFrom(timestamp(now - dt.timedelta(seconds=WINDOWS[self.since])))
        return req

    def pairs(self, **changes) -> list[tuple[str, str]]:
        q = dataclasses.replace(self, **changes)
        out = [("view", q.view)] if q.view != "started" else []
        out += [("state", s) for s in q.states]
        out += [(k, getattr(q, k)) for k in ("deployment", "flow", "since", "before", "page") if getattr(q, k)]
        return out + ([("size", str(q.size))] if q.size != PAGE_SIZE else [])

    def url(self, path: str = "/runs", **changes) -> str:
        pairs = self.pairs(**changes)
        return f"{path}?{urlencode(pairs)}" if pairs else path


async def load_runs(request: Request, query: RunQuery) -> dict:
    """One page of runs and the names of their deployments."""
    call = caller(request)
    resp = await call(call.api.flow_runs.ListFlowRuns, query.api_request())
    names = await dash(request).names.of(call, [r.deployment_id for r in resp.flow_runs])
    return {"runs": list(resp.flow_runs), "next_page": resp.next_page_token, "names": names}


def runs_fingerprint(data: dict) -> tuple:
    return (data["next_page"], tuple((r.id, r.state.type, r.state.name, r.updated.seconds, r.updated.nanos)
                                     for r in data["runs"]))


async def runs_list(request: Request):
    query = RunQuery.parse(request.query_params)
    if not query.before and query.page:
        query = dataclasses.replace(query, page="")  # a token only means something with its pinned time
    # The next page's token is bound to this page's filter, "now" included: pin it once.
    pinned = dataclasses.replace(query, before=query.pinned_now().isoformat())
    data = await load_runs(request, pinned)
    next_url = pinned.url(page=data["next_page"]) if data["next_page"] else ""
    return page(request, "runs.html", "runs", query=query, states=STATES, windows=list(WINDOWS),
                next_url=next_url, live_url=query.url("/live/runs") if not query.page else "", **data)


# -- one run -------------------------------------------------------------------


def _level(params) -> int:
    try:
        return max(0, min(int(params.get("level", "0")), 50))
    except ValueError:
        return 0


@dataclasses.dataclass
class LogCursor:
    """Where a page's log lines end: the API page they came from and how many
    of its lines are shown. Written `SEEN:TOKEN` (in URLs and SSE event ids)."""

    token: str = ""
    seen: int = 0

    @classmethod
    def parse(cls, text: str | None) -> "LogCursor":
        seen, _, token = (text or "").partition(":")
        try:
            return cls(token[:2000], max(0, int(seen)))
        except ValueError:
            return cls()

    def __str__(self) -> str:
        return f"{self.seen}:{self.token}"


async def read_logs(call, run_id: str, cursor: LogCursor, level: int):
    """One page of log lines after `cursor`: (lines, new cursor, more pages follow)."""
    resp = await call(call.api.logs.ListLogs, lpb.ListLogsRequest(
        flow_run_id=run_id, page_size=LOG_PAGE, page_token=cursor.token, min_level=level))
    lines = list(resp.logs)[cursor.seen:]
    if resp.next_page_token:
        return lines, LogCursor(resp.next_page_token, 0), True
    return lines, LogCursor(cursor.token, cursor.seen + len(lines)), False


async def run_detail(request: Request):
    run_id = request.path_params["run_id"]
    call = caller(request)
    level = _level(request.query_params)
    run, (lines, cursor, more) = await asyncio.gather(
        call(call.api.flow_runs.GetFlowRun, rpb.GetFlowRunRequest(id=run_id)),
        read_logs(call, run_id, LogCursor(), level))
    names = await dash(request).names.of(call, [run.deployment_id])
    live = run.state.type not in render.TERMINAL
    return page(request, "run.html", "runs", run=run, names=names, logs=lines, level=level, cursor=cursor,
                more=more and not live, cancellable=run.state.type in CANCELLABLE, live=live,
                live_url=f"/live/run/{run.id}?{urlencode({'level': level, 'after': str(cursor)})}")


async def run_logs(request: Request):
    """More log lines of an ended run ("Show more"): the lines after `after`, and the next button."""
    run_id = request.path_params["run_id"]
    level = _level(request.query_params)
    lines, cursor, more = await read_logs(caller(request), run_id, LogCursor.parse(request.query_params.get("after")),
                                          level)
    ctx = context(request, "runs", run=None, run_id=run_id, logs=lines, cursor=cursor, more=more, level=level)
    return render.HTMLResponse(render.fragment("_log_lines.html", ctx))


async def cancel_run(request: Request):
    await checked_form(request)
    run_id = request.path_params["run_id"]
    call = caller(request)
    await call(call.api.flow_runs.CancelFlowRun, rpb.CancelFlowRunRequest(id=run_id, request_id=request_id()))
    return back(f"/runs/{run_id}")


def run_snapshot(request: Request, run_id: str):
    """The live topic of one run: its state and how many log lines it has
    (the log is followed to its last page once, then only that page is re-read)."""
    call = caller(request)
    cursor = {"token": "", "base": 0}  # base: lines before the page `token` starts

    async def fetch():
        run = await call(call.api.flow_runs.GetFlowRun, rpb.GetFlowRunRequest(id=run_id))
        while True:
            resp = await call(call.api.logs.ListLogs, lpb.ListLogsRequest(
                flow_run_id=run_id, page_size=LOG_PAGE, page_token=cursor["token"]))
            if not resp.next_page_token:
                break
            cursor["base"] += len(resp.logs)
            cursor["token"] = resp.next_page_token
        total = cursor["base"] + len(resp.logs)
        fingerprint = (run.updated.seconds, run.updated.nanos, run.state.type, run.state.name, total)
        return fingerprint, (run, total)

    return fetch
