"""The scheduler: runs on time, exactly once, across restarts and replicas.

Schedule logic runs with an injected clock (`now=`), never sleeping; one
end-to-end test runs a real server with its background loop."""
from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text, update

from flowdeck import exceptions as exc
from flowdeck.server import deployments, flow_runs, scheduler
from flowdeck.core import states
from flowdeck.server.models import DeploymentRow, FlowRunRow, FlowRunStateRow
from flowdeck.server.settings import Settings
from support.waiting import wait_until

UTC = dt.timezone.utc
T0 = dt.datetime(2030, 1, 1, tzinfo=UTC)
H = dt.timedelta(hours=1)
HOURLY = {"interval": 3600}


@pytest.fixture
def settings(tmp_path):
    return Settings(home=tmp_path, scheduler_min_runs=3, scheduler_max_runs=10, scheduler_max_days=100,
                    scheduler_grace_seconds=60, late_after_seconds=5)


def create(db, settings, name="d", schedule=HOURLY, now=T0, flow="f", **fields):
    with db.write() as s:
        row, _ = deployments.upsert(
            s, deployments.DeploymentInput(name=name, flow_name=flow, schedule=schedule, **fields),
            now=now, settings=settings,
        )
        return row.id


def update_dep(db, settings, dep_id, now, **fields):
    inp = deployments.DeploymentInput(**fields)
    with db.write() as s:
        deployments.update(s, dep_id, inp, list(fields), now=now, settings=settings)


def runs(db, dep_id=None, *, auto=None, state=None):
    with db.read() as s:
        q = select(FlowRunRow).order_by(FlowRunRow.expected_start_time, FlowRunRow.id)
        if dep_id:
            q = q.where(FlowRunRow.deployment_id == dep_id)
        if auto is not None:
            q = q.where(FlowRunRow.auto_scheduled.is_(auto))
        if state:
            q = q.where(FlowRunRow.state_type == state)
        return list(s.scalars(q))


def times(db, dep_id, **kw):
    return [r.expected_start_time for r in runs(db, dep_id, **kw)]


def hours(*ns):
    return [T0 + n * H for n in ns]


def history(db, run_id):
    with db.read() as s:
        return [(h.type, h.name) for h in s.scalars(
            select(FlowRunStateRow).where(FlowRunStateRow.flow_run_id == run_id).order_by(FlowRunStateRow.id))]


def manual_run(db, dep_id, at):
    with db.write() as s:
        return flow_runs.create_from_deployment(s, deployment_id=dep_id, expected_start_time=at, now=T0).id


# -- creating runs -------------------------------------------------------------

def test_create_makes_runs_at_once_with_exact_keys(db, settings):
    dep_id = create(db, settings, tags=["t"], parameters={"n": 1},
                    flow_runner_type="subprocess", flow_runner_config={"env": {"K": "V"}})
    got = runs(db, dep_id)
    assert [r.expected_start_time for r in got] == hours(*range(10))
    for r in got:
        assert r.idempotency_key == f"scheduled {dep_id} {r.expected_start_time.isoformat()}"
        assert r.state_type == "SCHEDULED" and r.state_name == "Scheduled" and r.auto_scheduled
        assert r.parameters == {"n": 1} and r.tags == ["t"]
        assert r.flow_runner_type == "subprocess" and r.flow_runner_config == {"env": {"K": "V"}}
        assert history(db, r.id) == [("SCHEDULED", "Scheduled")]
    assert got[0].idempotency_key == f"scheduled {dep_id} 2030-01-01T00:00:00+00:00"
    with db.read() as s:
        assert deployments.get(s, dep_id).next_run_time == T0
        assert deployments.get_by_name(s, "f/d").next_run_time == T0
        listed, _ = deployments.list_(s, 10, "")
        assert [d.next_run_time for d in listed] == [T0]


def test_keys_are_utc_across_dst(db, settings):
    start = dt.datetime(2024, 3, 29, 12, tzinfo=UTC)
    dep_id = create(db, settings, schedule={"cron": "0 9 * * *", "timezone": "Europe/Berlin"}, now=start)
    keys = [r.idempotency_key.split(" ", 2)[2] for r in runs(db, dep_id)][:4]
    # 09:00 Berlin is 08:00Z before the spring change (Mar 31) and 07:00Z after
    assert keys == ["2024-03-30T08:00:00+00:00", "2024-03-31T07:00:00+00:00",
                    "2024-04-01T07:00:00+00:00", "2024-04-02T07:00:00+00:00"]


def test_keys_keep_microseconds(db, settings):
    anchor = "2030-01-01T00:00:00.250000+00:00"
    dep_id = create(db, settings, schedule={"interval": 3600, "anchor_date": anchor}, now=T0)
    first = runs(db, dep_id)[0]
    assert first.expected_start_time == T0 + dt.timedelta(milliseconds=250)
    assert first.idempotency_key == f"scheduled {dep_id} {anchor}"
    assert scheduler.idempotency_key(dep_id, first.expected_start_time) == first.idempotency_key


def test_passes_create_each_slot_exactly_once(db, settings):
    dep_id = create(db, settings)
    assert scheduler.run_scheduler_pass(db, settings, T0) == 0
    # A crash after inserting but before the bookkeeping: the next pass redoes
    # the work and the unique key turns every slot into a no-op.
    with db.write() as s:
        s.execute(update(DeploymentRow).values(scheduled_until=None, scheduler_due_at=None))
    assert scheduler.run_scheduler_pass(db, settings, T0) == 0
    assert scheduler.run_scheduler_pass(db, settings, T0 + 0.5 * H) == 1  # the 10h slot, once
    got = runs(db, dep_id)
    assert len(got) == 11 and len({r.idempotency_key for r in got}) == 11
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(FlowRunStateRow)) == 11


def test_top_up_keeps_the_horizon_as_time_passes(db, settings):
    dep_id = create(db, settings)
    assert scheduler.run_scheduler_pass(db, settings, T0 + 2.5 * H) == 3
    assert times(db, dep_id) == hours(*range(13))  # the 3 past runs stay (no agent took them)
    # nothing is due until the next slot passes: a steady-state pass is a no-op
    assert scheduler.run_scheduler_pass(db, settings, T0 + 2.9 * H) == 0
    assert scheduler.run_scheduler_pass(db, settings, T0 + 3 * H + dt.timedelta(seconds=1)) == 1
    assert times(db, dep_id)[-1] == T0 + 13 * H


def test_horizon_min_runs_max_runs_and_max_days(db, settings):
    settings.scheduler_max_days = 5
    hourly = create(db, settings, "hourly")  # max_runs comes first: 10 runs
    daily = create(db, settings, "daily", {"interval": 86400})  # 5 days come first
    yearly = create(db, settings, "yearly", {"cron": "0 0 1 1 *"})  # min_runs: 3 even beyond 5 days
    assert len(runs(db, hourly)) == 10
    assert times(db, daily) == [T0 + dt.timedelta(days=n) for n in range(6)]
    assert [t.year for t in times(db, yearly)] == [2030, 2031, 2032]
    # and the pass agrees: nothing to add
    assert scheduler.run_scheduler_pass(db, settings, T0) == 0


def test_finished_rrule_needs_no_work(db, settings):
    dep_id = create(db, settings, schedule={"rrule": "DTSTART:20300101T000000\nRRULE:FREQ=HOURLY;COUNT=2"})
    assert times(db, dep_id) == hours(0, 1)
    assert scheduler.run_scheduler_pass(db, settings, T0 + 5 * H) == 0
    with db.read() as s:
        assert s.get(DeploymentRow, dep_id).scheduler_due_at > T0 + 5 * H


# -- updates, pause and resume ---------------------------------------------------

def test_update_replaces_future_runs_and_leaves_manual_and_started_ones(db, settings):
    dep_id = create(db, settings, parameters={"a": 1})
    manual = manual_run(db, dep_id, T0 + 5 * H)
    first = runs(db, dep_id, auto=True)[0]
    with db.write() as s:
        flow_runs.set_state(s, first.id, flow_runs.StateInput(states.RUNNING), now=T0)
    update_dep(db, settings, dep_id, T0 + 0.5 * H, parameters={"a": 2})
    auto = runs(db, dep_id, auto=True, state="SCHEDULED")
    assert [r.expected_start_time for r in auto] == hours(*range(1, 11))
    assert all(r.parameters == {"a": 2} for r in auto)
    assert all(r.created == T0 + 0.5 * H for r in auto)  # made afresh
    with db.read() as s:
        assert s.get(FlowRunRow, manual).parameters == {"a": 1}
        assert s.get(FlowRunRow, first.id).state_type == "RUNNING"
    # a new schedule: new slots and keys
    update_dep(db, settings, dep_id, T0 + 0.5 * H, schedule={"interval": 7200})
    assert times(db, dep_id, auto=True, state="SCHEDULED") == hours(*range(2, 22, 2))
    assert manual in [r.id for r in runs(db, dep_id)]


def test_pause_deletes_future_runs_and_resume_starts_from_now(db, settings):
    dep_id = create(db, settings)
    manual = manual_run(db, dep_id, T0 + 3 * H)
    update_dep(db, settings, dep_id, T0 + 0.5 * H, is_schedule_active=False)
    assert runs(db, dep_id, auto=True) == []
    assert scheduler.run_scheduler_pass(db, settings, T0 + 2 * H) == 0
    assert scheduler.run_scheduler_pass(db, settings, T0 + 20 * H) == 0
    assert [r.id for r in runs(db, dep_id)] == [manual]
    with db.read() as s:
        assert deployments.get(s, dep_id).next_run_time == T0 + 3 * H  # the manual run
    update_dep(db, settings, dep_id, T0 + 5.5 * H, is_schedule_active=True)
    assert times(db, dep_id, auto=True) == hours(*range(6, 16))
    # removing the schedule removes its runs too, and passes skip the deployment
    update_dep(db, settings, dep_id, T0 + 6.5 * H, schedule=None)
    assert runs(db, dep_id, auto=True, state="SCHEDULED") == []
    assert scheduler.run_scheduler_pass(db, settings, T0 + 30 * H) == 0


def test_scheduler_disabled_creates_no_runs_but_a_later_pass_does(db, settings):
    settings.scheduler_enabled = False
    dep_id = create(db, settings)
    assert runs(db, dep_id) == []
    settings.scheduler_enabled = True
    assert scheduler.run_scheduler_pass(db, settings, T0) == 10


# -- downtime: grace and catchup -------------------------------------------------

def test_missed_slots_are_skipped_after_downtime(db, settings):
    dep_id = create(db, settings)  # T0 .. T0+9h
    # down from T0+9h until T0+15h10m: slots 10h..15h are missed and skipped
    assert scheduler.run_scheduler_pass(db, settings, T0 + 15 * H + dt.timedelta(minutes=10)) == 10
    assert times(db, dep_id) == hours(*range(10), *range(16, 26))


def test_a_slot_within_the_grace_period_is_still_created(db, settings):
    ids = [create(db, settings, f"d{i}") for i in range(3)]  # one schedule, computed once a pass
    now = T0 + 10 * H + dt.timedelta(seconds=30)  # the 10h slot is 30 s old, grace is 60 s
    assert scheduler.run_scheduler_pass(db, settings, now) == 3 * 11
    for dep_id in ids:
        assert times(db, dep_id) == hours(*range(21))  # the 10h slot, then 10 ahead
    with db.read() as s:
        assert {s.get(DeploymentRow, i).scheduled_until for i in ids} == {T0 + 20 * H}


def test_catchup_creates_missed_runs_oldest_first(db, settings):
    dep_id = create(db, settings, catchup=True)
    assert scheduler.run_scheduler_pass(db, settings, T0 + 15 * H + dt.timedelta(minutes=10)) == 16
    assert times(db, dep_id) == hours(*range(26))


def test_catchup_backlog_is_worked_off_over_passes(db, settings):
    dep_id = create(db, settings, catchup=True)
    now = T0 + 40 * H + dt.timedelta(minutes=10)  # slots 10h..40h missed: 31 of them
    first = scheduler.run_scheduler_pass(db, settings, now)
    assert first == 10 and times(db, dep_id)[-1] == T0 + 19 * H  # oldest first, max_runs a pass
    total = first
    for _ in range(5):
        total += scheduler.run_scheduler_pass(db, settings, now)
    assert total == 31 + 10
    assert times(db, dep_id) == hours(*range(51))


# -- late and expired ------------------------------------------------------------

def test_late_runs_get_the_name_late(db, settings):
    dep_id = create(db, settings)
    manual = manual_run(db, dep_id, T0 + 30 * dt.timedelta(seconds=1))
    with db.write() as s:
        assert scheduler.mark_late_runs(s, settings, T0 + dt.timedelta(seconds=5)) == 0
    with db.write() as s:
        assert scheduler.mark_late_runs(s, settings, T0 + dt.timedelta(seconds=6)) == 1
    first = runs(db, dep_id, auto=True)[0]
    assert (first.state_type, first.state_name) == ("SCHEDULED", "Late")
    assert history(db, first.id) == [("SCHEDULED", "Scheduled"), ("SCHEDULED", "Late")]
    with db.write() as s:  # once only, and manual runs are late too
        assert scheduler.mark_late_runs(s, settings, T0 + dt.timedelta(seconds=40)) == 1
    assert history(db, first.id) == [("SCHEDULED", "Scheduled"), ("SCHEDULED", "Late")]
    with db.read() as s:
        assert s.get(FlowRunRow, manual).state_name == "Late"
    # a late run can still be picked up
    with db.write() as s:
        flow_runs.set_state(s, first.id, flow_runs.StateInput(states.PENDING), now=T0 + H)


def test_max_lateness_expires_auto_scheduled_runs(db, settings):
    strict = create(db, settings, "strict", max_lateness_seconds=90)
    relaxed = create(db, settings, "relaxed")
    manual = manual_run(db, strict, T0)
    result = scheduler.scheduler_tick(db, settings, T0 + dt.timedelta(seconds=89))
    assert result.expired == 0
    result = scheduler.scheduler_tick(db, settings, T0 + dt.timedelta(seconds=91))
    assert result.expired == 1
    expired = runs(db, strict, auto=True)[0]
    assert (expired.state_type, expired.state_name) == ("CANCELLED", "Expired")
    assert "max_lateness" in expired.state_message and expired.end_time == T0 + dt.timedelta(seconds=91)
    assert history(db, expired.id) == [("SCHEDULED", "Scheduled"), ("SCHEDULED", "Late"), ("CANCELLED", "Expired")]
    with db.read() as s:
        assert s.get(FlowRunRow, manual).state_type == "SCHEDULED"  # not auto-scheduled: never expired
    assert runs(db, relaxed)[0].state_name == "Late"
    # the expired slot is not scheduled again
    assert scheduler.run_scheduler_pass(db, settings, T0 + 2 * H) == 2
    assert times(db, strict, auto=True).count(T0) == 1


# -- the loop, with an injected clock -----------------------------------------------

def test_scheduler_loop_uses_the_injected_clock(db, settings):
    from flowdeck.server import loops
    from flowdeck.server.api.base import AppContext
    from flowdeck.server.events import Events

    dep_id = create(db, settings)
    clock_calls = []

    def clock():
        clock_calls.append(1)
        return T0 + min(len(clock_calls), 3) * H  # an hour passes per tick, for 3 ticks

    async def main():
        events = Events()
        events.loop = asyncio.get_running_loop()
        woke = events.subscribe("runs")
        app = AppContext(db=db, settings=settings, events=events)
        task = asyncio.create_task(loops.scheduler_loop(app, clock=clock, period=0.01))
        await asyncio.wait_for(woke.wait(), 10)
        while len(clock_calls) < 4:  # the 4th call comes after the 3rd tick finished
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert times(db, dep_id) == hours(*range(13))
    assert runs(db, dep_id)[0].state_name == "Late"


# -- replicas --------------------------------------------------------------------

def test_concurrent_passes_never_duplicate_a_slot(database_url, db, settings):
    """Two schedulers with their own Database objects (as two servers have),
    racing over the same deployments, bookkeeping reset between rounds."""
    from flowdeck.server.db import Database

    settings.scheduler_enabled = False  # created without runs: the passes do it all
    ids = [create(db, settings, f"d{i}", HOURLY if i % 2 else {"cron": "*/20 * * * *"}) for i in range(60)]
    settings.scheduler_enabled = True
    dbs = [Database(database_url, threads=2) for _ in range(2)]
    errors = []
    try:
        for round_ in range(3):
            now = T0 + round_ * dt.timedelta(minutes=25)
            barrier = threading.Barrier(2)

            def work(d):
                try:
                    barrier.wait()
                    scheduler.run_scheduler_pass(d, settings, now, page_size=7)
                except Exception as e:  # noqa: BLE001
                    errors.append(e)

            threads = [threading.Thread(target=work, args=(d,)) for d in dbs]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            with db.write() as s:
                s.execute(update(DeploymentRow).values(scheduled_until=None, scheduler_due_at=None))
    finally:
        for d in dbs:
            d.close()
    assert errors == []
    with db.read() as s:
        dupes = s.execute(
            select(FlowRunRow.deployment_id, FlowRunRow.expected_start_time, func.count())
            .group_by(FlowRunRow.deployment_id, FlowRunRow.expected_start_time)
            .having(func.count() > 1)
        ).all()
        assert dupes == []
        per_dep = dict(s.execute(select(FlowRunRow.deployment_id, func.count()).group_by(FlowRunRow.deployment_id)).all())
        n_states = s.scalar(select(func.count()).select_from(FlowRunStateRow))
    assert set(per_dep) == set(ids)
    assert n_states == sum(per_dep.values())  # one history row per run, none for the losers


def unscheduled(db) -> int:
    """How many deployments no scheduler pass has handled since their reset."""
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(DeploymentRow).where(DeploymentRow.scheduled_until.is_(None)))


@pytest.fixture
def pg_url(pg_database_factory):
    from conftest import require_postgres

    require_postgres()
    return pg_database_factory()


def test_two_servers_on_one_postgres_never_create_a_slot_twice(pg_url, tmp_path, caplog):
    from conftest import in_process_server
    from flowdeck.client import FlowdeckClient
    from flowdeck.server.db import Database

    servers = [in_process_server(tmp_path / f"s{i}", background=True, database_url=pg_url,
                                 scheduler_loop_seconds=0.1, scheduler_max_runs=4, scheduler_min_runs=2,
                                 late_after_seconds=60) for i in range(2)]
    db = Database(pg_url, threads=2)
    try:
        clients = [FlowdeckClient(s.address, timeout=20) for s in servers]
        for i in range(20):  # created through both servers
            clients[i % 2].create_deployment(f"d{i}", flow_name="replicas", schedule={"interval": 1})
        for _ in range(12):
            # Simulate crashes and restarts: both servers redo every deployment
            # from scratch; the round is over when every one was done again.
            with db.write() as s:
                s.execute(update(DeploymentRow).values(scheduled_until=None, scheduler_due_at=None))
            wait_until(lambda: unscheduled(db) == 0, "a scheduler pass after the reset")
        for c in clients:
            c.close()
    finally:
        for s in servers:
            s.stop()
    try:
        with db.read() as s:
            dupes = s.execute(text(
                "SELECT deployment_id, expected_start_time, count(*) FROM flow_runs"
                " GROUP BY deployment_id, expected_start_time HAVING count(*) > 1")).all()
            per_dep = s.execute(text(
                "SELECT deployment_id, count(*), max(expected_start_time) - min(expected_start_time)"
                " FROM flow_runs GROUP BY deployment_id")).all()
            states_count = s.scalar(text("SELECT count(*) FROM flow_run_states"))
            runs_count = s.scalar(text("SELECT count(*) FROM flow_runs"))
    finally:
        db.close()
    assert dupes == []
    assert not [r for r in caplog.records if r.name.startswith("flowdeck.server") and r.levelname == "ERROR"]
    assert len(per_dep) == 20
    # At least what one pass makes (scheduler_max_runs), every 1 s slot once, none missed.
    assert all(n >= 4 and span == dt.timedelta(seconds=n - 1) for _, n, span in per_dep), per_dep
    assert states_count == runs_count


# -- through the API ---------------------------------------------------------------

def _bad_schedules():
    from flowdeck.v1 import common_pb2 as c

    bad_tz = c.Schedule(cron=c.CronSchedule(cron="0 9 * * *", timezone="Mars/Base"))
    bad_cron = c.Schedule(cron=c.CronSchedule(cron="61 25 * * *"))
    zero = c.Schedule(interval=c.IntervalSchedule(timezone="UTC"))
    bad_rrule = c.Schedule(rrule=c.RRuleSchedule(rrule="FREQ=SOMETIMES"))
    return [
        (bad_tz, "deployment.schedule.cron.timezone", "Mars/Base"),
        (bad_cron, "deployment.schedule.cron.cron", "61 25 * * *"),
        (zero, "deployment.schedule.interval.interval", "0s"),
        (bad_rrule, "deployment.schedule.rrule.rrule", "FREQ=SOMETIMES"),
    ]


def test_invalid_schedules_are_refused_and_nothing_is_stored(client):
    for sched, field, value in _bad_schedules():
        with pytest.raises(exc.InvalidArgumentError) as info:
            client.create_deployment("d", flow_name="never", schedule=sched)
        assert field in str(info.value) and value in str(info.value)
    assert client.list_deployments() == [] and client.list_flow_runs() == []
    with pytest.raises(exc.NotFoundError):
        client.get_flow_by_name("never")
    # updates are validated the same way and leave the deployment as it was
    dep, _ = client.create_deployment("d", flow_name="f", schedule={"interval": 3600})
    before = len(client.list_upcoming_runs(deployment_id=dep.id))
    with pytest.raises(exc.InvalidArgumentError, match="deployment.schedule.cron.timezone.*Mars/Base"):
        client.update_deployment(dep.id, schedule=_bad_schedules()[0][0])
    assert client.get_deployment(dep.id).schedule["interval"] == 3600
    assert len(client.list_upcoming_runs(deployment_id=dep.id)) == before


def test_preview_schedule_rpc(client, server, wire):
    start = dt.datetime(2024, 3, 29, tzinfo=UTC)
    got = client.preview_schedule({"cron": "0 9 * * *", "timezone": "Europe/Berlin"}, start=start, count=4)
    assert [t.isoformat() for t in got] == [
        "2024-03-29T09:00:00+01:00", "2024-03-30T09:00:00+01:00",
        "2024-03-31T09:00:00+02:00", "2024-04-01T09:00:00+02:00"]
    from flowdeck.v1 import common_pb2 as c
    from flowdeck.v1 import schedule_service_pb2 as spb
    from flowdeck.v1 import schedule_service_pb2_grpc as sgrpc

    stub = wire.stub(server.address, sgrpc.ScheduleServiceStub)
    from google.protobuf import duration_pb2

    resp = stub.PreviewSchedule(spb.PreviewScheduleRequest(schedule=c.Schedule(interval=c.IntervalSchedule(
        interval=duration_pb2.Duration(seconds=60)))))
    assert len(resp.times) == 5  # count defaults to 5, start to now
    assert resp.times[0].ToDatetime(tzinfo=UTC) >= dt.datetime.now(UTC) - dt.timedelta(seconds=5)
    assert resp.local_times[0].endswith("+00:00")
    assert len(client.preview_schedule({"interval": 1}, count=1000)) == 1000
    for kwargs, field, value in [
        (dict(count=1001), "count", "1001"),
        (dict(count=-1), "count", "-1"),
        (dict(schedule=c.Schedule(rrule=c.RRuleSchedule(rrule="FREQ=DAILY", timezone="Nowhere/City"))),
         "schedule.rrule.timezone", "Nowhere/City"),
    ]:
        kwargs.setdefault("schedule", {"interval": 60})
        with pytest.raises(exc.InvalidArgumentError) as info:
            client.preview_schedule(**kwargs)
        assert field in str(info.value) and value in str(info.value)
    import grpc

    with pytest.raises(grpc.RpcError) as err:
        stub.PreviewSchedule(spb.PreviewScheduleRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "schedule" in err.value.details()


def test_upcoming_runs_and_next_run_time_through_the_api(client):
    dep, _ = client.create_deployment("d", flow_name="f", schedule={"interval": 60}, parameters={"x": 1})
    assert dep.next_run_time is not None  # runs exist as soon as the create returns
    manual = client.create_flow_run_from_deployment(
        deployment_name="f/d", expected_start_time=dt.datetime.now(UTC) + dt.timedelta(days=365))
    upcoming = client.list_upcoming_runs(deployment_name="f/d", limit=1000)
    assert upcoming[-1].id == manual.id
    auto = [r for r in upcoming if r.auto_scheduled]
    assert len(auto) == 100  # the default horizon: 100 runs
    starts = [r.expected_start_time for r in upcoming]
    assert starts == sorted(starts)
    assert client.get_deployment(dep.id).next_run_time == starts[0]
    assert client.get_deployment_by_name("f/d").next_run_time == starts[0]
    assert [d.next_run_time for d in client.list_deployments()] == [starts[0]]
    assert len(client.list_upcoming_runs(deployment_id=dep.id, limit=3)) == 3
    with pytest.raises(exc.NotFoundError):
        client.list_upcoming_runs(deployment_id="00000000-0000-0000-0000-000000000000")
    client.update_deployment(dep.id, is_schedule_active=False)
    assert [r.id for r in client.list_upcoming_runs(deployment_id=dep.id)] == [manual.id]


def test_upcoming_runs_page_with_a_token_bound_to_the_deployment(server, client):
    import grpc

    from flowdeck.v1 import schedule_service_pb2 as spb
    from flowdeck.v1 import schedule_service_pb2_grpc as srpc

    dep, _ = client.create_deployment("d", flow_name="f", schedule={"interval": 60})
    other, _ = client.create_deployment("other", flow_name="f", schedule={"interval": 60})
    with grpc.insecure_channel(server.address) as channel:
        upcoming = srpc.ScheduleServiceStub(channel).ListUpcomingRuns
        seen, token = [], ""
        while True:
            page = upcoming(spb.ListUpcomingRunsRequest(deployment_id=dep.id, page_size=7, page_token=token),
                            timeout=20)
            seen += [r.id for r in page.flow_runs]
            token = page.next_page_token
            if not token:
                break
            if len(seen) == 7:  # a run inserted before what was seen neither repeats nor shifts the rest
                client.create_flow_run_from_deployment(deployment_id=dep.id, expected_start_time=dt.datetime.now(UTC))
        assert len(seen) == len(set(seen)) == 100  # the default horizon
        first = upcoming(spb.ListUpcomingRunsRequest(deployment_id=dep.id, page_size=7), timeout=20)
        with pytest.raises(grpc.RpcError) as err:
            upcoming(spb.ListUpcomingRunsRequest(deployment_id=other.id, page_size=7,
                                                 page_token=first.next_page_token), timeout=20)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in err.value.details()


def test_end_to_end_runs_appear_on_time(tmp_path):
    """A real server with its background loop (0.5 s) and a 2 s interval."""
    from conftest import in_process_server
    from flowdeck.client import FlowdeckClient

    srv = in_process_server(tmp_path, background=True, database_url=f"sqlite:///{tmp_path / 'e2e.db'}",
                            scheduler_loop_seconds=0.5, scheduler_max_runs=3, scheduler_min_runs=3,
                            late_after_seconds=1)
    try:
        with FlowdeckClient(srv.address, timeout=20) as client:
            before = dt.datetime.now(UTC)
            dep, _ = client.create_deployment("tick", flow_name="e2e", schedule={"interval": 2})
            first = client.list_upcoming_runs(deployment_id=dep.id)
            assert len(first) == 3  # at once, not at the next tick
            assert first[0].expected_start_time >= before - dt.timedelta(seconds=1)

            def runs():
                return client.list_flow_runs(deployment_id=dep.id, newest_first=False, limit=None)

            # The loop keeps going: more slots come, and nobody picks them up,
            # so the older ones are marked Late.
            wait_until(lambda: len(runs()) >= 6 and any(r.state.name == "Late" for r in runs()),
                       "six runs with a late one")
            all_runs = runs()
            starts = [r.expected_start_time for r in all_runs]
            gaps = {(b - a).total_seconds() for a, b in zip(starts, starts[1:])}
            assert gaps == {2.0}  # every slot, none twice, none missed
            # Each run the loop made existed before its slot came.
            assert all(r.created <= r.expected_start_time for r in all_runs[3:])
            assert all(r.state.type == "SCHEDULED" for r in all_runs)
            assert client.get_deployment(dep.id).next_run_time == starts[0]
    finally:
        srv.stop()
