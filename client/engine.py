"""Running flows and tracking them on the server.

Two entry points:

* `execute_flow_run(client, flow_run, flow, fencing_token=...)` runs an
  existing flow run (an agent's fresh process, `deployment execute`) and
  returns its final state; a failing flow never raises here.
* `run_flow_call(flow, args, kwargs)` is what calling a flow object does: it
  creates a RUNNING flow run, runs the function and returns its value or
  re-raises its exception after the run is marked FAILED.

While the function runs, a run context is active (`get_run_logger()` works),
prints are captured into the run's logs (unless `log_prints=False`) and log
records are shipped in batches; the last batch is sent before the terminal
state is set.
"""
from __future__ import annotations

import os
import threading
import traceback
from typing import Any

from flowdeck import context, run_logging
from flowdeck.flows import Flow, ParameterValidationError

MAX_STATE_MESSAGE = 2000
_HERE = os.path.dirname(os.path.abspath(__file__))


def _state_message(error: BaseException) -> str:
    text = str(error)
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if len(message) > MAX_STATE_MESSAGE:
        message = message[:MAX_STATE_MESSAGE - 3] + "..."
    return message


def _user_traceback(error: BaseException) -> str:
    """The traceback without flowdeck's own frames at the top."""
    tb = error.__traceback__
    while tb is not None and os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) == _HERE:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb)).rstrip()


def jsonable_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """Parameter values as JSON for the run record; what cannot be turned
    into JSON is recorded by its repr."""
    from pydantic_core import to_jsonable_python

    out = {}
    for k, v in values.items():
        try:
            out[k] = to_jsonable_python(v)
        except Exception:  # noqa: BLE001
            out[k] = repr(v)
    return out


class _Outcome:
    def __init__(self):
        self.result: Any = None
        self.error: BaseException | None = None
        self.state = None


def _run(client, flow_run, flow: Flow, values: dict[str, Any], fencing_token: int,
         *, raise_tracking_errors: bool = True) -> _Outcome:
    """Run the function inside a run context and report the terminal state."""
    outcome = _Outcome()
    shipper = run_logging.LogShipper(client, flow_run.id).start()
    ctx = context.FlowRunContext(flow=flow, flow_run=flow_run, client=client, shipper=shipper,
                                 log_prints=flow.log_prints)
    logger = run_logging.logger_for(ctx)
    capture = flow.log_prints
    try:
        if capture:
            run_logging.start_capture()
        try:
            with context.enter(ctx):
                logger.info("Beginning flow run %r for flow %r", flow_run.name, flow.name)
                try:
                    outcome.result = flow.call_with(values)
                except BaseException as e:  # noqa: BLE001 - reported, then re-raised by callers
                    outcome.error = e
                    logger.error("Encountered exception during execution:\n%s", _user_traceback(e))
                run_logging.flush_partial(ctx)
        finally:
            if capture:
                run_logging.stop_capture()
        if outcome.error is None:
            state, message = "COMPLETED", ""
        elif isinstance(outcome.error, KeyboardInterrupt):
            state, message = "CRASHED", _state_message(outcome.error)
        else:
            state, message = "FAILED", _state_message(outcome.error)
        logger.info("Finished in state %s%s", state, f" ({message})" if message else "")
    finally:
        shipper.close()
    try:
        run = client.set_flow_run_state(flow_run.id, state, message=message, fencing_token=fencing_token)
        outcome.state = run.state
    except Exception as e:  # noqa: BLE001
        if raise_tracking_errors:
            raise
        run_logging.raw_stderr().write(f"flowdeck: could not report the final state of flow run "
                                       f"{flow_run.name!r}: {e}\n")
        from flowdeck.models import State

        outcome.state = State(type=state, name=state.capitalize(), message=message)
    return outcome


def execute_flow_run(client, flow_run, flow: Flow, *, fencing_token: int = 0, set_running: bool = True):
    """Run an existing flow run to its end and return its final state
    (`flowdeck.models.State`).

    Validates the run's parameters against the flow's signature (a bad value
    ends the run FAILED), sets RUNNING (unless `set_running=False`, for a run
    created RUNNING), runs the flow with logs captured and shipped, and sets
    COMPLETED or FAILED. Every state change carries `fencing_token`.

    A failing flow does not raise: its FAILED state is returned. Errors
    talking to the server (e.g. a stale fencing token) do raise
    `flowdeck.exceptions.FlowdeckError`; a KeyboardInterrupt in the flow marks
    the run CRASHED and is re-raised.
    """
    try:
        values = flow.validate_parameters(dict(flow_run.parameters or {}))
    except ParameterValidationError as e:
        message = f"ParameterValidationError: {e.message}"
        try:
            from flowdeck.models import LogRecord

            import datetime as dt

            client.create_logs([LogRecord(flow_run_id=flow_run.id, timestamp=dt.datetime.now(dt.timezone.utc),
                                          level=40, logger_name=run_logging.RUN_LOGGER_NAME, message=message)])
        except Exception:  # noqa: BLE001 - the state below carries the message anyway
            pass
        run = client.set_flow_run_state(flow_run.id, "FAILED", message=message, fencing_token=fencing_token)
        return run.state
    if set_running:
        flow_run = client.set_flow_run_state(flow_run.id, "RUNNING", fencing_token=fencing_token)
    outcome = _run(client, flow_run, flow, values, fencing_token)
    if isinstance(outcome.error, KeyboardInterrupt):
        raise outcome.error
    return outcome.state


# -- calling a flow directly ---------------------------------------------------------

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def default_client():
    """The client flow calls use: FLOWDECK_API_URL, else the embedded default
    (one per process and address)."""
    from flowdeck.client import get_client

    key = os.environ.get("FLOWDECK_API_URL") or "<embedded>"
    with _clients_lock:
        if key not in _clients:
            _clients[key] = get_client()
        return _clients[key]


def run_flow_call(flow: Flow, args: tuple, kwargs: dict) -> Any:
    values = flow.validate_parameters(flow.bind(args, kwargs))
    parent = context.current()
    client = parent.client if parent is not None else default_client()
    flow_run = client.create_flow_run(flow_name=flow.name, parameters=jsonable_parameters(values),
                                      state="RUNNING")
    outcome = _run(client, flow_run, flow, values, 0, raise_tracking_errors=False)
    if outcome.error is not None:
        raise outcome.error.with_traceback(outcome.error.__traceback__)
    return outcome.result
