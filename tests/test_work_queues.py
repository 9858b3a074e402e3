"""Work queues: CRUD over the API, the matching rule, previews, and the atomic
lease (limits, pause, due time, no double leasing under racing claimers) on
every database backend."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from flowdeck import exceptions as exc

from conftest import run_cli

NOW = lambda: dt.datetime.now(dt.timezone.utc)  # noqa: E731


# -- CRUD over the API -------------------------------------------------------------

def test_create_get_list_update_delete(client):
    dep, _ = client.create_deployment("d", flow_name="f")
    q = client.create_work_queue("etl", description="nightly", tags=["prod"], deployment_ids=[dep.id],
                                 flow_runner_types=["subprocess"], concurrency_limit=3)
    assert q.name == "etl" and q.description == "nightly" and q.concurrency_limit == 3 and not q.is_paused
    assert q.filter.tags == ["prod"] and q.filter.deployment_ids == [dep.id]
    assert q.filter.flow_runner_types == ["subprocess"]
    assert client.get_work_queue(q.id) == q
    assert client.get_work_queue_by_name("etl") == q
    other = client.create_work_queue("adhoc")
    assert other.concurrency_limit is None and other.filter.tags == []
    assert [w.name for w in client.list_work_queues()] == ["adhoc", "etl"]
    assert [w.name for w in client.list_work_queues(limit=1)] == ["adhoc"]

    paused = client.update_work_queue(q.id, is_paused=True)
    assert paused.is_paused and paused.concurrency_limit == 3 and paused.description == "nightly"
    unlimited = client.update_work_queue(q.id, concurrency_limit=None)
    assert unlimited.concurrency_limit is None and unlimited.is_paused
    refiltered = client.update_work_queue(q.id, tags=["prod", "eu"])
    assert refiltered.filter.tags == ["prod", "eu"] and refiltered.filter.deployment_ids == [dep.id]
    renamed = client.update_work_queue(q.id, name="etl-2", description="")
    assert renamed.name == "etl-2" and renamed.description == "" and renamed.updated > q.updated
    assert renamed.created == q.created

    client.delete_work_queue(q.id)
    with pytest.raises(exc.NotFoundError):
        client.get_work_queue(q.id)
    with pytest.raises(exc.NotFoundError):
        client.get_work_queue_by_name("etl-2")
    with pytest.raises(exc.NotFoundError):
        client.delete_work_queue(q.id)


def test_validation_and_conflicts(client, server, wire):
    client.create_work_queue("q")
    with pytest.raises(exc.AlreadyExistsError, match="'q' already exists"):
        client.create_work_queue("q")
    other = client.create_work_queue("r")
    with pytest.raises(exc.AlreadyExistsError):
        client.update_work_queue(other.id, name="q")
    with pytest.raises(exc.InvalidArgumentError, match=r"work_queue.name ''"):
        client.create_work_queue("")
    with pytest.raises(exc.InvalidArgumentError, match=r"flow_runner_types\[0\] 'warp'"):
        client.create_work_queue("x", flow_runner_types=["warp"])
    with pytest.raises(exc.InvalidArgumentError, match=r"concurrency_limit -1"):
        client.create_work_queue("x", concurrency_limit=-1)
    with pytest.raises(exc.InvalidArgumentError, match=r"deployment_ids\[0\] 'nope': must be a UUID"):
        client.create_work_queue("x", deployment_ids=["nope"])
    ghost = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(exc.InvalidArgumentError, match="no such deployment"):
        client.create_work_queue("x", deployment_ids=[ghost])
    with pytest.raises(exc.InvalidArgumentError, match=r"tags\[0\]"):
        client.create_work_queue("x", tags=[""])
    with pytest.raises(exc.NotFoundError):
        client.get_work_queue(ghost)
    with pytest.raises(exc.InvalidArgumentError, match="id 'zzz'"):
        client.get_work_queue("zzz")
    # An unknown update path is refused and changes nothing.
    import grpc
    from google.protobuf import field_mask_pb2

    from flowdeck.v1 import common_pb2 as c
    from flowdeck.v1 import work_queue_service_pb2 as pb
    from flowdeck.v1 import work_queue_service_pb2_grpc as wqgrpc

    req = pb.UpdateWorkQueueRequest(work_queue=c.WorkQueue(id=other.id, name="zz"),
                                    update_mask=field_mask_pb2.FieldMask(paths=["name", "created"]))
    with pytest.raises(grpc.RpcError) as err:
        wire.stub(server.address, wqgrpc.WorkQueueServiceStub).UpdateWorkQueue(req)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask.paths 'created'" in err.value.details()
    assert client.get_work_queue(other.id).name == "r"
    assert "x" not in [w.name for w in client.list_work_queues()]


# -- matching and preview -----------------------------------------------------------

def test_matching_rule_and_preview(client):
    a, _ = client.create_deployment("a", flow_name="f", tags=["prod", "eu"])
    b, _ = client.create_deployment("b", flow_name="f", tags=["prod"], flow_runner={"type": "subprocess"})
    soon = NOW() + dt.timedelta(minutes=10)
    later = NOW() + dt.timedelta(hours=3)
    ra = client.create_flow_run_from_deployment(deployment_id=a.id, expected_start_time=soon)
    rb = client.create_flow_run_from_deployment(deployment_id=b.id, expected_start_time=soon)
    rb_late = client.create_flow_run_from_deployment(deployment_id=b.id, expected_start_time=later)
    client.create_flow_run(flow_name="f", tags=["prod", "eu"])  # no deployment: agents cannot run it
    done = client.create_flow_run_from_deployment(deployment_id=a.id)
    client.set_flow_run_state(done.id, "COMPLETED")

    def preview(**filters):
        q = client.create_work_queue(f"q{len(client.list_work_queues())}", **filters)
        return {r.id for r in client.preview_work_queue(q.id, within_seconds=3600)}

    assert preview() == {ra.id, rb.id}
    assert preview(tags=["prod"]) == {ra.id, rb.id}
    assert preview(tags=["prod", "eu"]) == {ra.id}
    assert preview(tags=["eu", "nope"]) == set()
    assert preview(deployment_ids=[b.id]) == {rb.id}
    assert preview(flow_runner_types=["subprocess"]) == {rb.id}
    assert preview(flow_runner_types=["universal"]) == {ra.id}
    assert preview(tags=["prod"], deployment_ids=[a.id], flow_runner_types=["subprocess"]) == set()
    wide = client.create_work_queue("wide")
    assert {r.id for r in client.preview_work_queue(wide.id, within_seconds=4 * 3600)} == {ra.id, rb.id, rb_late.id}
    runs = client.preview_work_queue(wide.id, within_seconds=4 * 3600)
    assert runs[-1].id == rb_late.id  # soonest first
    with pytest.raises(exc.InvalidArgumentError, match="within_seconds"):
        client.preview_work_queue(wide.id, within_seconds=-5)


# -- the lease itself (database level, every backend) ----------------------------------

def _setup(db, n_runs: int, *, tags=("t",), due_in: float = -1.0, limit=None, paused=False, name="q"):
    from flowdeck.server import deployments, flow_runs, work_queues

    with db.write() as s:
        dep, _ = deployments.upsert(s, deployments.DeploymentInput(name="d", flow_name="f", tags=list(tags)))
        q = work_queues.create(s, work_queues.WorkQueueInput(name=name, tags=list(tags), concurrency_limit=limit,
                                                             is_paused=paused))
        when = NOW() + dt.timedelta(seconds=due_in)
        ids = [flow_runs.create_from_deployment(s, deployment_id=dep.id, expected_start_time=when).id
               for _ in range(n_runs)]
        return q.id, ids


def _claim(db, qid, want, agent="a", now=None):
    from flowdeck.server import leasing

    with db.write() as s:
        return leasing.claim(s, queue_ids=[qid], agent_id=f"00000000-0000-4000-8000-{agent.rjust(12, '0')}",
                                agent_name=agent, want=want, ttl=30, now=now)


def test_claim_moves_runs_to_pending_with_a_growing_token(db):
    from flowdeck.server import flow_runs

    qid, ids = _setup(db, 3)
    got = _claim(db, qid, 2)
    assert len(got.leased) == 2 and qid not in got.dry
    lease = got.leased[0]
    run_id, lease_id = lease.run.id, lease.lease_id
    assert lease.run.fencing_token == 1
    assert lease.run.state_name == "Pending" and lease.deployment.name == "d"
    assert lease.runner_type == "universal"
    with db.read() as s:
        row = flow_runs.get(s, run_id, history=True)
        assert row.state_type == "PENDING" and row.lease_id == lease_id and row.work_queue_id == qid
        assert [h.type for h in row.history] == ["SCHEDULED", "PENDING"]
    assert len({lease.lease_id for lease in got.leased}) == 2  # a lease id per run
    rest = _claim(db, qid, 5)
    assert len(rest.leased) == 1 and qid in rest.dry
    assert _claim(db, qid, 5).leased == []


def test_claim_respects_due_time_pause_and_limit(db):
    from flowdeck.server import flow_runs, work_queues
    from flowdeck.server.flow_runs import StateInput

    qid, _ = _setup(db, 2, due_in=60)
    assert _claim(db, qid, 5).leased == []  # not due yet
    assert len(_claim(db, qid, 5, now=NOW() + dt.timedelta(seconds=61)).leased) == 2

    pid, _ = _setup(db, 2, paused=True, name="paused", tags=("p",))
    assert _claim(db, pid, 5).leased == [] and pid in _claim(db, pid, 5).dry
    with db.write() as s:
        work_queues.update(s, pid, work_queues.WorkQueueInput(is_paused=False), ["is_paused"])
    assert len(_claim(db, pid, 5).leased) == 2

    lid, ids = _setup(db, 5, limit=2, name="limited", tags=("l",))
    first = _claim(db, lid, 5)
    assert len(first.leased) == 2 and lid in first.dry
    assert _claim(db, lid, 5, agent="b").leased == []
    with db.write() as s:  # one finishes: one more may go
        flow_runs.set_state(s, first.leased[0].run.id, StateInput("RUNNING"), force=True)
        flow_runs.set_state(s, first.leased[0].run.id, StateInput("COMPLETED"))
    assert len(_claim(db, lid, 5, agent="b").leased) == 1
    with db.write() as s:
        assert work_queues.active_count(s, lid) == 2


def test_racing_claimers_never_share_a_run_or_break_the_limit(db):
    """Eight threads claim from 120 due runs: each run is leased exactly once;
    a second queue with a limit of 3 never has more than 3 leased."""
    qid, ids = _setup(db, 120)
    lid, _ = _setup(db, 20, limit=3, name="limited", tags=("l",))
    leased: list[str] = []
    limited: list[str] = []
    lock = threading.Lock()
    errors = []

    def worker(i):
        try:
            while True:
                got = _claim(db, qid, 7, agent=f"w{i}")
                more = _claim(db, lid, 7, agent=f"w{i}")
                with lock:
                    leased.extend(lease.run.id for lease in got.leased)
                    limited.extend(lease.run.id for lease in more.leased)
                if not got.leased:
                    return
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(leased) == sorted(ids)  # every run once, none twice
    assert len(limited) == 3


# -- CLI ------------------------------------------------------------------------------

def test_cli_work_queue_commands(server, client, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the CLI is not about the database: one backend is enough")
    env = {"FLOWDECK_API_URL": server.address}
    dep, _ = client.create_deployment("daily", flow_name="etl", tags=["prod"])
    client.create_flow_run_from_deployment(deployment_id=dep.id, expected_start_time=NOW() + dt.timedelta(minutes=5))
    r = run_cli("work-queue", "create", "prod", "--tag", "prod", "--deployment", "etl/daily",
                "--flow-runner-type", "universal", "--limit", "4", env=env)
    assert r.returncode == 0, r.stderr
    assert "Created work queue 'prod'" in r.stdout and "flowdeck agent start --work-queue 'prod'" in r.stdout
    r = run_cli("work-queue", "create", "prod", env=env)
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("work-queue", "ls", "--json", env=env)
    (q,) = json.loads(r.stdout)
    assert q["name"] == "prod" and q["concurrency_limit"] == 4 and q["filter"]["deployment_ids"] == [dep.id]
    assert set(q) == {"id", "name", "description", "filter", "is_paused", "concurrency_limit", "created", "updated",
                      "late_runs", "running_runs"}
    assert run_cli("work-queue", "pause", "prod", env=env).returncode == 0
    assert json.loads(run_cli("work-queue", "inspect", "prod", "--json", env=env).stdout)["is_paused"] is True
    assert run_cli("work-queue", "resume", "prod", env=env).returncode == 0
    r = run_cli("work-queue", "set-limit", "prod", "none", env=env)
    assert r.returncode == 0 and "none" in r.stdout
    got = json.loads(run_cli("work-queue", "inspect", q["id"], "--json", env=env).stdout)
    assert got["is_paused"] is False and got["concurrency_limit"] is None
    r = run_cli("work-queue", "inspect", "prod", env=env)
    assert r.returncode == 0 and "etl/daily" in r.stdout
    r = run_cli("work-queue", "preview", "prod", "--json", env=env)
    assert len(json.loads(r.stdout)) == 1
    r = run_cli("work-queue", "preview", "prod", env=env)
    assert r.returncode == 0 and "etl" in r.stdout
    assert run_cli("work-queue", "ls", env=env).returncode == 0
    r = run_cli("work-queue", "delete", "prod", env=env)
    assert r.returncode == 0 and json.loads(run_cli("work-queue", "ls", "--json", env=env).stdout) == []
    r = run_cli("work-queue", "inspect", "prod", env=env)
    assert r.returncode == 1 and "not found" in r.stderr


def test_preview_says_when_it_truncates(server, client):
    """PreviewWorkQueue shows at most 200 runs and says when it left some out."""
    import grpc

    from flowdeck.server import flow_runs, work_queues
    from flowdeck.v1 import work_queue_service_pb2 as wpb
    from flowdeck.v1 import work_queue_service_pb2_grpc as wrpc

    dep, _ = client.create_deployment("d", flow_name="f", tags=["t"])
    q = client.create_work_queue("q", tags=["t"])
    with server.server.db.write() as s:
        for i in range(work_queues.PREVIEW_LIMIT):
            flow_runs.create_from_deployment(s, deployment_id=dep.id, expected_start_time=NOW() + dt.timedelta(
                seconds=i))
    with grpc.insecure_channel(server.address) as channel:
        preview = wrpc.WorkQueueServiceStub(channel).PreviewWorkQueue
        full = preview(wpb.PreviewWorkQueueRequest(id=q.id, within_seconds=3600), timeout=20)
        assert len(full.flow_runs) == work_queues.PREVIEW_LIMIT and not full.truncated
        client.create_flow_run_from_deployment(deployment_id=dep.id, expected_start_time=NOW() + dt.timedelta(minutes=30))
        more = preview(wpb.PreviewWorkQueueRequest(id=q.id, within_seconds=3600), timeout=20)
        assert len(more.flow_runs) == work_queues.PREVIEW_LIMIT and more.truncated
        assert [r.id for r in more.flow_runs] == [r.id for r in full.flow_runs]  # soonest first


# -- late and running counts --------------------------------------------------------

def test_run_counts_per_queue_in_one_query(db):
    """Late: SCHEDULED runs named Late that match the queue. Running: runs
    leased through the queue, PENDING or RUNNING. One SELECT for the page."""
    from sqlalchemy import event

    from flowdeck.server import deployments, flow_runs, work_queues
    from flowdeck.server.deployments import DeploymentInput
    from flowdeck.server.flow_runs import StateInput
    from flowdeck.server.models import FlowRunRow
    from flowdeck.server.work_queues import WorkQueueInput

    with db.write() as s:
        prod, _ = deployments.upsert(s, DeploymentInput(name="d", flow_name="counts", tags=["prod"]))
        other, _ = deployments.upsert(s, DeploymentInput(name="e", flow_name="counts"))
        q_prod = work_queues.create(s, WorkQueueInput(name="prod", tags=["prod"]))
        q_all = work_queues.create(s, WorkQueueInput(name="all"))
        q_none = work_queues.create(s, WorkQueueInput(name="gpu", flow_runner_types=["subprocess"]))

        def run(dep, state="SCHEDULED", name="", queue=None):
            # The view is read-only: the lease's queue is set on the stored row.
            view = flow_runs.create_from_deployment(s, deployment_id=dep.id, state=StateInput(state, name))
            s.get(FlowRunRow, view.id).work_queue_id = queue.id if queue else None

        run(prod, name="Late")
        run(prod, name="Late")
        run(other, name="Late")
        run(prod)  # due or upcoming, not Late
        run(prod, "RUNNING", queue=q_prod)
        run(prod, "PENDING", queue=q_prod)
        run(other, "RUNNING", queue=q_all)
        run(prod, "COMPLETED", queue=q_prod)
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(db.read_engine, "before_cursor_execute", count)
    try:
        with db.read() as s:
            counts = work_queues.run_counts(s, [q_prod, q_all, q_none])
    finally:
        event.remove(db.read_engine, "before_cursor_execute", count)
    assert counts[q_prod.id] == (2, 2)
    assert counts[q_all.id] == (3, 1)
    assert counts[q_none.id] == (0, 0)
    assert len([st for st in statements if st.lstrip().upper().startswith("SELECT")]) == 1, statements
