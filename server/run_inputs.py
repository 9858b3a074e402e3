"""What creating a run takes and the row values it makes: shared by
flow_runs (one run at a time) and the scheduler (runs in bulk)."""
from __future__ import annotations

import dataclasses
import datetime as dt

from flowdeck.core import states
from flowdeck.server.models import new_id
from flowdeck.server.names import readable_name


@dataclasses.dataclass
class StateInput:
    type: str
    name: str = ""
    message: str = ""

    def resolved_name(self) -> str:
        return self.name or states.DEFAULT_NAMES[self.type]


@dataclasses.dataclass
class FlowRunInput:
    flow_id: str = ""
    flow_name: str = ""
    deployment_id: str | None = None
    name: str = ""
    parameters: dict = dataclasses.field(default_factory=dict)
    tags: list = dataclasses.field(default_factory=list)
    state: StateInput | None = None
    expected_start_time: dt.datetime | None = None
    idempotency_key: str | None = None
    flow_runner_type: str = ""
    flow_runner_config: dict = dataclasses.field(default_factory=dict)
    auto_scheduled: bool = False
    # The creating call's trace context (flowdeck.server.tracing), when tracing.
    trace_context: dict | None = None


def row_values(inp: FlowRunInput, flow_id: str, now: dt.datetime) -> dict:
    """The columns of the new run's row (the lease columns stay NULL)."""
    state = inp.state or StateInput(states.SCHEDULED)
    expected = inp.expected_start_time or now
    running = state.type == states.RUNNING
    return dict(
        id=new_id(),
        name=inp.name or readable_name(),
        flow_id=flow_id,
        deployment_id=inp.deployment_id,
        parameters=inp.parameters,
        tags=inp.tags,
        state_type=state.type,
        state_name=state.resolved_name(),
        state_message=state.message,
        state_timestamp=now,
        expected_start_time=expected,
        start_time=now if running else None,
        end_time=None,
        total_run_time=0.0,
        idempotency_key=inp.idempotency_key or None,
        flow_runner_type=inp.flow_runner_type,
        flow_runner_config=inp.flow_runner_config,
        auto_scheduled=inp.auto_scheduled,
        fencing_token=0,
        cancel_requested=False,
        trace_context=inp.trace_context or None,
        created=now,
        updated=now,
    )
