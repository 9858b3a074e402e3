"""The typed models the client returns (users never see generated `_pb2`
classes); they are the core's models (`flowdeck.core.models`)."""
from __future__ import annotations

from flowdeck.core.models import (
    TERMINAL_STATES,
    ApiKey,
    Deployment,
    Flow,
    FlowData,
    FlowRun,
    FlowRunnerSettings,
    FlowRunSummary,
    Lease,
    LogRecord,
    State,
    StateType,
    StorageBlock,
    WorkQueue,
    WorkQueueFilter,
)

__all__ = [
    "ApiKey", "Deployment", "Flow", "FlowData", "FlowRun", "FlowRunSummary", "FlowRunnerSettings", "Lease",
    "LogRecord", "State", "StateType", "StorageBlock", "TERMINAL_STATES", "WorkQueue", "WorkQueueFilter",
]
