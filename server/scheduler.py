"""The scheduler: creates auto-scheduled runs for deployments with active schedules.

How it works
------------
* Every auto-scheduled run has the idempotency key
  ``scheduled {deployment_id} {slot time in UTC ISO}`` and is inserted with
  ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING``: a restart, a crash
  mid-pass or two servers on one database never create a slot twice, and
  never fail because the other got there first.
* ``DeploymentRow.scheduled_until`` is where the scheduler got to: every slot
  up to it was created (or deliberately skipped). ``scheduler_due_at`` is when
  the deployment next needs a top-up: its first upcoming slot. A pass only
  looks at deployments that are due, so a steady-state pass is one indexed
  query that finds nothing.
* Horizon: runs exist for at least ``scheduler_min_runs`` upcoming slots, and
  up to ``scheduler_max_runs`` runs or ``scheduler_max_days`` ahead, whichever
  comes first.
* Missed slots (the server was down): slots older than
  ``scheduler_grace_seconds`` are skipped and scheduling resumes from now,
  unless the deployment has ``catchup`` set, in which case the missed runs
  are created oldest first (at most ``scheduler_max_runs`` a pass).
* ``mark_late_runs``: SCHEDULED runs not picked up ``late_after_seconds``
  after their expected start get the state name "Late" (type stays SCHEDULED).
* ``expire_runs``: auto-scheduled runs not started ``max_lateness`` after their
  expected start are CANCELLED with the name "Expired".
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
from typing import Any, Iterable

from sqlalchemy import bindparam, delete, insert, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flowdeck.core import states
from flowdeck.core.schedules import schedule_from_dict
from flowdeck.server import metrics
from flowdeck.server.db import Database
from flowdeck.server.models import DeploymentRow, FlowRunRow, FlowRunStateRow, new_id, utcnow
from flowdeck.server.names import ADJECTIVES, ANIMALS, readable_name
from flowdeck.server.run_inputs import FlowRunInput, StateInput, row_values
from flowdeck.server.settings import Settings

log = logging.getLogger("flowdeck.server.scheduler")

UTC = dt.timezone.utc
#: Deployments handled per transaction in a pass.
PAGE_SIZE = 500
#: Runs per INSERT statement batch.
INSERT_CHUNK = 5000
LATE = states.LATE_NAME
EXPIRED = "Expired"
SCHEDULED_NAME = "Scheduled"
# scheduler_due_at for deployments that need no attention until rescheduled.
NEVER = dt.datetime(9999, 1, 1, tzinfo=UTC)
_TICK = dt.timedelta(microseconds=1)

_DEPLOYMENTS = DeploymentRow.__table__
_RUNS = FlowRunRow.__table__
_STATES = FlowRunStateRow.__table__


def idempotency_key(deployment_id: str, slot: dt.datetime) -> str:
    """The key of a deployment's auto-scheduled run for one slot."""
    return f"scheduled {deployment_id} {slot.astimezone(UTC).isoformat()}"


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    return _default_settings()


@functools.lru_cache(maxsize=1)
def _default_settings() -> Settings:
    return Settings.from_env()


@functools.lru_cache(maxsize=4096)
def _schedule_for(key: str):
    return schedule_from_dict(json.loads(key))


def schedule_of(d: dict) -> tuple[str, Any]:
    """(cache key, schedule object) for a stored schedule dict (cached)."""
    key = json.dumps(d, sort_keys=True, default=str)
    return key, _schedule_for(key)


# -- planning: which slots to create (pure Python) ----------------------------

def _after(t: dt.datetime) -> dt.datetime:
    """The next representable instant after t (t itself at the end of time)."""
    try:
        return t + _TICK
    except OverflowError:
        return t


@dataclasses.dataclass
class Plan:
    slots: list[dt.datetime]  # UTC, increasing
    scheduled_until: dt.datetime | None
    due_at: dt.datetime


class Planner:
    """Computes the slots for deployments at one `now`; memoizes next_times
    so deployments sharing a schedule cost one computation a pass."""

    MEMO_LIMIT = 5000

    def __init__(self, settings: Settings, now: dt.datetime):
        self.now = now.astimezone(UTC)
        self.min_runs = max(0, int(settings.scheduler_min_runs))
        self.max_runs = max(self.min_runs, int(settings.scheduler_max_runs))
        self.horizon = self.now + dt.timedelta(days=float(settings.scheduler_max_days))
        self.grace = dt.timedelta(seconds=max(0.0, float(settings.scheduler_grace_seconds)))
        self._memo: dict[tuple, list[dt.datetime]] = {}

    def times(self, key: str, sched, start: dt.datetime, count: int, until: dt.datetime | None = None):
        k = (key, start, count, until)
        got = self._memo.get(k)
        if got is None:
            got = [t.astimezone(UTC) for t in sched.next_times(start, count=count, until=until)]
            if len(self._memo) < self.MEMO_LIMIT:
                self._memo[k] = got
        return got

    def plan(self, key: str, sched, last: dt.datetime | None, catchup: bool) -> Plan:
        now, max_runs = self.now, self.max_runs
        slots: list[dt.datetime] = []
        existing: list[dt.datetime] = []
        if last is not None and last < now:
            # Slots missed since the last pass: all of them with catchup, else
            # only those within the grace period.
            lo = _after(last) if catchup else max(_after(last), now - self.grace)
            past = self.times(key, sched, lo, max_runs + 1, now)
            if len(past) > max_runs:
                # A catch-up backlog: oldest first, the rest at the next pass.
                slots = past[:max_runs]
                return Plan(slots, slots[-1], now)
            slots = list(past)  # a copy: the memo's lists are shared
            last = None
        elif last is not None:
            existing = self.times(key, sched, now, max_runs, _after(last))
        new: list[dt.datetime] = []
        have = len(existing)
        if have < max_runs:
            if last is not None:
                cand = self.times(key, sched, _after(last), max_runs - have) if _after(last) > last else []
            else:
                cand = self.times(key, sched, now, max_runs - have)
            for t in cand:
                if have + len(new) >= max_runs:
                    break
                if t > self.horizon and have + len(new) >= self.min_runs:
                    break
                new.append(t)
        slots.extend(new)
        upcoming = existing[:1] or new[:1]
        due = upcoming[0] if upcoming else self.horizon  # schedule ended: look again later
        if slots:
            until = slots[-1]
        elif last is not None:
            until = last
        else:
            until = now
        return Plan(slots, until, due)


# -- inserting runs -----------------------------------------------------------

def _run_template(dep, now: dt.datetime) -> dict:
    inp = FlowRunInput(
        flow_id=dep.flow_id,
        deployment_id=dep.id,
        parameters=dict(dep.parameters or {}),
        tags=list(dep.tags or []),
        state=StateInput(states.SCHEDULED, SCHEDULED_NAME),
        flow_runner_type=dep.flow_runner_type,
        flow_runner_config=dict(dep.flow_runner_config or {}),
        auto_scheduled=True,
    )
    return row_values(inp, dep.flow_id, now)


def insert_runs(s: Session, work: Iterable[tuple[Any, list[dt.datetime]]], now: dt.datetime) -> int:
    """Insert SCHEDULED auto-scheduled runs for (deployment, slots) pairs in bulk,
    ON CONFLICT (idempotency_key) DO NOTHING, with their state history rows.
    Returns how many runs were new."""
    work = [(dep, slots) for dep, slots in work if slots]
    if not work:
        return 0
    if s.bind.dialect.name == "postgresql":
        created = _insert_runs_pg(s, work, now)
    else:
        created = _insert_runs_generic(s, work, now)
    metrics.run_created(s, states.SCHEDULED, created)
    return created


def _insert_runs_generic(s: Session, work, now: dt.datetime) -> int:
    rows: list[dict] = []
    for dep, slots in work:
        template = _run_template(dep, now)
        for t in slots:
            row = dict(template)
            row["id"] = new_id()
            row["name"] = readable_name()
            row["expected_start_time"] = t
            row["idempotency_key"] = idempotency_key(dep.id, t)
            rows.append(row)
    conn = s.connection()
    stmt = (
        sqlite_insert(_RUNS)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_RUNS.c.id)
    )
    created = 0
    for i in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[i:i + INSERT_CHUNK]
        ids = conn.execute(stmt, chunk).scalars().all()
        if ids:
            conn.execute(
                insert(_STATES),
                [dict(flow_run_id=rid, type=states.SCHEDULED, name=SCHEDULED_NAME, message="",
                      timestamp=now) for rid in ids],
            )
        created += len(ids)
    return created


# Postgres: one statement per chunk. The slots travel as a few long strings
# (cheaper to send than arrays of many small values); ids and readable names
# are made by the database; parameters, tags and runner come from the
# deployment row itself (flushed in this transaction); the history rows come
# from the runs that were really inserted.
_PG_INSERT = text("""
WITH u AS (
    SELECT * FROM unnest(string_to_array(:deps, ','), CAST(string_to_array(:times, ',') AS timestamptz[]),
                         string_to_array(:keys, ','))
        AS u(deployment_id, expected, key)
), ins AS (
    INSERT INTO flow_runs (id, name, flow_id, deployment_id, parameters, tags, state_type, state_name,
                           state_message, state_timestamp, expected_start_time, total_run_time,
                           idempotency_key, flow_runner_type, flow_runner_config, auto_scheduled,
                           fencing_token, cancel_requested, created, updated)
    SELECT gen_random_uuid()::text,
           (CAST(:adjectives AS text[]))[1 + floor(random() * :n_adjectives)::int] || '-' ||
           (CAST(:animals AS text[]))[1 + floor(random() * :n_animals)::int],
           d.flow_id, d.id, d.parameters, d.tags, :state_type, :state_name,
           '', :now, u.expected, 0, u.key,
           d.flow_runner_type, d.flow_runner_config, true, 0, false, :now, :now
    FROM u JOIN deployments d ON d.id = u.deployment_id
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
)
INSERT INTO flow_run_states (flow_run_id, type, name, message, "timestamp")
SELECT id, :state_type, :state_name, '', :now FROM ins
""")
_PG_CHUNK = 20000


def _insert_runs_pg(s: Session, work, now: dt.datetime) -> int:
    conn = s.connection()
    created = 0
    deps: list[str] = []
    times: list[str] = []
    keys: list[str] = []

    def flush() -> int:
        if not deps:
            return 0
        n = conn.execute(_PG_INSERT, dict(
            deps=",".join(deps), times=",".join(times), keys=",".join(keys), now=now,
            adjectives=ADJECTIVES, n_adjectives=len(ADJECTIVES), animals=ANIMALS, n_animals=len(ANIMALS),
            state_type=states.SCHEDULED, state_name=SCHEDULED_NAME,
        )).rowcount
        deps.clear()
        times.clear()
        keys.clear()
        return n

    for dep, slots in work:
        for t in slots:
            iso = t.astimezone(UTC).isoformat()
            deps.append(dep.id)
            times.append(iso)
            keys.append(f"scheduled {dep.id} {iso}")  # = idempotency_key(dep.id, t); no commas in it
        if len(deps) >= _PG_CHUNK:
            created += flush()
    return created + flush()


# -- one deployment -----------------------------------------------------------

def delete_future_runs(s: Session, deployment_id: str) -> int:
    """Delete the deployment's auto-scheduled runs that have not started."""
    return s.execute(
        delete(FlowRunRow).where(
            FlowRunRow.deployment_id == deployment_id,
            FlowRunRow.auto_scheduled.is_(True),
            FlowRunRow.state_type == states.SCHEDULED,
            FlowRunRow.start_time.is_(None),
        )
    ).rowcount


def has_active_schedule(dep) -> bool:
    """The deployment (a row or view) has a schedule and it is not paused."""
    return bool(dep.schedule) and bool(dep.is_schedule_active)


def _plan_for(dep, planner: Planner) -> Plan | None:
    """The deployment's next slots; None when it has nothing to schedule."""
    if not has_active_schedule(dep):
        return None
    try:
        key, sched = schedule_of(dep.schedule)
    except ValueError as e:  # a schedule stored before validation got stricter
        log.warning("deployment %s has an invalid schedule, not scheduling it: %s", dep.id, e)
        return None
    return planner.plan(key, sched, dep.scheduled_until, dep.catchup)


def schedule_deployment(s: Session, row: DeploymentRow, now: dt.datetime | None = None,
                        settings: Settings | None = None) -> int:
    """Create the runs for the deployment's next slots (from where the scheduler
    got to, see the module doc) and move its bookkeeping on. Returns how many
    runs were created."""
    now = now or utcnow()
    plan = _plan_for(row, Planner(_settings(settings), now))
    if plan is None:
        row.scheduler_due_at = NEVER
        return 0
    s.flush()  # the bulk insert reads the deployment row
    created = insert_runs(s, [(row, plan.slots)], now)
    row.scheduled_until = plan.scheduled_until
    row.scheduler_due_at = plan.due_at
    return created


def reschedule_deployment(s: Session, row: DeploymentRow, now: dt.datetime | None = None,
                          settings: Settings | None = None, *, fresh: bool = False) -> int:
    """Replace the deployment's future auto-scheduled runs: delete those that have
    not started and create them afresh from now (same transaction as the change).
    Paused or unscheduled deployments keep none. `fresh`: the deployment was just
    created, so it has no runs to delete."""
    now = now or utcnow()
    settings = _settings(settings)
    if not fresh:
        delete_future_runs(s, row.id)
    row.scheduled_until = None
    row.scheduler_due_at = None
    created = 0
    if not has_active_schedule(row):
        row.scheduler_due_at = NEVER
    elif settings.scheduler_enabled:
        created = schedule_deployment(s, row, now, settings)
    s.flush()
    return created


# -- the pass -----------------------------------------------------------------

_PASS_COLUMNS = [
    _DEPLOYMENTS.c.id,
    _DEPLOYMENTS.c.flow_id,
    _DEPLOYMENTS.c.schedule,
    _DEPLOYMENTS.c.is_schedule_active,
    _DEPLOYMENTS.c.parameters,
    _DEPLOYMENTS.c.tags,
    _DEPLOYMENTS.c.flow_runner_type,
    _DEPLOYMENTS.c.flow_runner_config,
    _DEPLOYMENTS.c.catchup,
    _DEPLOYMENTS.c.scheduled_until,
]


_PG_MARK = text("""
UPDATE deployments AS d SET scheduled_until = u.until, scheduler_due_at = u.due
FROM unnest(CAST(:ids AS text[]), CAST(:untils AS timestamptz[]), CAST(:dues AS timestamptz[])) AS u(id, until, due)
WHERE d.id = u.id
""")


def _top_up_page(s: Session, rows, planner: Planner) -> int:
    work = []
    marks = []
    for r in rows:
        plan = _plan_for(r, planner)
        if plan is None:
            marks.append(dict(b_id=r.id, b_until=r.scheduled_until, b_due=NEVER))
            continue
        work.append((r, plan.slots))
        marks.append(dict(b_id=r.id, b_until=plan.scheduled_until, b_due=plan.due_at))
    created = insert_runs(s, work, planner.now)
    if marks and s.bind.dialect.name == "postgresql":
        s.connection().execute(_PG_MARK, dict(
            ids=[m["b_id"] for m in marks], untils=[m["b_until"] for m in marks],
            dues=[m["b_due"] for m in marks]))
    elif marks:
        s.connection().execute(
            update(_DEPLOYMENTS)
            .where(_DEPLOYMENTS.c.id == bindparam("b_id"))
            .values(
                scheduled_until=bindparam("b_until"),
                scheduler_due_at=bindparam("b_due"),
                updated=_DEPLOYMENTS.c.updated,  # bookkeeping is not a change of the deployment
            ),
            marks,
        )
    return created


def run_scheduler_pass(db: Database, settings: Settings | None = None, now: dt.datetime | None = None,
                       *, page_size: int = PAGE_SIZE) -> int:
    """Top up every active scheduled deployment that is due, `page_size`
    deployments per transaction. Returns how many runs were created.

    On Postgres the page is locked FOR NO KEY UPDATE SKIP LOCKED, so replicas
    share the work; the unique idempotency key is what guarantees exactly once."""
    now = (now or utcnow()).astimezone(UTC)
    planner = Planner(_settings(settings), now)
    due = or_(_DEPLOYMENTS.c.scheduler_due_at.is_(None), _DEPLOYMENTS.c.scheduler_due_at <= now)
    total = 0
    after = ""
    while True:
        with db.write() as s:
            q = (
                select(*_PASS_COLUMNS)
                .where(
                    _DEPLOYMENTS.c.schedule.is_not(None),
                    _DEPLOYMENTS.c.is_schedule_active.is_(True),
                    due,
                    _DEPLOYMENTS.c.id > after,
                )
                .order_by(_DEPLOYMENTS.c.id)
                .limit(page_size)
            )
            if s.bind.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True, key_share=True)
            rows = s.execute(q).all()
            if rows:
                total += _top_up_page(s, rows, planner)
        if len(rows) < page_size:
            return total
        after = rows[-1].id


# -- late and expired runs ----------------------------------------------------

def _history(s: Session, ids: list[str], type_: str, name: str, message: str, now: dt.datetime) -> None:
    if ids:
        s.connection().execute(
            insert(_STATES),
            [dict(flow_run_id=i, type=type_, name=name, message=message, timestamp=now) for i in ids],
        )


def _skip_locked(*conditions):
    """The ids of runs matching `conditions`, locked FOR UPDATE SKIP LOCKED on
    Postgres: a run an agent (or another server) holds right now is left for
    the next tick instead of waited for, so bulk updates never deadlock."""
    return select(_RUNS.c.id).where(*conditions).with_for_update(skip_locked=True)


def mark_late_runs(s: Session, settings: Settings | None = None, now: dt.datetime | None = None) -> int:
    """SCHEDULED runs not picked up late_after_seconds after their expected start
    get the state name "Late" (the type stays SCHEDULED). One bulk UPDATE."""
    now = (now or utcnow()).astimezone(UTC)
    cutoff = now - dt.timedelta(seconds=_settings(settings).late_after_seconds)
    message = "not started by its expected start time"
    ids = s.connection().execute(
        update(_RUNS)
        .where(_RUNS.c.id.in_(_skip_locked(
            _RUNS.c.state_type == states.SCHEDULED,
            _RUNS.c.state_name == SCHEDULED_NAME,
            _RUNS.c.expected_start_time < cutoff,
        )))
        .values(state_name=LATE, state_message=message, state_timestamp=now, updated=now)
        .returning(_RUNS.c.id)
    ).scalars().all()
    _history(s, ids, states.SCHEDULED, LATE, message, now)
    return len(ids)


def expire_runs(s: Session, now: dt.datetime | None = None) -> int:
    """Auto-scheduled runs of deployments with max_lateness that have not started
    max_lateness after their expected start become CANCELLED "Expired"."""
    now = (now or utcnow()).astimezone(UTC)
    values = s.execute(
        select(DeploymentRow.max_lateness_seconds)
        .where(DeploymentRow.max_lateness_seconds.is_not(None))
        .distinct()
    ).scalars().all()
    total = 0
    for seconds in values:
        message = (f"not started within max_lateness ({seconds:g}s) of its expected start time;"
                   " expired instead of being run")
        deps = select(_DEPLOYMENTS.c.id).where(_DEPLOYMENTS.c.max_lateness_seconds == seconds)
        ids = s.connection().execute(
            update(_RUNS)
            .where(_RUNS.c.id.in_(_skip_locked(
                _RUNS.c.auto_scheduled.is_(True),
                _RUNS.c.state_type == states.SCHEDULED,
                _RUNS.c.start_time.is_(None),
                _RUNS.c.expected_start_time < now - dt.timedelta(seconds=seconds),
                _RUNS.c.deployment_id.in_(deps),
            )))
            .values(
                state_type=states.CANCELLED, state_name=EXPIRED, state_message=message,
                state_timestamp=now, end_time=now, updated=now,
                lease_id=None, lease_expires=None,
            )
            .returning(_RUNS.c.id)
        ).scalars().all()
        _history(s, ids, states.CANCELLED, EXPIRED, message, now)
        metrics.state_entered(s, states.CANCELLED, None, len(ids))
        total += len(ids)
    return total


@dataclasses.dataclass
class TickResult:
    created: int = 0
    expired: int = 0
    late: int = 0


def scheduler_tick(db: Database, settings: Settings | None = None, now: dt.datetime | None = None) -> TickResult:
    """One loop iteration: top up schedules, expire runs past max_lateness, mark late runs."""
    now = (now or utcnow()).astimezone(UTC)
    settings = _settings(settings)
    out = TickResult()
    out.created = run_scheduler_pass(db, settings, now)
    with db.write() as s:
        out.expired = expire_runs(s, now)
    with db.write() as s:
        out.late = mark_late_runs(s, settings, now)
    return out
