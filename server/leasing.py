"""Leases: who holds a run, as SQL on a session (the dispatcher calls these
on the database threads; nothing here knows about streams or gRPC).

Leasing is one atomic conditional UPDATE: candidate ids are picked (with
`FOR UPDATE SKIP LOCKED` on Postgres, so racing replicas do not queue behind
each other; SQLite serializes writers), then
    UPDATE flow_runs SET state PENDING, lease..., fencing_token = fencing_token + 1
    WHERE id IN (candidates) AND state_type = 'SCHEDULED' RETURNING ...
so a run has at most one holder. Queue concurrency limits are enforced under a
row lock on the queue (Postgres) or the write lock (SQLite).

Leases expire: a PENDING run whose lease lapses goes back to SCHEDULED, a
RUNNING one becomes CRASHED, a run whose cancellation was asked becomes
CANCELLED. A closed stream's un-started (PENDING) runs are released at once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import NamedTuple

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from flowdeck.core import states
from flowdeck.server import storage_blocks, work_queues
from flowdeck.server.flow_runs import apply_state
from flowdeck.server.models import DeploymentRow, FlowRunRow, FlowRunStateRow, WorkQueueRow, new_id, utcnow
from flowdeck.server.run_inputs import StateInput
from flowdeck.server.views import DEPLOYMENTS_STORED, FLOW_RUNS, DeploymentView, FlowRunView

ACTIVE = (states.PENDING, states.RUNNING)
CHUNK = 500  # ids per IN (...) list
# Expiry acts on at most this many lapsed leases per transaction.
EXPIRE_BATCH = 500


def _chunks(items: list, n: int = CHUNK):
    for i in range(0, len(items), n):
        yield items[i:i + n]


class Lease(NamedTuple):
    """A run just leased to an agent, with everything the agent needs to run it."""

    run: FlowRunView
    deployment: DeploymentView | None
    # (block type, config with secrets in clear) when the flow code needs a
    # storage block. Never log it.
    storage: tuple[str, dict] | None
    runner_type: str
    runner_config: dict
    server_time: dt.datetime
    # The run's trace context (flowdeck.server.tracing); empty when not tracing.
    trace_context: dict | None = None

    @property
    def lease_id(self) -> str:
        return self.run.lease_id


@dataclasses.dataclass
class ClaimResult:
    leased: list[Lease]
    dry: set[str]  # queues with nothing more to give in this pass


def _leases(s: Session, run_ids: list[str], now: dt.datetime, traced: bool) -> list[Lease]:
    """What the agent gets for runs just leased, in `run_ids` order."""
    runs: dict[str, FlowRunView] = {}
    traces: dict[str, dict] = {}
    for chunk in _chunks(run_ids):
        for row in s.execute(FLOW_RUNS.where(FlowRunRow.id.in_(chunk))):
            runs[row.id] = FlowRunView(*row)
        if traced:
            traces.update(s.execute(select(FlowRunRow.id, FlowRunRow.trace_context).where(
                FlowRunRow.id.in_(chunk), FlowRunRow.trace_context.is_not(None))).all())
    deps: dict[str, DeploymentView] = {}
    for chunk in _chunks(list({r.deployment_id for r in runs.values() if r.deployment_id})):
        for row in s.execute(DEPLOYMENTS_STORED.where(DeploymentRow.id.in_(chunk))):
            deps[row.id] = DeploymentView(*row)
    storage = storage_blocks.lease_configs(s, {
        d.storage_block_id for d in deps.values() if d.flow_data_encoding == "blockstorage" and d.storage_block_id})
    out = []
    for run_id in run_ids:
        run = runs[run_id]
        dep = deps.get(run.deployment_id or "")
        if run.flow_runner_type:
            runner_type, runner_config = run.flow_runner_type, run.flow_runner_config
        elif dep is not None:
            runner_type, runner_config = dep.flow_runner_type or "universal", dep.flow_runner_config
        else:
            runner_type, runner_config = "universal", {}
        out.append(Lease(run=run, deployment=dep, storage=storage.get(dep.storage_block_id) if dep else None,
                         runner_type=runner_type, runner_config=runner_config or {}, server_time=now,
                         trace_context=traces.get(run_id)))
    return out


def claim(s: Session, *, queue_ids: list[str], agent_id: str, agent_name: str, want: int,
          ttl: float, now: dt.datetime | None = None, traced: bool = False) -> ClaimResult:
    """Lease up to `want` due runs from the queues, in order, to one agent
    (`traced`: with the runs' trace contexts)."""
    now = now or utcnow()
    pg = s.bind.dialect.name == "postgresql"
    expires = now + dt.timedelta(seconds=ttl)
    got: list[str] = []
    dry: set[str] = set()
    for qid in queue_ids:
        if want <= 0:
            break
        q = s.get(WorkQueueRow, qid)
        if q is None or q.is_paused:
            dry.add(qid)
            continue
        n = want
        if q.concurrency_limit is not None:
            if pg:
                # Claims on a limited queue are serialized by this row lock, so
                # the count below cannot be raced past the limit.
                s.execute(select(WorkQueueRow.id).where(WorkQueueRow.id == qid).with_for_update())
            room = q.concurrency_limit - work_queues.active_count(s, qid)
            if room <= 0:
                dry.add(qid)
                continue
            n = min(n, room)
        cand = (
            select(FlowRunRow.id)
            .where(
                FlowRunRow.state_type == states.SCHEDULED,
                FlowRunRow.expected_start_time <= now,
                work_queues.matches(q, s.bind.dialect.name),
            )
            .order_by(FlowRunRow.expected_start_time, FlowRunRow.id)
            .limit(n)
        )
        if pg:
            cand = cand.with_for_update(skip_locked=True, of=FlowRunRow)
        ids = list(s.scalars(cand))
        if len(ids) < n or n < want:
            dry.add(qid)
        if not ids:
            continue
        lease_ids = {rid: new_id() for rid in ids}
        message = f"leased by agent {agent_name}"
        stmt = (
            update(FlowRunRow)
            .where(FlowRunRow.id.in_(ids), FlowRunRow.state_type == states.SCHEDULED)
            .values(
                state_type=states.PENDING,
                state_name="Pending",
                state_message=message,
                state_timestamp=now,
                updated=now,
                lease_id=case(lease_ids, value=FlowRunRow.id),
                agent_id=agent_id,
                agent_name=agent_name,
                fencing_token=FlowRunRow.fencing_token + 1,
                lease_expires=expires,
                work_queue_id=qid,
                cancel_requested=False,
            )
            .returning(FlowRunRow.id)
            .execution_options(synchronize_session=False)
        )
        leased = list(s.scalars(stmt))
        if leased:
            s.execute(insert(FlowRunStateRow), [
                dict(flow_run_id=rid, type=states.PENDING, name="Pending", message=message, timestamp=now)
                for rid in leased
            ])
        got.extend(leased)
        want -= len(leased)
    return ClaimResult(_leases(s, got, now, traced) if got else [], dry)


def _release_rows(s: Session, rows: list[FlowRunRow], why: str, now: dt.datetime) -> int:
    n = 0
    for row in rows:
        if row.state_type != states.PENDING:
            continue
        if row.cancel_requested:
            apply_state(s, row, StateInput(states.CANCELLED, "Cancelled", "cancelled before it started"), now)
        else:
            apply_state(s, row, StateInput(states.SCHEDULED, "Scheduled", why), now)
        n += 1
    return n


def _locked(s: Session, stmt):
    if s.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(s.scalars(stmt))


def release_leases(s: Session, lease_ids: list[str], why: str, now: dt.datetime | None = None) -> int:
    """Give PENDING runs held under these leases back to their queues."""
    now = now or utcnow()
    n = 0
    for chunk in _chunks(lease_ids):
        rows = _locked(s, select(FlowRunRow).where(
            FlowRunRow.lease_id.in_(chunk), FlowRunRow.state_type == states.PENDING))
        n += _release_rows(s, rows, why, now)
    return n


def release_one(s: Session, agent_id: str, lease_id: str, now: dt.datetime | None = None) -> str | None:
    """An agent gives back a leased run it has not started; returns the run id
    (None when it holds no such un-started lease: releasing twice is harmless)."""
    now = now or utcnow()
    rows = _locked(s, select(FlowRunRow).where(
        FlowRunRow.lease_id == lease_id, FlowRunRow.agent_id == agent_id,
        FlowRunRow.state_type == states.PENDING))
    if not rows:
        return None
    _release_rows(s, rows, "released by its agent before it started", now)
    return rows[0].id


def agent_connected(s: Session, agent_id: str, ttl: float, now: dt.datetime | None = None) -> dict[str, str]:
    """An agent (re)connects: its un-started runs from earlier streams are
    released; the runs it is running stay its own (leases extended). Returns
    run id -> lease id of what it still holds."""
    now = now or utcnow()
    rows = _locked(s, select(FlowRunRow).where(
        FlowRunRow.agent_id == agent_id, FlowRunRow.state_type.in_(ACTIVE),
        FlowRunRow.lease_id.is_not(None)))
    _release_rows(s, [r for r in rows if r.state_type == states.PENDING],
                  "released: its agent reconnected without it", now)
    running = {r.id: r.lease_id for r in rows if r.state_type == states.RUNNING}
    if running:
        s.execute(update(FlowRunRow).where(FlowRunRow.id.in_(list(running)))
                  .values(lease_expires=now + dt.timedelta(seconds=ttl))
                  .execution_options(synchronize_session=False))
    return running


def extend_leases(s: Session, agent_id: str, run_ids: list[str], lease_ids: list[str], ttl: float,
                  now: dt.datetime | None = None) -> int:
    """A heartbeat: extend this agent's leases on the runs it names and on the
    leases issued on its current stream."""
    now = now or utcnow()
    conds = []
    if run_ids:
        conds.append(FlowRunRow.id.in_(run_ids[:5000]))
    if lease_ids:
        conds.append(FlowRunRow.lease_id.in_(lease_ids[:5000]))
    if not conds:
        return 0
    result = s.execute(
        update(FlowRunRow)
        .where(FlowRunRow.agent_id == agent_id, FlowRunRow.state_type.in_(ACTIVE),
               FlowRunRow.lease_id.is_not(None), or_(*conds))
        .values(lease_expires=now + dt.timedelta(seconds=ttl))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def expire_leases(s: Session, now: dt.datetime | None = None, limit: int = EXPIRE_BATCH) -> list[tuple[str, str]]:
    """Act on lapsed leases; returns (run id, new state type) for each."""
    now = now or utcnow()
    rows = _locked(s, select(FlowRunRow).where(
        FlowRunRow.state_type.in_(ACTIVE), FlowRunRow.lease_id.is_not(None),
        FlowRunRow.lease_expires < now).limit(limit))
    out = []
    for row in rows:
        who = f"agent {row.agent_name or '?'} ({row.agent_id})"
        if row.cancel_requested:
            st = StateInput(states.CANCELLED, "Cancelled",
                            f"cancelled: {who} stopped heartbeating before confirming the cancellation")
        elif row.state_type == states.PENDING:
            st = StateInput(states.SCHEDULED, "Scheduled",
                            f"the lease of {who} expired before the run started; back to the queue")
        else:
            st = StateInput(states.CRASHED, "Crashed",
                            f"{who} stopped heartbeating: its lease expired at "
                            f"{row.lease_expires.isoformat(timespec='seconds')} while the run was RUNNING")
        apply_state(s, row, st, now)
        out.append((row.id, st.type))
    return out


def next_lease_expiry(s: Session) -> dt.datetime | None:
    return s.scalar(select(func.min(FlowRunRow.lease_expires)).where(
        FlowRunRow.state_type.in_(ACTIVE), FlowRunRow.lease_id.is_not(None)))


def due_status(s: Session, now: dt.datetime) -> tuple[bool, dt.datetime | None]:
    """(is any deployment run due now, when the next one becomes due)."""
    base = select(FlowRunRow.id).where(
        FlowRunRow.state_type == states.SCHEDULED, FlowRunRow.deployment_id.is_not(None))
    any_due = s.scalar(base.where(FlowRunRow.expected_start_time <= now).limit(1)) is not None
    next_due = s.scalar(select(func.min(FlowRunRow.expected_start_time)).where(
        FlowRunRow.state_type == states.SCHEDULED, FlowRunRow.deployment_id.is_not(None),
        FlowRunRow.expected_start_time > now))
    return any_due, next_due


def still_held(s: Session, held: dict[str, str]) -> set[str]:
    """Which of these (run id -> lease id) are still PENDING/RUNNING under that lease."""
    alive = set()
    for chunk in _chunks(list(held)):
        for rid, lid in s.execute(select(FlowRunRow.id, FlowRunRow.lease_id).where(
                FlowRunRow.id.in_(chunk), FlowRunRow.state_type.in_(ACTIVE))).all():
            if lid is not None and held.get(rid) == lid:
                alive.add(rid)
    return alive


def cancels_for(s: Session, agent_ids: set[str]) -> list[tuple[str, str, str]]:
    """(agent id, run id, lease id) of held runs whose cancellation was asked,
    for these agents."""
    rows = s.execute(select(FlowRunRow.agent_id, FlowRunRow.id, FlowRunRow.lease_id).where(
        FlowRunRow.state_type.in_(ACTIVE), FlowRunRow.cancel_requested.is_(True),
        FlowRunRow.lease_id.is_not(None))).all()
    return [tuple(r) for r in rows if r[0] in agent_ids]
