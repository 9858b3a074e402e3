"""A flow process that outlives its agent stops itself once its lease is gone.

A subprocess dies with its agent, but a container does not: after a kill -9 of
the agent the server marks the run CRASHED when the lease expires, and the
flow inside would run on unsupervised, its reports refused for the stale
fencing token. With FLOWDECK_LEASE_CHECK_SECONDS set (the docker runner sets
it to the lease TTL) `flowdeck.agent.run_flow` asks the server that often
whether the run is still held under its token, and exits with LOST_EXIT when
not. The orphan sweep (`flowdeck.agent.docker_sweep`) uses the same test.
"""
from __future__ import annotations

import os
import sys
import threading

LOST_EXIT = 3
CHECK_ENV = "FLOWDECK_LEASE_CHECK_SECONDS"


def lease_gone(run, token: int) -> str | None:
    """Why the run is no longer held under `token` (None while it is)."""
    if run is None:
        return "the run was deleted"
    if run.state.is_terminal:
        return f"the run is {run.state.type}"
    if run.lease is None:
        return f"the run ({run.state.type}) is held by no agent"
    if run.lease.fencing_token != token:
        return f"the run is held under another lease (fencing token {run.lease.fencing_token}, not {token})"
    return None


def _lost_to_others(run, token: int) -> str | None:
    # COMPLETED and FAILED are what the flow process itself reports: its own
    # ending, not a lost lease (a report forced over it is refused anyway).
    if run is not None and run.state.type in ("COMPLETED", "FAILED"):
        return None
    return lease_gone(run, token)


def start(client, run_id: str, token: int, interval: float) -> threading.Thread:
    """Check every `interval` seconds; exit the process when the lease is gone."""
    from flowdeck.exceptions import FlowdeckError, NotFoundError

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            try:
                run = client.get_flow_run(run_id)
            except NotFoundError:
                run = None
            except FlowdeckError:
                continue  # the server is away: the lease's TTL decides, not this check
            why = _lost_to_others(run, token)
            if why:
                # The real stderr: the flow's own output is being captured.
                print(f"flowdeck: flow run {run_id}: the lease is gone ({why}); stopping the flow",
                      file=sys.__stderr__, flush=True)
                os._exit(LOST_EXIT)

    thread = threading.Thread(target=watch, name="lease-watch", daemon=True)
    thread.start()
    return thread


def interval_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get(CHECK_ENV) or 0))
    except ValueError:
        return 0.0
