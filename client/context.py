"""The run context: which flow run the current code belongs to.

A context is entered for the duration of a flow run (local call, `deployment
execute` or an agent) and carries what `get_run_logger()` and print capture
need. It is a context variable, so nested flows and threads started with
`contextvars.copy_context()` see the right run.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import TYPE_CHECKING, Any, Iterator

from flowdeck.exceptions import FlowdeckError

if TYPE_CHECKING:  # pragma: no cover
    from flowdeck.flows import Flow
    from flowdeck.models import FlowRun
    from flowdeck.run_logging import LogShipper


class MissingContextError(FlowdeckError, RuntimeError):
    """Something that needs a running flow was used outside of one."""

    code = "FAILED_PRECONDITION"


@dataclasses.dataclass
class FlowRunContext:
    flow: "Flow"
    flow_run: "FlowRun"
    client: Any
    shipper: "LogShipper"
    log_prints: bool = True
    # Partial lines written to stdout/stderr, keyed by stream name.
    partial: dict[str, str] = dataclasses.field(default_factory=dict)


_current: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar("flowdeck_run", default=None)


def current() -> FlowRunContext | None:
    """The context of the flow run this code is part of, or None."""
    return _current.get()


def get_run_context() -> FlowRunContext:
    ctx = _current.get()
    if ctx is None:
        raise MissingContextError(
            "there is no active flow run: get_run_logger() and get_run_context() "
            "work only inside a function decorated with @flow while it runs"
        )
    return ctx


@contextlib.contextmanager
def enter(ctx: FlowRunContext) -> Iterator[FlowRunContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
