"""The scheduler: creates auto-scheduled runs for deployments with active schedules."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.orm import Session

from flowdeck.server.models import DeploymentRow, FlowRunRow


def delete_future_runs(s: Session, deployment_id: str) -> int:
    """Delete the deployment's auto-scheduled runs that have not started."""
    return s.execute(
        delete(FlowRunRow).where(
            FlowRunRow.deployment_id == deployment_id,
            FlowRunRow.auto_scheduled.is_(True),
            FlowRunRow.state_type == "SCHEDULED",
        )
    ).rowcount


def reschedule_deployment(s: Session, row: DeploymentRow, now: dt.datetime) -> None:
    """Replace the deployment's future auto-scheduled runs (filled in by the scheduler issue)."""
    delete_future_runs(s, row.id)
