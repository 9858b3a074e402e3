"""Following a flow run to its end (`deployment run --watch`)."""
from __future__ import annotations

import time

from flowdeck.cli import output

POLL_SECONDS = 1.0


def watch(client, run) -> int:
    """Print each state the run passes through until it is final; 0 if it
    COMPLETED, else 1. Ctrl-C stops watching, not the run."""
    from flowdeck.core.states import COMPLETED, TERMINAL

    out = output.console()
    shown = None
    try:
        while True:
            label = output.state_text(run.state)
            if label.plain != shown:
                out.print(f"{output.stamp(run.state.timestamp) or output.stamp(run.updated)} "
                          f"flow run {run.name!r} is ", label, sep="")
                shown = label.plain
            if run.state.type in TERMINAL:
                break
            time.sleep(POLL_SECONDS)
            run = client.get_flow_run(run.id)
    except KeyboardInterrupt:
        out.print(f"Stopped watching; the run goes on: flowdeck flow-run inspect {run.id}")
        return 130
    detail = f": {run.state.message}" if run.state.message else ""
    out.print(f"Flow run {run.name!r} ended ", output.state_text(run.state), detail, sep="")
    return 0 if run.state.type == COMPLETED else 1
