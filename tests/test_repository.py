"""The repository layer (server/flows.py, deployments.py, flow_runs.py, logs.py)
called directly in one transaction, on every backend."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from flowdeck.server import deployments, flow_runs, flows, logs, pagination
from flowdeck.core import states
from flowdeck.server.deployments import DeploymentInput
from flowdeck.core.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from flowdeck.server.flow_runs import FlowRunInput, RunFilter, StateInput
from flowdeck.server.models import DeploymentRow, FlowRow, FlowRunRow, FlowRunStateRow, LogRow

UTC = dt.timezone.utc
T0 = dt.datetime(2030, 1, 1, tzinfo=UTC)


def count(db, model) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def make_run(db, flow_name="f", **kw) -> FlowRunRow:
    with db.write() as s:
        return flow_runs.create(s, FlowRunInput(flow_name=flow_name, **kw))


def race(n: int, fn):
    """Run fn(i) in n threads released together; return results (or raise the first error)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


# -- flows ---------------------------------------------------------------------


def test_flow_get_or_create_is_idempotent(db):
    with db.write() as s:
        a = flows.get_or_create(s, "etl")
    with db.write() as s:
        b = flows.get_or_create(s, "etl")
    assert a.id == b.id and a.created == b.created
    assert count(db, FlowRow) == 1


def test_flow_get_or_create_race_makes_one_flow(db):
    def create(_):
        with db.write() as s:
            return flows.get_or_create(s, "racy").id

    ids = race(8, create)
    assert len(set(ids)) == 1
    assert count(db, FlowRow) == 1


def test_flow_lookups_and_not_found(db):
    with db.write() as s:
        f = flows.get_or_create(s, "lookup")
    with db.read() as s:
        assert flows.get(s, f.id).name == "lookup"
        assert flows.get_by_name(s, "lookup").id == f.id
        with pytest.raises(NotFoundError, match="nope"):
            flows.get_by_name(s, "nope")
        with pytest.raises(NotFoundError):
            flows.get(s, "00000000-0000-0000-0000-000000000000")


def test_flow_list_prefix_escapes_wildcards_and_paginates(db):
    with db.write() as s:
        for n in ["a_1", "a%2", "ab", "b", "a_3"]:
            flows.get_or_create(s, n)
    with db.read() as s:
        rows, token = flows.list_(s, 0, "", "a_")
        assert [r.name for r in rows] == ["a_1", "a_3"] and token == ""
        rows, token = flows.list_(s, 2, "", "")
        assert [r.name for r in rows] == ["a%2", "a_1"] and token
        rows2, token2 = flows.list_(s, 2, token, "")
        rows3, token3 = flows.list_(s, 2, token2, "")
    assert [r.name for r in rows2 + rows3] == ["a_3", "ab", "b"] and token3 == ""


# -- deployments -----------------------------------------------------------------


def dep_input(name="daily", flow_name="etl", **kw) -> DeploymentInput:
    return DeploymentInput(name=name, flow_name=flow_name, **kw)


def test_deployment_upsert_keeps_id_and_created(db):
    t1 = T0
    t2 = T0 + dt.timedelta(minutes=5)
    with db.write() as s:
        first, created = deployments.upsert(s, dep_input(tags=["a"], parameters={"x": 1}), now=t1)
    assert created
    with db.write() as s:
        second, created2 = deployments.upsert(s, dep_input(tags=["b"]), now=t2)
    assert not created2
    assert second.id == first.id and second.created == t1 and second.updated == t2
    with db.read() as s:
        got = deployments.get_by_name(s, "etl/daily")
    assert got.tags == ["b"] and got.parameters == {} and got.flow_name == "etl"
    assert count(db, DeploymentRow) == 1


def test_deployment_name_unique_per_flow(db):
    with db.write() as s:
        a, _ = deployments.upsert(s, dep_input("d", "f1"))
        b, _ = deployments.upsert(s, dep_input("d", "f2"))
        c, _ = deployments.upsert(s, dep_input("d", "f1"))
    assert a.id == c.id and a.id != b.id
    assert count(db, DeploymentRow) == 2
    # Renaming onto a taken name is refused and changes nothing.
    with db.write() as s:
        other, _ = deployments.upsert(s, dep_input("other", "f1"))
    from flowdeck.core.errors import AlreadyExistsError

    with pytest.raises(AlreadyExistsError, match="f1/d"):
        with db.write() as s:
            deployments.update(s, other.id, DeploymentInput(name="d"), ["name"])
    with db.read() as s:
        assert deployments.get(s, other.id).name == "other"


def test_deployment_unique_constraint_holds_below_the_upsert(db):
    from sqlalchemy.exc import IntegrityError

    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input("d", "f"))
    with pytest.raises(IntegrityError):
        with db.write() as s:
            s.add(DeploymentRow(flow_id=dep.flow_id, name="d"))
            s.flush()
    assert count(db, DeploymentRow) == 1


def test_deployment_refuses_unknown_runner_and_bad_names(db):
    with pytest.raises(InvalidArgumentError, match="flow_runner.type"):
        with db.write() as s:
            deployments.upsert(s, dep_input(flow_runner_type="warp"))
    with db.read() as s:
        for bad in ["noslash", "/d", "f/", "f/d/e"]:
            with pytest.raises(InvalidArgumentError, match="flow_name/deployment_name"):
                deployments.get_by_name(s, bad)
        with pytest.raises(NotFoundError):
            deployments.get_by_name(s, "f/missing")
    assert count(db, DeploymentRow) == 0 and count(db, FlowRow) == 0


def test_deployment_list_filters_by_flow_and_tags(db):
    with db.write() as s:
        deployments.upsert(s, dep_input("a", "f", tags=["x", "y"]))
        deployments.upsert(s, dep_input("b", "f", tags=["x"]))
        deployments.upsert(s, dep_input("c", "g", tags=["y", "x", "z"]))
        deployments.upsert(s, dep_input("d", "g", tags=[]))
    with db.read() as s:
        def names(**kw):
            rows, _ = deployments.list_(s, 0, "", **kw)
            return [f"{r.flow_name}/{r.name}" for r in rows]

        assert names() == ["f/a", "f/b", "g/c", "g/d"]
        assert names(flow_name="g") == ["g/c", "g/d"]
        assert names(tags=["x"]) == ["f/a", "f/b", "g/c"]
        assert names(tags=["x", "y"]) == ["f/a", "g/c"]
        assert names(tags=["z", "x", "y"]) == ["g/c"]
        assert names(tags=["nope"]) == []
        # A tag is matched whole, not as a substring or JSON fragment.
        assert names(tags=["x\""]) == [] and names(tags=["["]) == []
        assert names(flow_name="f", tags=["y"]) == ["f/a"]


def test_deployment_list_by_name_contains(db):
    with db.write() as s:
        for flow, name in [("etl", "Daily-EU"), ("etl", "daily_us"), ("ml", "train"), ("ml", "100%"),
                           ("Daily", "x")]:
            deployments.upsert(s, dep_input(name, flow, tags=["t"] if name != "train" else []))
    with db.read() as s:
        def names(text, size=0, **kw):
            seen, token = [], ""
            while True:
                rows, token = deployments.list_(s, size, token, name_contains=text, **kw)
                seen += [f"{r.flow_name}/{r.name}" for r in rows]
                if not token:
                    return seen

        assert names("daily") == ["Daily/x", "etl/Daily-EU", "etl/daily_us"]  # either case, flow name too
        assert names("DAILY", size=1) == ["Daily/x", "etl/Daily-EU", "etl/daily_us"]
        assert names("l/d") == ["etl/Daily-EU", "etl/daily_us"]  # across the "/"
        # LIKE's wildcards are plain characters.
        assert names("_") == ["etl/daily_us"] and names("%") == ["ml/100%"] and names("y%") == []
        assert names("daily", flow_name="etl", tags=["t"]) == ["etl/Daily-EU", "etl/daily_us"]
        assert names("") == ["Daily/x", "etl/Daily-EU", "etl/daily_us", "ml/100%", "ml/train"]
        with pytest.raises(InvalidArgumentError, match="name_contains"):
            deployments.list_(s, 0, "", name_contains="x" * 402)
        # A page token is bound to the text it was made for.
        _, token = deployments.list_(s, 1, "", name_contains="daily")
        with pytest.raises(InvalidArgumentError, match="page_token"):
            deployments.list_(s, 1, token, name_contains="train")


def test_deployment_last_run_is_its_latest_run_out_of_scheduled(db):
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input("d", "f"))
        other, _ = deployments.upsert(s, dep_input("e", "f"))
    assert dep.last_run is None

    def run(minutes, state, dep_id=dep.id):
        with db.write() as s:
            r = flow_runs.create(s, FlowRunInput(flow_name="f", deployment_id=dep_id,
                                                 expected_start_time=T0 + dt.timedelta(minutes=minutes)))
            if state != "SCHEDULED":
                flow_runs.set_state(s, r.id, StateInput(state), force=True)
            return r

    def last_runs():
        with db.read() as s:
            listed = {d.id: d.last_run for d in deployments.list_(s, 0, "")[0]}
            for d in (dep, other):
                assert deployments.get(s, d.id).last_run == listed[d.id]
                assert deployments.get_by_name(s, f"f/{d.name}").last_run == listed[d.id]
        return listed

    run(0, "SCHEDULED")
    assert last_runs() == {dep.id: None, other.id: None}
    done = run(10, "COMPLETED")
    run(20, "SCHEDULED")  # upcoming runs are not the last one
    run(30, "CANCELLED", other.id)  # nor another deployment's
    got = last_runs()[dep.id]
    assert (got.id, got.state_type, got.state_name) == (done.id, "COMPLETED", "Completed")
    assert got.expected_start_time == T0 + dt.timedelta(minutes=10) and got.end_time is not None
    run(5, "FAILED")  # an earlier run failing later is not the last one
    assert last_runs()[dep.id].id == done.id
    running = run(15, "RUNNING")
    assert last_runs()[dep.id].id == running.id and last_runs()[other.id].state_type == "CANCELLED"
    with db.write() as s:  # the deployment as an update returns it
        assert deployments.update(s, dep.id, DeploymentInput(description="x"), ["description"]).last_run.id \
            == running.id


def test_deployment_pagination_visits_each_once(db):
    with db.write() as s:
        for i in range(23):
            deployments.upsert(s, dep_input(f"d{i:02d}", "f"))
    seen, token, pages = [], "", 0
    with db.read() as s:
        while True:
            rows, token = deployments.list_(s, 5, token)
            seen += [r.name for r in rows]
            pages += 1
            if not token:
                break
    assert seen == [f"d{i:02d}" for i in range(23)] and pages == 5


def test_deployment_update_with_mask_and_delete(db):
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input(tags=["a"], description="old"))
    with db.write() as s:
        deployments.update(s, dep.id, DeploymentInput(tags=["z"], description="ignored"), ["tags"])
    with db.read() as s:
        got = deployments.get(s, dep.id)
    assert got.tags == ["z"] and got.description == "old"
    with db.write() as s:
        deployments.delete_(s, dep.id)
    with pytest.raises(NotFoundError):
        with db.write() as s:
            deployments.delete_(s, dep.id)
    assert count(db, FlowRow) == 1


# -- flow runs ---------------------------------------------------------------------


def test_flow_run_defaults(db):
    run = make_run(db, tags=["t"], parameters={"a": [1, 2]})
    assert run.state_type == "SCHEDULED" and run.state_name == "Scheduled"
    assert run.expected_start_time is not None and run.start_time is None
    assert "-" in run.name and run.flow_name == "f"
    with db.read() as s:
        got = flow_runs.get(s, run.id, history=True)
    assert [h.type for h in got.history] == ["SCHEDULED"]
    assert got.parameters == {"a": [1, 2]} and got.tags == ["t"]


def test_idempotency_key_returns_existing_run(db):
    a = make_run(db, idempotency_key="key-1", tags=["first"])
    b = make_run(db, idempotency_key="key-1", tags=["second"])
    c = make_run(db, idempotency_key="key-2")
    assert a.id == b.id != c.id and b.tags == ["first"]
    assert count(db, FlowRunRow) == 2
    assert count(db, FlowRunStateRow) == 2


def test_idempotency_key_race_makes_one_run(db):
    with db.write() as s:
        flows.get_or_create(s, "f")

    def create(_):
        with db.write() as s:
            return flow_runs.create(s, FlowRunInput(flow_name="f", idempotency_key="same")).id

    ids = race(8, create)
    assert len(set(ids)) == 1
    assert count(db, FlowRunRow) == 1
    assert count(db, FlowRunStateRow) == 1


def test_run_from_deployment_copies_and_overrides(db):
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input(parameters={"a": 1, "b": 2}, tags=["t", "u"],
                                                 flow_runner_type="subprocess",
                                                 flow_runner_config={"env": {"K": "V"}}))
    with db.write() as s:
        run = flow_runs.create_from_deployment(s, deployment_name="etl/daily", parameters={"b": 3},
                                               tags=["u", "v"], now=T0)
    assert run.parameters == {"a": 1, "b": 3} and run.tags == ["t", "u", "v"]
    assert run.flow_runner_type == "subprocess" and run.flow_runner_config == {"env": {"K": "V"}}
    assert run.deployment_id == dep.id and run.expected_start_time == T0
    with pytest.raises(NotFoundError):
        with db.write() as s:
            flow_runs.create_from_deployment(s, deployment_name="etl/nope")


def test_run_deployment_must_belong_to_flow(db):
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input("d", "f"))
    with pytest.raises(InvalidArgumentError, match="deployment_id"):
        make_run(db, flow_name="other", deployment_id=dep.id)
    assert count(db, FlowRunRow) == 0


@pytest.mark.parametrize(
    "path,refused",
    [
        (["RUNNING", "SCHEDULED"], ("RUNNING", "SCHEDULED")),
        (["RUNNING", "PENDING"], ("RUNNING", "PENDING")),
        (["COMPLETED", "RUNNING"], ("COMPLETED", "RUNNING")),
        (["FAILED", "SCHEDULED"], ("FAILED", "SCHEDULED")),
        (["CANCELLED", "PENDING"], ("CANCELLED", "PENDING")),
        (["RUNNING", "CRASHED", "COMPLETED"], ("CRASHED", "COMPLETED")),
    ],
)
def test_state_transition_refusals_name_both_states(db, path, refused):
    run = make_run(db)
    *allowed, last = path
    for t in allowed:
        with db.write() as s:
            flow_runs.set_state(s, run.id, StateInput(t))
    with pytest.raises(FailedPreconditionError) as info:
        with db.write() as s:
            flow_runs.set_state(s, run.id, StateInput(last))
    current, requested = refused
    assert current in info.value.message and requested in info.value.message
    assert info.value.metadata == {"current": current, "requested": requested}
    # The refusal changed nothing.
    with db.read() as s:
        got = flow_runs.get(s, run.id, history=True)
    assert got.state_type == current and len(got.history) == len(allowed) + 1
    # force moves it anyway.
    with db.write() as s:
        forced = flow_runs.set_state(s, run.id, StateInput(last), force=True)
    assert forced.state_type == last


def test_state_times_are_recorded(db):
    run = make_run(db)
    with db.write() as s:
        flow_runs.set_state(s, run.id, StateInput("PENDING"), now=T0)
    with db.write() as s:
        flow_runs.set_state(s, run.id, StateInput("RUNNING", "Running", "go"), now=T0 + dt.timedelta(seconds=1))
    with db.write() as s:
        done = flow_runs.set_state(s, run.id, StateInput("COMPLETED"), now=T0 + dt.timedelta(seconds=3.5))
    assert done.start_time == T0 + dt.timedelta(seconds=1)
    assert done.end_time == T0 + dt.timedelta(seconds=3.5)
    assert done.total_run_time == pytest.approx(2.5)
    with db.read() as s:
        hist = flow_runs.get(s, run.id, history=True).history
    assert [(h.type, h.name) for h in hist] == [
        ("SCHEDULED", "Scheduled"), ("PENDING", "Pending"), ("RUNNING", "Running"), ("COMPLETED", "Completed")]
    assert hist[2].message == "go"


def test_set_state_on_missing_run(db):
    with pytest.raises(NotFoundError):
        with db.write() as s:
            flow_runs.set_state(s, "00000000-0000-0000-0000-000000000000", StateInput("RUNNING"))


def _ids(db, f: RunFilter, size=0):
    with db.read() as s:
        rows, _ = flow_runs.list_(s, f, size, "")
    return [r.name for r in rows]


def test_run_list_filters_and_ordering(db):
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input("d", "f"))
    specs = [
        ("r0", "f", dep.id, ["a"], 0, "SCHEDULED"),
        ("r1", "f", None, ["a", "b"], 2, "RUNNING"),
        ("r2", "g", None, ["b"], 1, "SCHEDULED"),
        ("r3", "f", dep.id, [], 3, "COMPLETED"),
        ("r4", "g", None, ["a", "b", "c"], 4, "FAILED"),
    ]
    for name, flow, dep_id, tags, hours, state in specs:
        with db.write() as s:
            run = flow_runs.create(s, FlowRunInput(flow_name=flow, name=name, deployment_id=dep_id, tags=tags,
                                                   expected_start_time=T0 + dt.timedelta(hours=hours)))
            if state == "COMPLETED":
                flow_runs.set_state(s, run.id, StateInput("RUNNING"))
            if state != "SCHEDULED":
                flow_runs.set_state(s, run.id, StateInput(state))

    assert _ids(db, RunFilter()) == ["r0", "r2", "r1", "r3", "r4"]
    assert _ids(db, RunFilter(descending=True)) == ["r4", "r3", "r1", "r2", "r0"]
    assert _ids(db, RunFilter(flow_name="g")) == ["r2", "r4"]
    with db.read() as s:
        g_id = flows.get_by_name(s, "g").id
    assert _ids(db, RunFilter(flow_id=g_id)) == ["r2", "r4"]
    assert _ids(db, RunFilter(deployment_id=dep.id)) == ["r0", "r3"]
    assert _ids(db, RunFilter(state_types=["SCHEDULED"])) == ["r0", "r2"]
    assert _ids(db, RunFilter(state_types=["COMPLETED", "FAILED"])) == ["r3", "r4"]
    assert _ids(db, RunFilter(tags=["a"])) == ["r0", "r1", "r4"]
    assert _ids(db, RunFilter(tags=["b", "a"])) == ["r1", "r4"]
    assert _ids(db, RunFilter(tags=["c", "a", "b"])) == ["r4"]
    assert _ids(db, RunFilter(tags=["ab"])) == []
    window = RunFilter(expected_start_after=T0 + dt.timedelta(hours=1),
                       expected_start_before=T0 + dt.timedelta(hours=3))
    assert _ids(db, window) == ["r2", "r1", "r3"]  # both ends inclusive
    assert _ids(db, RunFilter(expected_start_after=T0 + dt.timedelta(hours=3, seconds=1))) == ["r4"]
    # A window given in another offset means the same instant.
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert _ids(db, RunFilter(expected_start_before=(T0 + dt.timedelta(hours=1)).astimezone(plus2))) == ["r0", "r2"]
    assert _ids(db, RunFilter(flow_name="f", state_types=["SCHEDULED", "RUNNING"], tags=["a"])) == ["r0", "r1"]
    assert _ids(db, RunFilter(name="r3")) == ["r3"]


def test_run_list_ties_are_stable_across_pages(db):
    with db.write() as s:
        for i in range(12):
            flow_runs.create(s, FlowRunInput(flow_name="f", name=f"r{i}", expected_start_time=T0))
    for descending in (False, True):
        seen, token = [], ""
        with db.read() as s:
            while True:
                rows, token = flow_runs.list_(s, RunFilter(descending=descending), 5, token)
                seen += [r.id for r in rows]
                if not token:
                    break
        assert len(seen) == 12 and len(set(seen)) == 12
        assert seen == sorted(seen, reverse=descending)


def _all_pages(db, f: RunFilter, size: int) -> list[str]:
    seen, token = [], ""
    with db.read() as s:
        while True:
            rows, token = flow_runs.list_(s, f, size, token)
            seen += [r.id for r in rows]
            if not token:
                return seen


def test_run_list_of_several_states_pages_in_order(db):
    """Several state types are read one index range each and merged: the pages
    are still in (expected start, id) order, ties included, each run once."""
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input("d", "f"))
    kinds = ["FAILED", "CRASHED", "COMPLETED", "SCHEDULED"]
    runs = []
    for i in range(26):
        with db.write() as s:
            run = flow_runs.create(s, FlowRunInput(flow_name="f", name=f"r{i}", deployment_id=dep.id if i % 2 else None,
                                                   expected_start_time=T0 + dt.timedelta(minutes=i // 3)))
            state = kinds[i % 4]
            if state != "SCHEDULED":
                flow_runs.set_state(s, run.id, StateInput(state), force=True)
        runs.append((run.expected_start_time, run.id, state, run.deployment_id))
    for descending in (False, True):
        for types, dep_id in [(["FAILED", "CRASHED"], ""), (["CRASHED", "SCHEDULED", "COMPLETED"], ""),
                              (["FAILED", "CRASHED", "COMPLETED"], dep.id)]:
            expected = [i for t, i, state, d in sorted(runs, reverse=descending)
                        if state in types and (not dep_id or d == dep_id)]
            for size in (1, 4, 50):
                f = RunFilter(state_types=types, deployment_id=dep_id, descending=descending)
                assert _all_pages(db, f, size) == expected, (descending, types, size)
        with db.read() as s:
            window = RunFilter(state_types=["FAILED", "CRASHED"], descending=descending,
                               expected_start_after=T0 + dt.timedelta(minutes=2),
                               expected_start_before=T0 + dt.timedelta(minutes=5))
            got = [r.id for r in flow_runs.list_(s, window, 0, "")[0]]
        assert got == [i for t, i, state, _ in sorted(runs, reverse=descending)
                       if state in ("FAILED", "CRASHED") and 2 <= (t - T0).seconds // 60 <= 5]


def test_page_tokens_and_sizes_are_validated(db):
    with db.read() as s:
        for bad in ["garbage", "eyJvIjogLTF9", "eyJvIjogImEifQ", "!!!", "e30"]:
            with pytest.raises(InvalidArgumentError, match="page_token"):
                flow_runs.list_(s, RunFilter(), 10, bad)
        with pytest.raises(InvalidArgumentError, match="page_size"):
            flows.list_(s, -1, "")
    order = pagination.Order(pagination.Key(FlowRunRow.expected_start_time, "expected_start_time"),
                             pagination.Key(FlowRunRow.id, "id"))
    token = pagination.encode([T0, "r1"], "runs", {"a": 1})
    assert pagination.decode(token, order, "runs", {"a": 1}) == [T0, "r1"]
    assert pagination.page_size(0) == pagination.DEFAULT_PAGE_SIZE
    assert pagination.page_size(10**9) == pagination.MAX_PAGE_SIZE


def _page_all(db, f: RunFilter, size: int, between_pages=lambda: None) -> list[str]:
    seen, token = [], ""
    while True:
        with db.read() as s:
            rows, token = flow_runs.list_(s, f, size, token)
        seen += [r.name for r in rows]
        if not token:
            return seen
        between_pages()


@pytest.mark.parametrize("descending", [False, True])
def test_paging_while_runs_are_inserted_never_repeats_or_skips(db, descending):
    """Runs inserted between pages (before, among and after those already
    seen) neither repeat a run nor push one out of view."""
    with db.write() as s:
        for i in range(20):
            flow_runs.create(s, FlowRunInput(flow_name="f", name=f"old{i:02d}",
                                             expected_start_time=T0 + dt.timedelta(minutes=2 * i)))
    inserted = []

    def insert_some():
        n = len(inserted)
        with db.write() as s:
            for minutes in (-10, 2 * n + 1, 2 * n, 100):  # earlier, among, a tie, later
                inserted.append(flow_runs.create(s, FlowRunInput(
                    flow_name="f", name=f"new{len(inserted):02d}",
                    expected_start_time=T0 + dt.timedelta(minutes=minutes))).name)

    seen = _page_all(db, RunFilter(descending=descending), 3, insert_some)
    assert len(seen) == len(set(seen))  # nothing twice
    assert {f"old{i:02d}" for i in range(20)} <= set(seen)  # nothing that was there vanished
    # What is seen is in order, even where new rows came in.
    with db.read() as s:
        starts = {r.name: (r.expected_start_time, r.id) for r in flow_runs.list_(s, RunFilter(), 1000, "")[0]}
    keys = [starts[n] for n in seen]
    assert keys == sorted(keys, reverse=descending)


def test_a_page_token_is_bound_to_its_filter(db):
    with db.write() as s:
        for i in range(5):
            flow_runs.create(s, FlowRunInput(flow_name="f" if i % 2 else "g", name=f"r{i}", tags=["t"],
                                             expected_start_time=T0 + dt.timedelta(minutes=i)))
        deployments.upsert(s, dep_input("a", "f"))
        deployments.upsert(s, dep_input("b", "f"))
    with db.read() as s:
        _, token = flow_runs.list_(s, RunFilter(tags=["t"]), 2, "")
        assert token
        # The same filter goes on; another one, or another order, is refused.
        flow_runs.list_(s, RunFilter(tags=["t"]), 2, token)
        for other in (RunFilter(), RunFilter(tags=["t"], flow_name="f"), RunFilter(tags=["t"], descending=True)):
            with pytest.raises(InvalidArgumentError, match="page_token") as err:
                flow_runs.list_(s, other, 2, token)
            assert "another filter" in err.value.message
        _, dep_token = deployments.list_(s, 1, "", flow_name="f")
        assert dep_token
        with pytest.raises(InvalidArgumentError, match="page_token"):
            deployments.list_(s, 1, dep_token, flow_name="g")
        # A token of one List is no token for another.
        with pytest.raises(InvalidArgumentError, match="page_token"):
            flows.list_(s, 1, token)


# -- logs --------------------------------------------------------------------------


def test_logs_create_and_list_in_time_order(db):
    run = make_run(db)
    recs = [logs.LogInput(run.id, T0 + dt.timedelta(seconds=i % 3), 10 * (i % 5), "lg", f"m{i}") for i in range(9)]
    with db.write() as s:
        assert logs.create_many(s, recs) == 9
        assert logs.create_many(s, []) == 0
    with db.read() as s:
        rows, token = logs.list_(s, run.id, 4, "")
        rest, token2 = logs.list_(s, run.id, 10, token)
        warn, _ = logs.list_(s, run.id, 0, "", min_level=30)
    got = rows + rest
    assert token and not token2 and len(got) == 9
    assert [r.timestamp for r in got] == sorted(r.timestamp for r in got)
    assert {r.level for r in warn} == {30, 40}


def test_logs_for_missing_run_change_nothing(db):
    run = make_run(db)
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(NotFoundError, match=missing):
        with db.write() as s:
            logs.create_many(s, [logs.LogInput(run.id, T0, 20, "", "ok"),
                                 logs.LogInput(missing, T0, 20, "", "no")])
    assert count(db, LogRow) == 0
    with pytest.raises(NotFoundError):
        with db.read() as s:
            logs.list_(s, missing, 0, "")


# -- deletion ----------------------------------------------------------------------


def test_deleting_a_flow_cascades(db):
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input("d", "f"))
        keep, _ = deployments.upsert(s, dep_input("d", "other"))
    with db.write() as s:
        run = flow_runs.create_from_deployment(s, deployment_id=dep.id)
        flow_runs.set_state(s, run.id, StateInput("RUNNING"))
        logs.create_many(s, [logs.LogInput(run.id, T0, 20, "", "hello")])
        other = flow_runs.create_from_deployment(s, deployment_id=keep.id)
    with db.write() as s:
        flows.delete_(s, dep.flow_id)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(DeploymentRow)) == 1
        assert list(s.scalars(select(FlowRunRow.id))) == [other.id]
        assert s.scalar(select(func.count()).select_from(FlowRunStateRow)) == 1
        assert s.scalar(select(func.count()).select_from(LogRow)) == 0


def test_deleting_a_run_removes_history_and_logs(db):
    run = make_run(db)
    with db.write() as s:
        flow_runs.set_state(s, run.id, StateInput("RUNNING"))
        logs.create_many(s, [logs.LogInput(run.id, T0, 20, "", "x")])
    with db.write() as s:
        flow_runs.delete_(s, run.id)
    assert count(db, FlowRunRow) == 0 and count(db, FlowRunStateRow) == 0 and count(db, LogRow) == 0
    with pytest.raises(NotFoundError):
        with db.write() as s:
            flow_runs.delete_(s, run.id)


def test_deleting_a_deployment_keeps_its_past_runs(db):
    with db.write() as s:
        dep, _ = deployments.upsert(s, dep_input("d", "f"))
    with db.write() as s:
        run = flow_runs.create_from_deployment(s, deployment_id=dep.id)
        flow_runs.set_state(s, run.id, StateInput("RUNNING"))
        flow_runs.set_state(s, run.id, StateInput("COMPLETED"))
    with db.write() as s:
        deployments.delete_(s, dep.id)
    with db.read() as s:
        got = flow_runs.get(s, run.id)
    assert got.deployment_id is None and got.state_type == states.COMPLETED
