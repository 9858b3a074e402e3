"""SQLite under concurrent writers: 16 client threads against an in-process server,
plus a second server process and a direct Database writer on the same file.
Nobody may see "database is locked", and every write must land."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

CLIENTS = 16
ROUNDS = 15  # per client: CreateDeployment, CreateFlowRunFromDeployment, SetFlowRunState
OTHER_PROCESS_CLIENTS = 4
DIRECT_WRITES = 60


def test_concurrent_writers_never_see_database_is_locked(tmp_path, server_process):
    from conftest import in_process_server
    from flowdeck.client import FlowdeckClient
    from flowdeck.server.db import Database
    from flowdeck.server.flow_runs import FlowRunInput, create
    from flowdeck.server.models import DeploymentRow, FlowRunRow, FlowRunStateRow

    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    server = in_process_server(tmp_path, database_url=url)
    address = server.address
    other = server_process(database_url=url)
    direct = Database(url, threads=2)

    errors: list[str] = []
    barrier = threading.Barrier(CLIENTS + OTHER_PROCESS_CLIENTS + 1)

    def client_work(i: int, addr: str, prefix: str):
        # retries=0: a lock error must surface here, not be hidden by a retry.
        client = FlowdeckClient(addr, timeout=120, retries=0)
        try:
            barrier.wait(timeout=60)
            for r in range(ROUNDS):
                dep, created = client.create_deployment(f"{prefix}{i}-{r}", flow_name=f"flow-{i % 3}", tags=[prefix])
                assert created
                run = client.create_flow_run_from_deployment(deployment_id=dep.id)
                client.set_flow_run_state(run.id, "RUNNING")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{prefix}{i}: {type(e).__name__}: {e}")
        finally:
            client.close()

    def direct_work():
        try:
            barrier.wait(timeout=60)
            for k in range(DIRECT_WRITES):
                with direct.write() as s:
                    create(s, FlowRunInput(flow_name="direct", name=f"direct-{k}"))
        except Exception as e:  # noqa: BLE001
            errors.append(f"direct: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client_work, args=(i, address, "in")) for i in range(CLIENTS)]
    threads += [threading.Thread(target=client_work, args=(i, other.address, "out"))
                for i in range(OTHER_PROCESS_CLIENTS)]
    threads.append(threading.Thread(target=direct_work))
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        assert not any(t.is_alive() for t in threads), "writers hung"
    finally:
        code = other.stop()
        server.stop()

    assert errors == []
    output = other.output()
    assert "database is locked" not in output and "Traceback" not in output, output
    assert code == 0

    writers = CLIENTS + OTHER_PROCESS_CLIENTS
    with direct.read() as s:
        assert s.scalar(select(func.count()).select_from(DeploymentRow)) == writers * ROUNDS
        assert s.scalar(select(func.count()).select_from(FlowRunRow)) == writers * ROUNDS + DIRECT_WRITES
        # Each client run: SCHEDULED then RUNNING; each direct run: SCHEDULED.
        assert s.scalar(select(func.count()).select_from(FlowRunStateRow)) == 2 * writers * ROUNDS + DIRECT_WRITES
        assert s.scalar(select(func.count()).select_from(FlowRunRow).where(FlowRunRow.state_type == "RUNNING")) \
            == writers * ROUNDS
    direct.close()


@pytest.mark.parametrize("writers", [16])
def test_direct_database_writers_do_not_collide(tmp_path, writers):
    """Many Database objects (as many processes would) writing one file at once."""
    from flowdeck.server import flows
    from flowdeck.server.db import Database
    from flowdeck.server.models import FlowRow

    url = f"sqlite:///{tmp_path / 'many.db'}"
    first = Database(url, threads=2)
    first.migrate()
    dbs = [first] + [Database(url, threads=2) for _ in range(writers - 1)]
    barrier = threading.Barrier(writers)
    errors: list[str] = []

    def work(i):
        try:
            barrier.wait(timeout=30)
            for k in range(20):
                with dbs[i].write() as s:
                    flows.get_or_create(s, f"w{i}-{k}")
                    flows.get_or_create(s, "shared")
        except Exception as e:  # noqa: BLE001
            errors.append(f"{i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with first.read() as s:
        assert s.scalar(select(func.count()).select_from(FlowRow)) == writers * 20 + 1
    for d in dbs:
        d.close()
