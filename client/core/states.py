"""Flow run state types and the transitions the server allows."""
from __future__ import annotations

SCHEDULED = "SCHEDULED"
PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
CRASHED = "CRASHED"

ALL = (SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, CRASHED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, CRASHED})
DEFAULT_NAMES = {t: t.capitalize() for t in ALL}
# The name of a SCHEDULED run nobody picked up in time (its type stays SCHEDULED).
LATE_NAME = "Late"


def refusal(current: str, new: str) -> str | None:
    """Why moving from `current` to `new` is refused, or None when allowed."""
    if current in TERMINAL:
        return f"cannot move a flow run from {current} to {new}: {current} is terminal (use force)"
    if current == RUNNING and new in (SCHEDULED, PENDING):
        return f"cannot move a flow run from {current} back to {new}"
    return None
