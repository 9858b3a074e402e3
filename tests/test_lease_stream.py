"""The lease stream, driven with the raw generated stub against an in-process
server with its background loops on (dispatcher, lease expiry, cancel push),
on every database backend.

Nothing here is timed with a clock. The dispatcher's safety tick is an hour, so
a run or a cancel that reaches a stream during a test was pushed by its event
(or the run's due time): that is what "at once" means. Leases last 30 s, so
none lapses under a slow test; the expiry tests use a second server whose
leases last 2 s, so expiry is quick to see."""
from __future__ import annotations

import collections
import datetime as dt
import queue
import threading
import time

import grpc
import pytest

from conftest import in_process_server
from flowdeck import exceptions as exc
from flowdeck.v1 import agent_service_pb2 as apb
from flowdeck.v1 import agent_service_pb2_grpc as agrpc
from support.waiting import wait_for_state as wait_state
from support.waiting import wait_until

TTL = 30.0
SHORT = 2.0  # the expiry tests' server
NOW = lambda: dt.datetime.now(dt.timezone.utc)  # noqa: E731


def _lease_server(home, database_url, ttl: float):
    return in_process_server(home, background=True, database_url=database_url, lease_ttl_seconds=ttl,
                             scheduler_enabled=False, dispatcher_safety_tick_seconds=3600)


@pytest.fixture(scope="module")
def lease_server(database_url, tmp_path_factory):
    server = _lease_server(tmp_path_factory.mktemp("lease-home"), database_url, TTL)
    yield server.address
    server.stop()


@pytest.fixture(scope="module")
def short_lease_server(database_url, tmp_path_factory):
    """Its lease expiry starts one TTL after it did: made only for the tests that need it."""
    server = _lease_server(tmp_path_factory.mktemp("short-lease-home"), database_url, SHORT)
    yield server.address
    server.stop()


def _client(address):
    from flowdeck.client import FlowdeckClient

    c = FlowdeckClient(address, timeout=20)
    c.address_for_streams = address
    return c


@pytest.fixture
def api(lease_server, db):
    """A client on the background-loop server, on a clean database."""
    with _client(lease_server) as c:
        yield c


@pytest.fixture
def short_api(short_lease_server, db):
    """The same on the server whose leases last SHORT seconds."""
    with _client(short_lease_server) as c:
        yield c


class Stream:
    """One lease stream over the raw stub; responses collected on a thread."""

    def __init__(self, address: str, first: apb.LeaseRequest | None):
        self.channel = grpc.insecure_channel(address)
        self.out: queue.Queue = queue.Queue()
        self.responses: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.done = threading.Event()

        def requests():
            if first is not None:
                yield first
            while True:
                m = self.out.get()
                if m is None:
                    return
                yield m

        self.call = agrpc.AgentServiceStub(self.channel).Lease(requests())
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for r in self.call:
                self.responses.put(r)
        except grpc.RpcError as e:
            self.error = e
        finally:
            self.done.set()

    def send(self, **kind):
        self.out.put(apb.LeaseRequest(**kind))

    def next(self, kind: str | None = None, timeout: float = 30.0) -> apb.LeaseResponse:
        try:
            r = self.responses.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message on the stream in {timeout} s") from None
        if kind is not None:
            assert r.WhichOneof("kind") == kind, r
        return r

    def status(self, timeout: float = 30.0):
        assert self.done.wait(timeout), "the stream did not end"
        return self.error.code() if self.error else grpc.StatusCode.OK

    def close(self):
        self.out.put(None)
        self.call.cancel()
        self.channel.close()


def hello(queues, capacity=5, agent_id="", name="test-agent", ttl=None):
    h = apb.AgentHello(agent_id=agent_id, agent_name=name, work_queues=queues, capacity=capacity)
    if ttl is not None:
        h.lease_ttl.FromNanoseconds(int(ttl * 1e9))
    return apb.LeaseRequest(hello=h)


def connect(api, queues, **kw) -> tuple[Stream, apb.AgentWelcome]:
    s = Stream(api.address_for_streams, hello(queues, **kw))
    return s, s.next("welcome").welcome


@pytest.fixture
def streams():
    made = []
    yield made
    for s in made:
        s.close()


def setup(api, name="q", tags=("t",), deployment="d", **queue_fields):
    """A deployment and a work queue that serves its runs (by their tags)."""
    dep, _ = api.create_deployment(deployment, flow_name="f", tags=list(tags),
                                   flow_data={"encoding": "text", "blob": "{}"})
    api.create_work_queue(name, tags=list(tags), **queue_fields)
    return dep


def holders(api, runs) -> dict[str, int]:
    """Agent name -> how many of these runs it holds (from the database)."""
    held = [api.get_flow_run(r.id).lease for r in runs]
    return dict(collections.Counter(lease.agent_name for lease in held if lease is not None))


def when(ts) -> dt.datetime:
    return ts.ToDatetime(tzinfo=dt.timezone.utc)


# -- hello ---------------------------------------------------------------------------

def test_hello_first_and_validated(api, streams):
    setup(api)
    cases = [
        (apb.LeaseRequest(heartbeat=apb.AgentHeartbeat()), grpc.StatusCode.INVALID_ARGUMENT, "must be a hello"),
        (None, grpc.StatusCode.INVALID_ARGUMENT, "before the agent sent a hello"),
        (hello(["nope"]), grpc.StatusCode.NOT_FOUND, "'nope'"),
        (hello([]), grpc.StatusCode.INVALID_ARGUMENT, "hello.work_queues"),
        (hello(["q"], capacity=-1), grpc.StatusCode.INVALID_ARGUMENT, "hello.capacity -1"),
        (hello(["q"], agent_id="not-a-uuid"), grpc.StatusCode.INVALID_ARGUMENT, "hello.agent_id 'not-a-uuid'"),
        (hello(["q"], ttl=-1.0), grpc.StatusCode.INVALID_ARGUMENT, "hello.lease_ttl"),
        (hello(["q"], ttl=0.0), grpc.StatusCode.OK, None),
    ]
    for first, code, text in cases:
        s = Stream(api.address_for_streams, first)
        streams.append(s)
        if first is None:
            s.out.put(None)  # end the stream without a word
        if code == grpc.StatusCode.OK:
            s.next("welcome")
            s.close()
            continue
        assert s.status() == code, first
        assert text in s.error.details()
    # Malformed later messages end the stream with INVALID_ARGUMENT too.
    for bad in (dict(hello=apb.AgentHello(work_queues=["q"])), {},
                dict(ack=apb.LeaseAck(lease_ids=["x"])),
                dict(heartbeat=apb.AgentHeartbeat(flow_run_ids=["not-an-id"]))):
        s, _ = connect(api, ["q"])
        streams.append(s)
        s.send(**bad)
        assert s.status() == grpc.StatusCode.INVALID_ARGUMENT, bad


def test_welcome_keeps_the_agent_id_across_reconnects(api, streams):
    setup(api)
    s, welcome = connect(api, ["q"], ttl=1.0)
    streams.append(s)
    assert welcome.agent_id and welcome.lease_ttl.ToNanoseconds() == int(1e9)  # shortened on request
    s.close()
    s2, again = connect(api, ["q"], agent_id=welcome.agent_id, ttl=60)
    streams.append(s2)
    assert again.agent_id == welcome.agent_id
    assert again.lease_ttl.ToNanoseconds() == int(TTL * 1e9)  # never longer than the server's


# -- leasing -----------------------------------------------------------------------------

def test_due_runs_are_pushed_at_once_and_future_runs_when_due(api, streams):
    dep = setup(api)
    s, welcome = connect(api, ["q"])
    streams.append(s)
    run = api.create_flow_run_from_deployment(deployment_id=dep.id, parameters={"x": 1})
    leased = s.next("leased_run").leased_run  # pushed by the run's creation
    assert leased.flow_run.id == run.id and leased.flow_run.parameters["x"] == 1
    assert leased.deployment.id == dep.id and leased.flow_data.encoding == "text"
    assert leased.flow_runner.type == "universal"
    lease = leased.lease
    assert lease.lease_id and lease.agent_id == welcome.agent_id and lease.agent_name == "test-agent"
    assert lease.fencing_token == 1
    leased_at = when(leased.server_time)
    assert run.created <= leased_at <= NOW()
    assert abs((when(lease.expire_time) - leased_at).total_seconds() - TTL) < 0.001  # one TTL from the lease
    held = api.get_flow_run(run.id)
    assert held.state.type == "PENDING" and held.lease.lease_id == lease.lease_id
    assert held.lease.agent_name == "test-agent"

    due = NOW() + dt.timedelta(seconds=1.0)
    later = api.create_flow_run_from_deployment(deployment_id=dep.id, expected_start_time=due)
    got = s.next("leased_run").leased_run  # the dispatcher woke at the due time
    assert got.flow_run.id == later.id
    assert when(got.server_time) >= due and NOW() >= due  # not before it was due


def test_capacity_queue_limit_and_acks(api, streams):
    dep = setup(api, concurrency_limit=3)
    runs = [api.create_flow_run_from_deployment(deployment_id=dep.id) for _ in range(5)]
    a, _ = connect(api, ["q"], capacity=2, name="a")
    streams.append(a)
    first = [a.next("leased_run").leased_run for _ in range(2)]
    a.send(ack=apb.LeaseAck(lease_ids=[first[0].lease.lease_id]))
    a.send(ack=apb.LeaseAck(lease_ids=[first[0].lease.lease_id]))  # twice: harmless
    b, _ = connect(api, ["q"], capacity=5, name="b")
    streams.append(b)
    b.next("leased_run")
    # b's hello made a dispatch pass with a at its capacity of 2 and the queue
    # one short of its limit of 3; what it leased is in the database by now.
    assert holders(api, runs) == {"a": 2, "b": 1}
    # One of a's runs finishes: a has room again, and the queue too.
    token = first[0].lease.fencing_token
    api.set_flow_run_state(first[0].flow_run.id, "RUNNING", fencing_token=token)
    api.set_flow_run_state(first[0].flow_run.id, "COMPLETED", fencing_token=token)
    # The freed slot goes to the agent with the most room (b), at once.
    got = b.next()
    assert got.WhichOneof("kind") == "leased_run"
    states = [api.get_flow_run(r.id).state.type for r in runs]
    assert states.count("PENDING") == 3 and states.count("COMPLETED") == 1 and states.count("SCHEDULED") == 1
    assert holders(api, runs) == {"a": 1, "b": 2}
    assert a.done.is_set() is False and b.done.is_set() is False


def test_paused_queue_leases_nothing_until_resumed(api, streams):
    dep = setup(api, is_paused=True)
    run = api.create_flow_run_from_deployment(deployment_id=dep.id)
    probe_dep = setup(api, name="open", tags=("u",), deployment="probe")
    s, _ = connect(api, ["q", "open"])
    streams.append(s)
    # A run on the agent's other queue, created after: the pass that leases it
    # also looks at the paused queue, with `run` due there.
    probe = api.create_flow_run_from_deployment(deployment_id=probe_dep.id)
    assert s.next("leased_run").leased_run.flow_run.id == probe.id
    assert api.get_flow_run(run.id).state.type == "SCHEDULED"
    q = api.get_work_queue_by_name("q")
    api.update_work_queue(q.id, is_paused=False)
    assert s.next("leased_run").leased_run.flow_run.id == run.id  # pushed by the resume


# -- fencing -------------------------------------------------------------------------------

def test_fencing_rejects_stale_and_foreign_tokens(api, streams):
    dep = setup(api)
    run = api.create_flow_run_from_deployment(deployment_id=dep.id)
    s, _ = connect(api, ["q"], capacity=2)
    streams.append(s)
    leased = s.next("leased_run").leased_run
    token = leased.lease.fencing_token
    with pytest.raises(exc.FailedPreconditionError, match="stale fencing token"):
        api.set_flow_run_state(run.id, "RUNNING", fencing_token=token + 1)
    assert api.get_flow_run(run.id).state.type == "PENDING"
    # Released and leased again: the old holder's token is now stale.
    s.send(release=apb.LeaseRelease(lease_id=leased.lease.lease_id))
    again = s.next("leased_run").leased_run
    assert again.flow_run.id == run.id and again.lease.fencing_token == token + 1
    assert again.lease.lease_id != leased.lease.lease_id
    with pytest.raises(exc.FailedPreconditionError, match="fencing token"):
        api.set_flow_run_state(run.id, "RUNNING", fencing_token=token)
    running = api.set_flow_run_state(run.id, "RUNNING", fencing_token=token + 1)
    assert running.state.type == "RUNNING"
    marker = api.create_flow_run_from_deployment(deployment_id=dep.id)
    held = s.next("leased_run").leased_run
    assert held.flow_run.id == marker.id
    s.send(release=apb.LeaseRelease(lease_id=again.lease.lease_id))  # a started run is not given back
    s.send(release=apb.LeaseRelease(lease_id=leased.lease.lease_id))  # an old lease: harmless
    s.send(release=apb.LeaseRelease(lease_id=held.lease.lease_id))  # un-started: given back
    # The stream handles its messages in order: the marker comes back after
    # the two releases before it were handled.
    back = s.next("leased_run").leased_run
    assert back.flow_run.id == marker.id and back.lease.fencing_token == held.lease.fencing_token + 1
    assert api.get_flow_run(run.id).state.type == "RUNNING"
    history = [h.message for h in api.get_flow_run(run.id).state_history]
    assert any("released by its agent" in m for m in history)


# -- expiry, release on close ------------------------------------------------------------------

def test_lapsed_leases_requeue_pending_and_crash_running(short_api, streams):
    api = short_api
    dep = setup(api)
    pending = api.create_flow_run_from_deployment(deployment_id=dep.id)
    s, _ = connect(api, ["q"], capacity=1, name="silent")
    streams.append(s)
    first = s.next("leased_run").leased_run
    assert first.flow_run.id == pending.id
    # No heartbeat: the un-started run goes back to the queue when its lease
    # lapses and (the stream being open with room) is leased again with a new token.
    again = s.next("leased_run").leased_run
    assert again.flow_run.id == pending.id and again.lease.fencing_token == first.lease.fencing_token + 1
    assert when(again.server_time) >= when(first.lease.expire_time)
    msgs = [h.message for h in api.get_flow_run(pending.id).state_history]
    assert any("expired before the run started" in m for m in msgs)

    api.set_flow_run_state(pending.id, "RUNNING", fencing_token=again.lease.fencing_token)
    crashed = wait_state(api, pending.id, "CRASHED")
    assert crashed.state.timestamp >= when(again.lease.expire_time)  # when the lease lapsed, not before
    assert "silent" in crashed.state.message and "stopped heartbeating" in crashed.state.message
    assert crashed.lease is None


def test_heartbeats_keep_leases(short_api, streams):
    api = short_api
    dep = setup(api)
    run = api.create_flow_run_from_deployment(deployment_id=dep.id)
    s, _ = connect(api, ["q"], capacity=1, name="beating")
    streams.append(s)
    leased = s.next("leased_run").leased_run
    api.set_flow_run_state(run.id, "RUNNING", fencing_token=leased.lease.fencing_token)
    before = api.get_flow_run(run.id).lease.expire_time
    # A canary: another agent's un-started run, leased later with the same TTL.
    # When it comes back to its silent agent, the expiry pass has run past
    # `before`, and would have crashed `run` had the heartbeats not kept it.
    canary = api.create_flow_run_from_deployment(deployment_id=dep.id)
    c, _ = connect(api, ["q"], capacity=1, name="canary")
    streams.append(c)
    lapses = c.next("leased_run").leased_run
    assert lapses.flow_run.id == canary.id and when(lapses.lease.expire_time) > before
    deadline = time.monotonic() + SHORT + 30
    while True:
        s.send(heartbeat=apb.AgentHeartbeat(flow_run_ids=[run.id]))
        try:
            back = c.responses.get(timeout=SHORT / 10)  # the heartbeat cadence
            break
        except queue.Empty:
            assert time.monotonic() < deadline, "the canary's lease never lapsed"
    assert back.leased_run.flow_run.id == canary.id
    got = api.get_flow_run(run.id)
    assert got.state.type == "RUNNING" and got.lease.expire_time > before


def test_closing_the_stream_releases_unstarted_runs_at_once(api, streams):
    dep = setup(api)
    started = api.create_flow_run_from_deployment(deployment_id=dep.id)
    unstarted = api.create_flow_run_from_deployment(deployment_id=dep.id,
                                                    expected_start_time=NOW() + dt.timedelta(seconds=0.2))
    a, _ = connect(api, ["q"], capacity=2, name="a")
    leases = {}
    for _ in range(2):
        lr = a.next("leased_run").leased_run
        leases[lr.flow_run.id] = lr.lease
    api.set_flow_run_state(started.id, "RUNNING", fencing_token=leases[started.id].fencing_token)
    b, _ = connect(api, ["q"], capacity=5, name="b")
    streams.append(b)
    a.close()
    moved = b.next("leased_run").leased_run
    assert moved.flow_run.id == unstarted.id
    assert moved.lease.fencing_token == leases[unstarted.id].fencing_token + 1
    # At once: given back because a's stream closed, not because its lease lapsed.
    history = [h.message for h in api.get_flow_run(unstarted.id).state_history]
    assert any("the lease stream of agent a closed" in m for m in history), history
    assert api.get_flow_run(started.id).state.type == "RUNNING"  # until its lease lapses


# -- cancellation --------------------------------------------------------------------------------

def test_cancel_is_pushed_down_the_holding_stream(api, streams):
    dep = setup(api)
    run = api.create_flow_run_from_deployment(deployment_id=dep.id)
    s, _ = connect(api, ["q"], capacity=1)
    streams.append(s)
    leased = s.next("leased_run").leased_run
    token = leased.lease.fencing_token
    api.set_flow_run_state(run.id, "RUNNING", fencing_token=token)
    assert api.cancel_flow_run(run.id).state.type == "RUNNING"  # the agent has to stop it
    cancel = s.next("cancel_run").cancel_run  # pushed by the cancel itself
    assert cancel.flow_run_id == run.id and cancel.lease_id == leased.lease.lease_id
    done = api.set_flow_run_state(run.id, "CANCELLED", fencing_token=token)
    assert done.state.type == "CANCELLED"
    # A scheduled run is cancelled at once, without any agent.
    other = api.create_flow_run_from_deployment(deployment_id=dep.id, expected_start_time=NOW() + dt.timedelta(hours=1))
    assert api.cancel_flow_run(other.id).state.type == "CANCELLED"


def test_cancel_with_the_agent_gone_ends_cancelled_when_the_lease_lapses(short_api, streams):
    api = short_api
    dep = setup(api)
    run = api.create_flow_run_from_deployment(deployment_id=dep.id)
    s, _ = connect(api, ["q"], capacity=1)
    leased = s.next("leased_run").leased_run
    api.set_flow_run_state(run.id, "RUNNING", fencing_token=leased.lease.fencing_token)
    s.close()
    api.cancel_flow_run(run.id)
    got = wait_state(api, run.id, "CANCELLED")
    assert "stopped heartbeating" in got.state.message
    assert "CRASHED" not in [h.type for h in got.state_history]


# -- several replicas on one Postgres ------------------------------------------------------------

def listeners(db) -> int:
    """How many connections to this database are listening for flowdeck's notifications."""
    from sqlalchemy import text

    from flowdeck.server.notify import CHANNEL

    with db.read() as s:
        return s.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND query = :q"), {"q": f"LISTEN {CHANNEL}"})


def test_replicas_push_through_listen_notify(database_url, tmp_path_factory, db, streams):
    """Agent on replica A, runs created and cancelled through replica B: A hears
    of them by LISTEN/NOTIFY (its safety tick is an hour here)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is for Postgres replicas")
    from flowdeck.client import FlowdeckClient

    servers = []
    others = listeners(db)
    try:
        for name in ("a", "b"):
            servers.append(_lease_server(tmp_path_factory.mktemp(f"replica-{name}"), database_url, TTL))
        b = FlowdeckClient(servers[1].address, timeout=20)
        b.address_for_streams = servers[0].address
        dep = setup(b)
        s, _ = connect(b, ["q"], capacity=1)  # on replica A
        streams.append(s)
        # (Other servers of this module listen on the same database too.)
        wait_until(lambda: listeners(db) >= others + 2, "both replicas' LISTEN connections")
        run = b.create_flow_run_from_deployment(deployment_id=dep.id)
        leased = s.next("leased_run").leased_run
        assert leased.flow_run.id == run.id
        b.set_flow_run_state(run.id, "RUNNING", fencing_token=leased.lease.fencing_token)
        b.cancel_flow_run(run.id)
        assert s.next("cancel_run").cancel_run.flow_run_id == run.id
        b.close()
    finally:
        for server in servers:
            server.stop()


def test_a_server_without_background_loops_refuses_agents(server, client, streams):
    """The embedded default and background=False servers do not dispatch: an
    agent is told so (UNAVAILABLE, it retries) instead of waiting forever."""
    client.create_work_queue("q")
    s = Stream(server.address, hello(["q"]))
    streams.append(s)
    assert s.status() == grpc.StatusCode.UNAVAILABLE
    assert "not dispatching" in s.error.details()
