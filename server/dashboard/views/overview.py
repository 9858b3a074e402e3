"""Overview: runs by state over the last 24 hours, late runs, recent failures,
and the agents holding runs."""
from __future__ import annotations

import asyncio
import datetime as dt
import time

from starlette.requests import Request

from flowdeck.core.states import LATE_NAME
from flowdeck.server.dashboard import render
from flowdeck.server.dashboard.security import session_of
from flowdeck.server.dashboard.views.common import caller, context, dash, now_utc, page
from flowdeck.server.dashboard.views.runs import STATE_NUMBER, STATES, timestamp
from flowdeck.v1 import flow_run_service_pb2 as rpb

COUNTS_TTL = 15.0  # the counts are kept this long per caller, loaded after the page
ACTIVE = [STATE_NUMBER["PENDING"], STATE_NUMBER["RUNNING"]]


async def _count(call, now: dt.datetime, **fields) -> int:
    """How many runs of the last 24 hours match: the total_size of a page of one."""
    req = rpb.ListFlowRunsRequest(page_size=1, **fields)
    req.expected_start_after.CopyFrom(timestamp(now - dt.timedelta(days=1)))
    req.expected_start_before.CopyFrom(timestamp(now))
    return (await call(call.api.flow_runs.ListFlowRuns, req)).total_size


async def _count_by_state(call, now: dt.datetime) -> dict[str, int]:
    """Runs by state type, Late ones apart from the other SCHEDULED: one
    count each, side by side, each along the server's (state, time) index."""
    *by_type, late = await asyncio.gather(*(_count(call, now, state_types=[STATE_NUMBER[s]]) for s in STATES),
                                          _count(call, now, state_names=[LATE_NAME]))
    counts = dict(zip(STATES, by_type))
    counts["SCHEDULED"] -= late
    counts["LATE"] = late
    return counts


async def _list(call, **fields) -> list:
    before = fields.pop("before", None)
    req = rpb.ListFlowRunsRequest(**fields)
    if before is not None:
        req.expected_start_before.CopyFrom(timestamp(before))
    return list((await call(call.api.flow_runs.ListFlowRuns, req)).flow_runs)


def agents_from(runs) -> list[dict]:
    """Agents as the API shows them: by the leases of the runs they hold."""
    agents: dict[str, dict] = {}
    for r in runs:
        if not r.HasField("lease"):
            continue
        a = agents.setdefault(r.lease.agent_id, {"name": r.lease.agent_name, "id": r.lease.agent_id,
                                                 "held": 0, "running": 0, "expires": None})
        a["held"] += 1
        a["running"] += r.state.type == STATE_NUMBER["RUNNING"]
        exp = r.lease.expire_time
        if a["expires"] is None or (exp.seconds, exp.nanos) > (a["expires"].seconds, a["expires"].nanos):
            a["expires"] = exp
    return sorted(agents.values(), key=lambda a: a["name"])


async def overview(request: Request):
    call = caller(request)
    now = now_utc()
    late, failures, active = await asyncio.gather(
        _list(call, state_types=[STATE_NUMBER["SCHEDULED"]], before=now, page_size=10,
              order_by="expected_start_time"),
        _list(call, state_types=[STATE_NUMBER["FAILED"], STATE_NUMBER["CRASHED"]], before=now, page_size=10,
              order_by="expected_start_time desc"),
        _list(call, state_types=ACTIVE, page_size=1000),
    )
    names = await dash(request).names.of(call, [r.deployment_id for r in late + failures])
    late = [r for r in late if r.state.name.lower() == "late"]
    return page(request, "overview.html", "overview", late=late, failures=failures, agents=agents_from(active),
                names=names)


async def overview_counts(request: Request):
    """Runs by state over the last 24 hours (htmx loads it into the overview)."""
    d, key = dash(request), session_of(request).key_id
    cached = d.counts.get(key)
    if cached is None or cached[0] < time.monotonic():
        now = now_utc()
        counts = await _count_by_state(caller(request), now)
        cached = d.counts[key] = (time.monotonic() + COUNTS_TTL, counts, now)
    _, counts, now = cached
    ctx = context(request, "overview", counts=counts, total=sum(counts.values()), counted_at=now,
                  count_states=["LATE", *STATES])
    return render.HTMLResponse(render.fragment("_counts.html", ctx))
