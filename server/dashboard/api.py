"""The dashboard's one way to flowdeck's data: the public flowdeck.v1 API.

One grpc.aio channel to the server's own listener and the generated stubs; the
caller's API key rides along as `authorization` metadata. So auth, scopes,
limits, validation and errors are exactly the API's: a refusal comes back as
an ApiError carrying the gRPC code, the message and the field violations from
the standard `google.rpc.Status` details.
"""
from __future__ import annotations

import dataclasses

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from flowdeck.v1 import (
    api_key_service_pb2_grpc,
    deployment_service_pb2_grpc,
    flow_run_service_pb2_grpc,
    log_service_pb2_grpc,
    schedule_service_pb2_grpc,
    storage_service_pb2_grpc,
    work_queue_service_pb2_grpc,
)

TIMEOUT = 15.0

# The HTTP status a page answers with when the API refuses.
HTTP_FOR = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


@dataclasses.dataclass
class ApiError(Exception):
    """A refusal of the API: its code, message and field violations (path -> why)."""

    code: grpc.StatusCode
    message: str
    violations: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    @property
    def http_status(self) -> int:
        return HTTP_FOR.get(self.code, 502)

    @classmethod
    def from_rpc(cls, err: grpc.aio.AioRpcError) -> "ApiError":
        return cls(err.code(), err.details() or err.code().name, field_violations(err))


def field_violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """google.rpc.BadRequest field violations from `grpc-status-details-bin`, if any."""
    try:
        status = rpc_status.from_call(err)
    except ValueError:  # details that contradict the status: trust the status
        return []
    out: list[tuple[str, str]] = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out


class Api:
    """The stubs over one channel. Made on the event loop that uses it."""

    def __init__(self, target: str):
        self.channel = grpc.aio.insecure_channel(target)
        ch = self.channel
        self.deployments = deployment_service_pb2_grpc.DeploymentServiceStub(ch)
        self.flow_runs = flow_run_service_pb2_grpc.FlowRunServiceStub(ch)
        self.logs = log_service_pb2_grpc.LogServiceStub(ch)
        self.schedules = schedule_service_pb2_grpc.ScheduleServiceStub(ch)
        self.work_queues = work_queue_service_pb2_grpc.WorkQueueServiceStub(ch)
        self.storage = storage_service_pb2_grpc.StorageServiceStub(ch)
        self.api_keys = api_key_service_pb2_grpc.ApiKeyServiceStub(ch)

    async def close(self) -> None:
        await self.channel.close()


class Caller:
    """The API as one caller sees it: `await caller(stub.Method, request)`."""

    def __init__(self, api: Api, key: str | None):
        self.api = api
        self._metadata = (("authorization", f"Bearer {key}"),) if key else None

    async def __call__(self, method, request, timeout: float = TIMEOUT):
        try:
            return await method(request, metadata=self._metadata, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise ApiError.from_rpc(err) from None
