"""Deployments: the list (filter by flow and tag, search by name, Quick Run on
every row), one deployment (every property, the next ten schedule times,
pause/resume, recent runs) and the Quick Run form."""
from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlencode

from google.protobuf import field_mask_pb2
from starlette.requests import Request

from flowdeck.core.structs import struct_dict
from flowdeck.server.dashboard import forms
from flowdeck.server.dashboard.api import ApiError
from flowdeck.server.dashboard.security import checked_form
from flowdeck.server.dashboard.views.blocks import masked
from flowdeck.server.dashboard.views.common import back, caller, now_utc, page, request_id
from flowdeck.server.dashboard.views.runs import RunQuery, load_runs, timestamp
from flowdeck.v1 import common_pb2 as c
from flowdeck.v1 import deployment_service_pb2 as dpb
from flowdeck.v1 import flow_run_service_pb2 as rpb
from flowdeck.v1 import schedule_service_pb2 as spb
from flowdeck.v1 import storage_service_pb2 as stpb

PAGE_SIZE = 25


@dataclasses.dataclass
class DeploymentQuery:
    flow: str = ""
    tag: str = ""
    q: str = ""
    page: str = ""

    @classmethod
    def parse(cls, params) -> "DeploymentQuery":
        return cls(flow=params.get("flow", "")[:200], tag=params.get("tag", "")[:200], q=params.get("q", "")[:200],
                   page=params.get("page", "")[:2000])

    def url(self, path: str = "/deployments", **changes) -> str:
        q = dataclasses.replace(self, **changes)
        pairs = [(k, getattr(q, k)) for k in ("flow", "tag", "q", "page") if getattr(q, k)]
        return f"{path}?{urlencode(pairs)}" if pairs else path


async def load_deployments(request: Request, query: DeploymentQuery) -> dict:
    """One page of deployments, each with its last run (one call)."""
    call = caller(request)
    resp = await call(call.api.deployments.ListDeployments, dpb.ListDeploymentsRequest(
        flow_name=query.flow, tags=[query.tag] if query.tag else [], name_contains=query.q, page_size=PAGE_SIZE,
        page_token=query.page))
    return {"deployments": list(resp.deployments), "next_page": resp.next_page_token}


def deployments_fingerprint(data: dict) -> tuple:
    return (data["next_page"],
            tuple((d.id, d.updated.seconds, d.updated.nanos, d.next_run_time.seconds, d.last_run.id,
                   d.last_run.state.type, d.last_run.state.name) for d in data["deployments"]))


async def deployments_list(request: Request):
    query = DeploymentQuery.parse(request.query_params)
    data = await load_deployments(request, query)
    return page(request, "deployments.html", "deployments", query=query,
                next_url=query.url(page=data["next_page"]) if data["next_page"] else "",
                live_url=query.url("/live/deployments") if not query.page else "", **data)


# -- one deployment -------------------------------------------------------------


def parameter_schema(dep: c.Deployment) -> dict | None:
    """The deployment's parameter schema (None: the server does not check its runs' parameters)."""
    if not dep.HasField("parameter_schema"):
        return None
    return struct_dict(dep.parameter_schema) or None


async def _get(call, dep_id: str) -> c.Deployment:
    return await call(call.api.deployments.GetDeployment, dpb.GetDeploymentRequest(id=dep_id))


async def _next_times(call, dep: c.Deployment) -> list[str]:
    if not dep.HasField("schedule"):
        return []
    resp = await call(call.api.schedules.PreviewSchedule, spb.PreviewScheduleRequest(
        schedule=dep.schedule, start=timestamp(now_utc()), count=10))
    return list(resp.local_times)


async def _storage(call, block_id: str):
    if not block_id:
        return None
    try:
        return await call(call.api.storage.GetStorageBlock, stpb.GetStorageBlockRequest(id=block_id))
    except ApiError as e:
        return e


async def deployment_detail(request: Request):
    dep_id = request.path_params["dep_id"]
    call = caller(request)
    dep = await _get(call, dep_id)
    query = RunQuery(deployment=dep.id, size=10)
    times, storage, runs, upcoming = await asyncio.gather(
        _next_times(call, dep), _storage(call, dep.storage_block_id), load_runs(request, query),
        load_runs(request, RunQuery(view="upcoming", deployment=dep.id, size=5)))
    return page(request, "deployment.html", "deployments", dep=dep, times=times, storage=storage,
                storage_config=masked(storage.config) if isinstance(storage, c.StorageBlock) else {},
                schema=parameter_schema(dep), upcoming=upcoming["runs"], query=query,
                live_url=query.url("/live/runs"), runs_url=RunQuery(deployment=dep.id).url(), **runs)


async def set_schedule_active(request: Request):
    form = await checked_form(request)
    dep_id = request.path_params["dep_id"]
    call = caller(request)
    active = form.get("active") == "true"
    await call(call.api.deployments.UpdateDeployment, dpb.UpdateDeploymentRequest(
        deployment=c.Deployment(id=dep_id, is_schedule_active=active),
        update_mask=field_mask_pb2.FieldMask(paths=["is_schedule_active"]), request_id=request_id()))
    return back(f"/deployments/{dep_id}")


# -- Quick Run ---------------------------------------------------------------------


def _form_page(request: Request, dep, fields, errors: list[str], status_code: int = 200):
    return page(request, "quick_run.html", "deployments", status_code=status_code, dep=dep, fields=fields,
                errors=errors, schema=parameter_schema(dep), raw=forms.RAW)


async def quick_run_form(request: Request):
    dep = await _get(caller(request), request.path_params["dep_id"])
    defaults = struct_dict(dep.parameters)
    return _form_page(request, dep, forms.fields_for(parameter_schema(dep), defaults), [])


async def quick_run(request: Request):
    form = await checked_form(request)
    call = caller(request)
    dep = await _get(call, request.path_params["dep_id"])
    defaults = struct_dict(dep.parameters)
    params, fields = forms.read(forms.fields_for(parameter_schema(dep), defaults), form)
    if any(f.error for f in fields):
        return _form_page(request, dep, fields, [], status_code=422)
    req = rpb.CreateFlowRunFromDeploymentRequest(deployment_id=dep.id, request_id=request_id())
    req.parameters.update(params)
    try:
        run = await call(call.api.flow_runs.CreateFlowRunFromDeployment, req)
    except ApiError as e:
        if e.http_status not in (400, 409):
            raise
        loose = forms.place_errors(fields, e.violations)
        if not e.violations or loose:
            loose = [e.message]  # the whole refusal, when it names no field of the form
        return _form_page(request, dep, fields, loose, status_code=422)
    return back(f"/runs/{run.id}")
