"""`scripts/bench.py agents`: the lease stream under load (numbers for the closing note).

* latency: one agent, runs becoming due over a window; p50/p99 from each run's
  expected_start_time to the agent receiving its lease, and to RUNNING. The
  measuring agent is a raw-stub stream client that reports RUNNING at once (no
  process start); `--process-runs` more runs go through a real `flowdeck agent
  start` with the universal runner, measuring expected start -> RUNNING with
  a flow process started per run.
* fanout: 1,000 idle agent streams from one process (grpc.aio); the server's
  RSS and CPU while they idle, then dispatch latency while they are connected.
* throughput: 4 `flowdeck agent start` processes with the IN-PROCESS runner
  (type "in-process": a no-op flow run on a thread of the agent; benchmark
  only), N runs released at once by resuming a paused queue; runs/s from
  due to COMPLETED.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

NOOP_FLOW = "from flowdeck import flow\n\n\n@flow(log_prints=False)\ndef noop(i: int = 0):\n    return i\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--parts", default="latency,fanout,throughput",
                   help="comma-separated: latency, fanout, throughput")
    p.add_argument("--runs", type=int, default=200, help="latency: runs becoming due (default 200)")
    p.add_argument("--window", type=float, default=20.0, help="latency: seconds they become due over")
    p.add_argument("--process-runs", type=int, default=20, help="latency: runs through a real agent process")
    p.add_argument("--streams", type=int, default=1000, help="fanout: idle agent streams")
    p.add_argument("--throughput-runs", type=int, default=2000)
    p.add_argument("--json", action="store_true")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def ms(values: list[float]) -> dict:
    return {"p50_ms": round(pct(values, 50) * 1000, 1), "p99_ms": round(pct(values, 99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1) if values else None, "n": len(values)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _setup(client, tmp: pathlib.Path, queue: str, runner: str, paused: bool = False):
    (tmp / "noop.py").write_text(NOOP_FLOW)
    from flowdeck.flow_data import file_flow_data

    client.create_work_queue(queue, tags=[queue], is_paused=paused)
    dep, _ = client.create_deployment(queue, flow_name="noop", flow_data=file_flow_data(tmp / "noop.py", "noop"),
                                      tags=[queue], flow_runner={"type": runner})
    return dep


def _create_runs(client, dep_id: str, times: list[dt.datetime]) -> list:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda a: client.create_flow_run_from_deployment(
            deployment_id=dep_id, parameters={"i": a[0]}, expected_start_time=a[1]), enumerate(times)))


class StreamAgents:
    """Agent streams on one grpc.aio event loop in a thread; the first
    `active` of them run what they lease (report RUNNING then COMPLETED at
    once) and record when each lease arrived."""

    def __init__(self, address: str, queue: str, n: int, capacity: int = 1):
        import threading

        self.address, self.queue, self.n, self.capacity = address, queue, n, capacity
        self.received: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.connected = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fut = asyncio.run_coroutine_threadsafe(self._main(), self.loop)

    async def _main(self):
        import grpc

        from flowdeck.v1 import agent_service_pb2 as apb
        from flowdeck.v1 import agent_service_pb2_grpc as agrpc
        from flowdeck.v1 import common_pb2 as c
        from flowdeck.v1 import flow_run_service_pb2 as rpb
        from flowdeck.v1 import flow_run_service_pb2_grpc as rgrpc

        channel = grpc.aio.insecure_channel(self.address)
        stub = agrpc.AgentServiceStub(channel)
        runs = rgrpc.FlowRunServiceStub(channel)
        self.stop = asyncio.Event()

        async def one(i: int):
            q: asyncio.Queue = asyncio.Queue()

            async def requests():
                yield apb.LeaseRequest(hello=apb.AgentHello(agent_name=f"bench-{i}", work_queues=[self.queue],
                                                            capacity=self.capacity))
                while True:
                    m = await q.get()
                    if m is None:
                        return
                    yield m

            call = stub.Lease(requests())
            async for resp in call:
                kind = resp.WhichOneof("kind")
                if kind == "welcome":
                    self.connected += 1
                    if self.connected == self.n:
                        self.ready.set()
                elif kind == "leased_run":
                    lr = resp.leased_run
                    self.received[lr.flow_run.id] = time.time()
                    await q.put(apb.LeaseRequest(ack=apb.LeaseAck(lease_ids=[lr.lease.lease_id])))
                    for state in (c.STATE_TYPE_RUNNING, c.STATE_TYPE_COMPLETED):
                        await runs.SetFlowRunState(rpb.SetFlowRunStateRequest(
                            flow_run_id=lr.flow_run.id, state=c.State(type=state),
                            fencing_token=lr.lease.fencing_token))
                        if state == c.STATE_TYPE_RUNNING:
                            self.running[lr.flow_run.id] = time.time()

        tasks = []
        for i in range(self.n):
            tasks.append(asyncio.ensure_future(one(i)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        await self.stop.wait()
        for t in tasks:
            t.cancel()
        await channel.close()

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        try:
            self.fut.result(timeout=30)
        except Exception:  # noqa: BLE001
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


def _latencies(runs, received: dict[str, float]) -> list[float]:
    return [received[r.id] - r.expected_start_time.timestamp() for r in runs if r.id in received]


def bench_latency(server, client, tmp, args) -> dict:
    dep = _setup(client, tmp, "latency", "in-process")
    agents = StreamAgents(server.address, "latency", 1, capacity=50)
    agents.ready.wait(30)
    start = _now() + dt.timedelta(seconds=3)
    step = args.window / max(1, args.runs)
    runs = _create_runs(client, dep.id, [start + dt.timedelta(seconds=i * step) for i in range(args.runs)])
    deadline = time.time() + args.window + 30
    while len(agents.running) < len(runs) and time.time() < deadline:
        time.sleep(0.2)
    agents.close()
    out = {"lease_receipt": ms(_latencies(runs, agents.received)),
           "running_no_process": ms(_latencies(runs, agents.running))}
    if args.process_runs:
        dep2 = _setup(client, tmp, "process", "universal")
        agent = subprocess.Popen([flowdeck_exe(), "agent", "start", "-q", "process", "--limit", "4",
                                  "--log-level", "WARNING"], env=dict(os.environ, FLOWDECK_API_URL=server.address),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.5)
        start = _now() + dt.timedelta(seconds=2)
        runs2 = _create_runs(client, dep2.id, [start + dt.timedelta(seconds=i * 0.5) for i in range(args.process_runs)])
        deadline = time.time() + args.process_runs * 0.5 + 60
        got = {}
        while len(got) < len(runs2) and time.time() < deadline:
            time.sleep(0.5)
            for r in client.list_flow_runs(deployment_id=dep2.id, state_types=["COMPLETED", "RUNNING"], limit=None):
                if r.start_time:
                    got[r.id] = r.start_time.timestamp()
        agent.terminate()
        agent.wait(60)
        out["running_with_flow_process"] = ms(_latencies(runs2, got))
    return out


def bench_fanout(server, client, tmp, args) -> dict:
    dep = _setup(client, tmp, "fanout", "in-process")
    rss0, cpu0 = server.rss_mb, server.cpu_seconds
    agents = StreamAgents(server.address, "fanout", args.streams, capacity=1)
    t0 = time.time()
    agents.ready.wait(120)
    connect_s = time.time() - t0
    time.sleep(2)
    c0, w0 = server.cpu_seconds, time.time()
    time.sleep(10)
    idle_cpu = (server.cpu_seconds - c0) / (time.time() - w0) * 100
    idle_rss = server.rss_mb
    start = _now() + dt.timedelta(seconds=2)
    runs = _create_runs(client, dep.id, [start + dt.timedelta(seconds=i * 0.1) for i in range(50)])
    deadline = time.time() + 30
    while len(agents.running) < len(runs) and time.time() < deadline:
        time.sleep(0.2)
    lat = ms(_latencies(runs, agents.received))
    agents.close()
    return {"streams": agents.connected, "connect_seconds": round(connect_s, 2),
            "server_rss_mb_before": round(rss0, 1), "server_rss_mb_idle_connected": round(idle_rss, 1),
            "server_cpu_percent_idle_connected": round(idle_cpu, 1), "lease_receipt_while_connected": lat,
            "server_cpu_seconds_total": round(server.cpu_seconds - cpu0, 1)}


def bench_throughput(server, client, tmp, args) -> dict:
    dep = _setup(client, tmp, "throughput", "in-process", paused=True)
    n = args.throughput_runs
    _create_runs(client, dep.id, [_now()] * n)
    agents = [subprocess.Popen([flowdeck_exe(), "agent", "start", "-q", "throughput", "--limit", "64",
                                "--log-level", "WARNING", "--name", f"tp-{i}"],
                               env=dict(os.environ, FLOWDECK_API_URL=server.address),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(4)]
    time.sleep(3)
    q = client.get_work_queue_by_name("throughput")
    c0 = server.cpu_seconds
    t0 = _now()
    client.update_work_queue(q.id, is_paused=False)
    deadline = time.time() + 600
    while time.time() < deadline:
        done = client.list_flow_runs(deployment_id=dep.id, state_types=["COMPLETED"], limit=1)
        left = client.list_flow_runs(deployment_id=dep.id, state_types=["SCHEDULED", "PENDING", "RUNNING"], limit=1)
        if done and not left:
            break
        time.sleep(0.5)
    runs = client.list_flow_runs(deployment_id=dep.id, limit=None)
    end = max(r.end_time for r in runs if r.end_time)
    secs = (end - t0).total_seconds()
    for a in agents:
        a.terminate()
    for a in agents:
        a.wait(60)
    states = {}
    for r in runs:
        states[r.state.type] = states.get(r.state.type, 0) + 1
    return {"runs": n, "seconds": round(secs, 2), "runs_per_second": round(n / secs, 1), "states": states,
            "server_cpu_seconds": round(server.cpu_seconds - c0, 1), "runner": "in-process (benchmark only)"}


def flowdeck_exe() -> str:
    here = pathlib.Path(sys.executable).parent / "flowdeck"
    return str(here) if here.exists() else "flowdeck"


def run(args, ServerProcess, bench_database, admin_url: str) -> dict:
    from flowdeck.client import FlowdeckClient

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results: dict = {}
    for backend in backends:
        results[backend] = {}
        for part in parts:
            with bench_database(backend, admin_url) as url, tempfile.TemporaryDirectory() as tmp:
                server = ServerProcess(url)
                client = FlowdeckClient(server.address, timeout=60)
                try:
                    fn = {"latency": bench_latency, "fanout": bench_fanout, "throughput": bench_throughput}[part]
                    results[backend][part] = fn(server, client, pathlib.Path(tmp), args)
                finally:
                    client.close()
                    server.stop()
            print(f"{backend} {part}: {json.dumps(results[backend][part])}", file=sys.stderr, flush=True)
    return results


def report(results: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for backend, parts in results.items():
        print(f"== {backend}")
        for part, r in parts.items():
            print(f"  {part}:")
            for k, v in r.items():
                print(f"    {k}: {v}")
