"""Waiting for something the test can only see by asking (a run's state, a log
line, a process gone). The timeouts are bounds for a hang, generous on
purpose: a loaded machine makes a test slower, never wrong."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str | Callable[[], str], timeout: float = 60,
               every: float = 0.05) -> T:
    """Ask `check` until it answers something truthy, and return that; after
    `timeout` s fail with `what` (a callable is asked only then)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what() if callable(what) else what}")
        time.sleep(every)


def wait_for_state(client, run_id: str, states: str | set[str], timeout: float = 60):
    """Until the flow run is in `states` (a state type or a set of them); returns it."""
    wanted = {states} if isinstance(states, str) else set(states)
    seen = []

    def reached():
        seen[:] = [client.get_flow_run(run_id)]
        return seen[0] if seen[0].state.type in wanted else None

    return wait_until(reached, lambda: f"run {run_id} to be {'/'.join(sorted(wanted))} (it is "
                                       f"{seen[0].state.type}: {seen[0].state.message})", timeout)
