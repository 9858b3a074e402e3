"""The scope table: which API keys may call each RPC.

SCOPE_FOR names every RPC the server serves and what it needs; a method
missing here is refused when auth is on (and tests/test_auth.py fails).
"""
from __future__ import annotations

from grpc_health.v1 import health as _health
from grpc_reflection.v1alpha import reflection as _reflection

from flowdeck.core.errors import PermissionDeniedError
from flowdeck.server import api_keys

# What an RPC needs. Every scope that may call it:
OPEN = "open"  # no key needed (health checking)
READ = "read"  # any valid key
WRITE = "write"
REPORT = "report"  # state and log reports: write, or an agent
LEASE = "lease"  # the agent lease stream
ADMIN = "admin"
ALLOWED = {
    OPEN: frozenset(api_keys.SCOPES),
    READ: frozenset(api_keys.SCOPES),
    WRITE: frozenset({"write", "admin"}),
    REPORT: frozenset({"write", "agent", "admin"}),
    LEASE: frozenset({"agent"}),
    ADMIN: frozenset({"admin"}),
}
_F = "/flowdeck.v1."

SCOPE_FOR: dict[str, str] = {
    f"/{_health.SERVICE_NAME}/Check": OPEN,
    f"/{_health.SERVICE_NAME}/Watch": OPEN,
    f"/{_health.SERVICE_NAME}/List": OPEN,
    f"/{_reflection.SERVICE_NAME}/ServerReflectionInfo": READ,
    # FlowService
    _F + "FlowService/CreateFlow": WRITE,
    _F + "FlowService/GetFlow": READ,
    _F + "FlowService/GetFlowByName": READ,
    _F + "FlowService/ListFlows": READ,
    _F + "FlowService/DeleteFlow": WRITE,
    # DeploymentService
    _F + "DeploymentService/CreateDeployment": WRITE,
    _F + "DeploymentService/GetDeployment": READ,
    _F + "DeploymentService/GetDeploymentByName": READ,
    _F + "DeploymentService/ListDeployments": READ,
    _F + "DeploymentService/UpdateDeployment": WRITE,
    _F + "DeploymentService/DeleteDeployment": WRITE,
    # FlowRunService
    _F + "FlowRunService/CreateFlowRun": WRITE,
    _F + "FlowRunService/CreateFlowRunFromDeployment": WRITE,
    _F + "FlowRunService/GetFlowRun": READ,
    _F + "FlowRunService/ListFlowRuns": READ,
    _F + "FlowRunService/SetFlowRunState": REPORT,
    _F + "FlowRunService/CancelFlowRun": WRITE,
    _F + "FlowRunService/DeleteFlowRun": WRITE,
    # LogService
    _F + "LogService/CreateLogs": REPORT,
    _F + "LogService/ListLogs": READ,
    # ScheduleService
    _F + "ScheduleService/PreviewSchedule": READ,
    _F + "ScheduleService/ListUpcomingRuns": READ,
    # WorkQueueService
    _F + "WorkQueueService/CreateWorkQueue": WRITE,
    _F + "WorkQueueService/GetWorkQueue": READ,
    _F + "WorkQueueService/GetWorkQueueByName": READ,
    _F + "WorkQueueService/ListWorkQueues": READ,
    _F + "WorkQueueService/UpdateWorkQueue": WRITE,
    _F + "WorkQueueService/DeleteWorkQueue": WRITE,
    _F + "WorkQueueService/PreviewWorkQueue": READ,
    # AgentService
    _F + "AgentService/Lease": LEASE,
    # FlowDataService
    _F + "FlowDataService/UploadFlowData": WRITE,
    _F + "FlowDataService/DownloadFlowData": READ,
    # StorageService
    _F + "StorageService/CreateStorageBlock": WRITE,
    _F + "StorageService/GetStorageBlock": READ,
    _F + "StorageService/ListStorageBlocks": READ,
    _F + "StorageService/DeleteStorageBlock": WRITE,
    _F + "StorageService/SetDefaultStorageBlock": WRITE,
    _F + "StorageService/GetDefaultStorageBlock": READ,
    # ApiKeyService
    _F + "ApiKeyService/GetCurrentApiKey": READ,  # any key may ask who it is
    _F + "ApiKeyService/CreateApiKey": ADMIN,
    _F + "ApiKeyService/ListApiKeys": ADMIN,
    _F + "ApiKeyService/RevokeApiKey": ADMIN,
}
MUTATING = (WRITE, REPORT, LEASE, ADMIN)


def scopes_allowed(method: str) -> frozenset[str] | None:
    """The key scopes that may call `method`; None when the table does not know it."""
    need = SCOPE_FOR.get(method)
    return None if need is None else ALLOWED[need]


def needed_text(need: str) -> str:
    """The scope(s) to name in a PERMISSION_DENIED: the smallest that will do."""
    return {READ: "read", WRITE: "write", REPORT: "write or agent", LEASE: "agent", ADMIN: "admin"}.get(need, need)


# Agent keys report only for runs the agent holds: checked on each request.

def _agent_set_state(request) -> None:
    if request.fencing_token <= 0 or request.force:
        raise PermissionDeniedError(
            "an API key with scope 'agent' reports states only for runs it holds: "
            "SetFlowRunState needs the lease's fencing_token and no force (or a key with scope 'write')",
            reason="SCOPE_REQUIRED", scope="write",
        )


AGENT_CHECKS = {_F + "FlowRunService/SetFlowRunState": _agent_set_state}
