#!/usr/bin/env python3
"""flowdeck benchmarks (numbers for closing notes, not tests).

    .venv/bin/python scripts/bench.py api --database sqlite
    .venv/bin/python scripts/bench.py api --database postgres -n 4000

Each subcommand is one function registered in SUBCOMMANDS; add new ones with
@subcommand("name", "help") and a `configure(parser)` hook for its options.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import re
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Callable, Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

SUBCOMMANDS: dict[str, dict] = {}


def subcommand(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None] | None = None):
    def register(fn):
        SUBCOMMANDS[name] = {"run": fn, "help": help, "configure": configure}
        return fn

    return register


# -- shared helpers -------------------------------------------------------------


def flowdeck_exe() -> str:
    here = pathlib.Path(sys.executable).parent / "flowdeck"
    return str(here) if here.exists() else "flowdeck"


def rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def bench_database(kind: str, admin_url: str) -> Iterator[str]:
    """"" for SQLite (the embedded default under FLOWDECK_HOME), else the URL of a
    fresh Postgres database that is dropped afterwards."""
    if kind == "sqlite":
        yield ""
        return
    import psycopg

    name = f"flowdeck_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ServerProcess:
    """`flowdeck server start --port 0` in a temp FLOWDECK_HOME."""

    def __init__(self, database_url: str, extra_args: list[str] | None = None):
        self.home = tempfile.TemporaryDirectory(prefix="flowdeck-bench-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWDECK_")}
        env["FLOWDECK_HOME"] = self.home.name
        env["FLOWDECK_LOG_LEVEL"] = "WARNING"
        if database_url:
            env["FLOWDECK_DATABASE_URL"] = database_url
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([flowdeck_exe(), "server", "start", "--port", "0", *(extra_args or [])],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.address = self._wait_for_address()
        self.seconds_to_serving = self._wait_for_serving()

    def dashboard_url(self, timeout: float = 30) -> str:
        """The `dashboard: URL` line printed after the listening line."""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = self.proc.stdout.readline().strip()
                if line.startswith("dashboard: "):
                    return line.split(" ", 1)[1].rstrip("/")
        raise SystemExit("the server printed no dashboard address")

    def _wait_for_address(self, timeout: float = 60) -> str:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        while time.monotonic() - self.t0 < timeout:
            if sel.select(timeout=0.2):
                line = self.proc.stdout.readline()
                m = re.match(r"flowdeck server listening on (\S+)$", line.strip())
                if m:
                    return m.group(1)
                if not line and self.proc.poll() is not None:
                    break
        self.proc.kill()
        raise SystemExit(f"the server did not start:\n{self.proc.stderr.read()}")

    def _wait_for_serving(self) -> float:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while True:
                try:
                    resp = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.monotonic() - self.t0
                except grpc.RpcError:
                    pass
                time.sleep(0.01)

    @property
    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    @property
    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        self.home.cleanup()
        return self.proc.returncode


def run_threads(threads: int, calls: list[Callable[[], object]]) -> dict:
    """Run `calls` on `threads` threads; return calls/s and latency percentiles (ms)."""
    chunks = [calls[i::threads] for i in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def worker(i):
        barrier.wait()
        out = latencies[i]
        try:
            for call in chunks[i]:
                t = time.perf_counter()
                call()
                out.append(time.perf_counter() - t)
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    flat = sorted(x for lat in latencies for x in lat)
    q = statistics.quantiles(flat, n=100, method="inclusive")
    return {"calls": len(flat), "seconds": round(wall, 3), "calls_per_s": round(len(flat) / wall, 1),
            "p50_ms": round(q[49] * 1000, 2), "p99_ms": round(q[98] * 1000, 2)}


# -- api ------------------------------------------------------------------------


def configure_api(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("-n", "--calls", type=int, default=3000, help="calls per phase (default 3000)")
    p.add_argument("--threads", type=int, default=16, help="concurrent client threads (default 16)")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="pass ARG to `flowdeck server start` (e.g. --server-arg=--no-ui), repeatable")
    p.add_argument("--pg-admin-url", default=os.environ.get("FLOWDECK_BENCH_PG_ADMIN_URL", PG_ADMIN_URL),
                   help="where to create the throwaway Postgres database")
    p.add_argument("--tracing", action="store_true",
                   help="trace the server and the client (OTEL_* to an OTLP receiver in this process); "
                        "compare with a run without it, and with --server-arg=--no-metrics for metrics off")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--schema", action="store_true",
                   help="give every deployment a parameter schema (each run's parameters are checked against it)")


# What `--schema` gives the benchmark's deployments: the server checks each run against it.
BENCH_SCHEMA = {
    "type": "object",
    "properties": {
        "i": {"type": "integer", "minimum": 0, "position": 0},
        "x": {"type": "string", "enum": ["y", "z"], "position": 1},
        "extra": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None, "position": 2},
        "when": {"type": "string", "format": "date-time", "default": "2024-01-01T00:00:00Z", "position": 3},
    },
    "required": ["i", "extra"],
    "additionalProperties": False,
}


@contextlib.contextmanager
def otlp_sink(enabled: bool) -> Iterator[object]:
    """With `enabled`: OTEL_* for this process and the server it starts, spans
    sent to an OTLP receiver here (tests/support/otlp.py), which counts them."""
    if not enabled:
        yield None
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from support.otlp import OtlpReceiver

    receiver = OtlpReceiver().start()
    os.environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
                      OTEL_EXPORTER_OTLP_INSECURE="true")
    try:
        yield receiver
    finally:
        receiver.stop()


@subcommand("api", "CreateDeployment / GetDeploymentByName / CreateFlowRunFromDeployment under load",
            configure_api)
def bench_api(args) -> int:
    sys.path.insert(0, str(ROOT))
    from flowdeck.channels import make_channel
    from flowdeck.v1 import common_pb2 as c
    from flowdeck.v1 import deployment_service_pb2 as dpb
    from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc
    from flowdeck.v1 import flow_run_service_pb2 as rpb
    from flowdeck.v1 import flow_run_service_pb2_grpc as rgrpc

    results: dict = {"database": args.database, "threads": args.threads, "calls_per_phase": args.calls,
                     "parameter_schema": args.schema, "server_args": args.server_arg, "tracing": args.tracing}
    with bench_database(args.database, args.pg_admin_url) as url, otlp_sink(args.tracing) as sink:
        server = ServerProcess(url, args.server_arg)
        try:
            results["seconds_to_serving"] = round(server.seconds_to_serving, 3)
            time.sleep(1.0)
            results["idle_rss_mb"] = round(server.rss_mb, 1)
            # One channel per thread, like separate processes would have; the
            # generated stubs measure the server, not the client's conversions.
            channels = [make_channel(server.address, options=[("grpc.enable_retries", 0)]) for _ in range(args.threads)]
            deployments = [dgrpc.DeploymentServiceStub(ch) for ch in channels]
            flow_runs = [rgrpc.FlowRunServiceStub(ch) for ch in channels]
            tag = uuid.uuid4().hex[:6]
            names = [f"dep-{tag}-{i}" for i in range(args.calls)]

            def create(i):
                msg = c.Deployment(name=names[i], flow_name=f"bench-flow-{i % 10}", tags=["bench"])
                msg.parameters.update({"i": i, "x": "y"})
                if args.schema:
                    msg.parameter_schema.update(BENCH_SCHEMA)
                req = dpb.CreateDeploymentRequest(deployment=msg, request_id=str(uuid.uuid4()))
                return lambda: deployments[i % args.threads].CreateDeployment(req, timeout=60)

            def get(i):
                req = dpb.GetDeploymentByNameRequest(name=f"bench-flow-{i % 10}/{names[i]}")
                return lambda: deployments[i % args.threads].GetDeploymentByName(req, timeout=60)

            def run(i):
                req = rpb.CreateFlowRunFromDeploymentRequest(
                    deployment_name=f"bench-flow-{i % 10}/{names[i]}", request_id=str(uuid.uuid4()))
                req.parameters.update({"extra": i})
                return lambda: flow_runs[i % args.threads].CreateFlowRunFromDeployment(req, timeout=60)

            # Warm up channels and code paths (not measured).
            for stub in deployments:
                stub.ListDeployments(dpb.ListDeploymentsRequest(page_size=1), timeout=60)
            for label, make in (("CreateDeployment", create), ("GetDeploymentByName", get),
                                ("CreateFlowRunFromDeployment", run)):
                calls = [make(i) for i in range(args.calls)]
                server_cpu, client_cpu = server.cpu_seconds, time.process_time()
                results[label] = r = run_threads(args.threads, calls)
                # CPU per call does not depend on what else the machine is doing.
                r["server_cpu_ms_per_call"] = round((server.cpu_seconds - server_cpu) * 1000 / args.calls, 3)
                r["client_cpu_ms_per_call"] = round((time.process_time() - client_cpu) * 1000 / args.calls, 3)
            results["rss_after_load_mb"] = round(server.rss_mb, 1)
            for ch in channels:
                ch.close()
        finally:
            results["exit_code"] = server.stop()
        if sink is not None:
            results["spans_exported"] = len(sink.spans)

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"api benchmark on {results['database']} ({args.threads} client threads, {args.calls} calls per phase"
              f"{', deployments with a parameter schema' if args.schema else ''}; "
              f"server args {' '.join(args.server_arg) or '-'}; tracing {'on' if args.tracing else 'off'})")
        print(f"  start to SERVING: {results['seconds_to_serving']:.2f} s (load average {os.getloadavg()[0]:.1f})")
        print(f"  idle RSS:         {results['idle_rss_mb']:.1f} MB")
        for label in ("CreateDeployment", "GetDeploymentByName", "CreateFlowRunFromDeployment"):
            r = results[label]
            print(f"  {label:<28} {r['calls_per_s']:>8.1f} calls/s   p50 {r['p50_ms']:>7.2f} ms   "
                  f"p99 {r['p99_ms']:>7.2f} ms   server CPU {r['server_cpu_ms_per_call']:.2f} ms/call   "
                  f"client CPU {r['client_cpu_ms_per_call']:.2f} ms/call")
        print(f"  RSS after load:   {results['rss_after_load_mb']:.1f} MB")
        print(f"  exit code on SIGTERM: {results['exit_code']}")
        if "spans_exported" in results:
            print(f"  spans exported (server and client): {results['spans_exported']}")
    return 0


# -- storage --------------------------------------------------------------------


def configure_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--mib", type=int, default=10, help="flow bundle size in MiB (default 10)")
    p.add_argument("--repeat", type=int, default=5, help="uploads/downloads to take the median of (default 5)")
    p.add_argument("--specs", type=int, default=100, help="deployment specs in the S3 spec file (default 100)")
    p.add_argument("--pg-admin-url", default=os.environ.get("FLOWDECK_BENCH_PG_ADMIN_URL", PG_ADMIN_URL),
                   help="where to create the throwaway Postgres database")


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto in server mode on a loopback port (a real S3-compatible HTTP endpoint)."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@subcommand("storage", "FlowData upload/download MiB/s; deploy time of a many-spec file with S3 storage (moto)",
            configure_storage)
def bench_storage(args) -> int:
    from flowdeck.client import FlowdeckClient

    mib = args.mib
    with bench_database(args.database, args.pg_admin_url) as url:
        server = ServerProcess(url)
        try:
            with FlowdeckClient(server.address, timeout=120) as client:
                up, down = [], []
                for _ in range(args.repeat):
                    data = os.urandom(mib * 1024 * 1024)  # fresh content: a real store each time
                    t = time.perf_counter()
                    _, sha = client.upload_flow_data(data, flow_name="bench", filename="bundle.zip")
                    up.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    assert client.download_flow_data(sha) == data
                    down.append(time.perf_counter() - t)
            print(f"storage benchmark on {args.database}")
            print(f"  FlowData {mib} MiB upload:   {mib / statistics.median(up):7.1f} MiB/s (median of {len(up)})")
            print(f"  FlowData {mib} MiB download: {mib / statistics.median(down):7.1f} MiB/s (median of {len(down)})")

            with moto_s3() as endpoint, tempfile.TemporaryDirectory(prefix="flowdeck-bench-") as tmp:
                import boto3

                creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
                boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                               **creds).create_bucket(Bucket="bench")
                folder = pathlib.Path(tmp)
                (folder / "flow.py").write_text(
                    "from flowdeck import flow\n\n@flow\ndef hello(name: str = 'world'):\n    print(name)\n")
                lines = [
                    "from flowdeck.blocks.storage import S3StorageBlock",
                    "from flowdeck.deployments import DeploymentSpec",
                    f"S3 = S3StorageBlock(bucket='bench', endpoint_url={endpoint!r}, region_name='us-east-1',"
                    f" aws_access_key_id={creds['aws_access_key_id']!r},"
                    f" aws_secret_access_key={creds['aws_secret_access_key']!r})",
                ] + [f"DeploymentSpec(name='d{i}', flow_location='./flow.py', flow_storage=S3)"
                     for i in range(args.specs)]
                (folder / "deploy.py").write_text("\n".join(lines) + "\n")
                env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWDECK_")}
                env.update(FLOWDECK_HOME=str(folder / "home"), FLOWDECK_API_URL=server.address)
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    r = subprocess.run([flowdeck_exe(), "deployment", "create", "deploy.py"], cwd=folder, env=env,
                                       capture_output=True, text=True)
                    times.append(time.perf_counter() - t)
                    if r.returncode != 0:
                        raise SystemExit(f"deployment create failed:\n{r.stderr[-2000:]}")
                blocks = json.loads(subprocess.run([flowdeck_exe(), "storage", "ls", "--json", "--all"], env=env,
                                                   capture_output=True, text=True, check=True).stdout)
            print(f"  deployment create, {args.specs} specs, S3 storage: first {times[0]:.2f} s, "
                  f"again {times[1]:.2f} s / {times[2]:.2f} s (storage blocks afterwards: {len(blocks)})")
        finally:
            server.stop()
    return 0


# -- schedule (the scheduler pass; the work is in scripts/bench_schedule.py) --------


def configure_schedule(p: argparse.ArgumentParser) -> None:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import bench_schedule

    bench_schedule.add_arguments(p)


@subcommand("schedule", "10,000 scheduled deployments on Postgres: one scheduler pass to a 10-run horizon "
            "(100,000 runs), a steady-state pass, peak memory", configure_schedule)
def bench_schedule_cmd(args) -> int:
    import bench_schedule

    bench_schedule.report(bench_schedule.bench_schedule(args), args.json)
    return 0


# -- benchmarks kept in their own scripts --------------------------------------------


def module_subcommand(name: str, module: str, help: str) -> None:
    """A benchmark in scripts/MODULE.py with add_arguments(parser),
    run(args, ServerProcess, bench_database, admin_url) and report(results, as_json)."""
    def load():
        import importlib

        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        return importlib.import_module(module)

    def run(args) -> int:
        bench = load()
        bench.report(bench.run(args, ServerProcess, bench_database, PG_ADMIN_URL), args.json)
        return 0

    SUBCOMMANDS[name] = {"run": run, "help": help, "configure": lambda p: load().add_arguments(p)}


module_subcommand("agents", "bench_agents", "lease stream: dispatch latency (200 runs due over 20 s, one agent), "
                  "1,000 idle streams (server RSS/CPU), throughput with 4 agents (in-process runner)")
module_subcommand("docker", "bench_docker", "Docker runner: due -> RUNNING in containers next to processes "
                  "(20 serial, a burst of 10), container start overhead")


# -- ui -------------------------------------------------------------------------


def configure_ui(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deployments", type=int, default=1000)
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("-n", "--requests", type=int, default=100, help="requests per page (default 100)")
    p.add_argument("--paints", type=int, default=10, help="first paints of the runs page measured (default 10)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def _seed_ui(address: str, db_url: str, n_deps: int, n_runs: int) -> dict:
    """Deployments through the API; runs (and one run's log) written straight into
    the database, which is quicker than 100,000 calls and the same to read."""
    import datetime as dt
    import random

    import grpc
    from sqlalchemy import insert, select

    from flowdeck.server.db import Database
    from flowdeck.server.models import DeploymentRow, FlowRunRow, LogRow
    from flowdeck.v1 import common_pb2 as c
    from flowdeck.v1 import deployment_service_pb2 as dpb
    from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc

    with grpc.insecure_channel(address) as ch:
        stub = dgrpc.DeploymentServiceStub(ch)
        futures = []
        for i in range(n_deps):
            d = c.Deployment(name=f"deployment-{i:04d}", flow_name=f"flow-{i % 20:02d}", tags=[f"team-{i % 7}"])
            d.parameters.update({"i": i, "name": "bench"})
            if i % 10 == 0:
                d.schedule.interval.interval.seconds = 3600
            futures.append(stub.CreateDeployment.future(dpb.CreateDeploymentRequest(deployment=d), timeout=60))
        for f in futures:
            f.result()
    db = Database(db_url, threads=1)
    rnd = random.Random(7)
    now = dt.datetime.now(dt.timezone.utc)
    with db.read() as s:
        deps = s.execute(select(DeploymentRow.id, DeploymentRow.flow_id)).all()
    # A few runs in flight at any time; the rest ended or scheduled ahead.
    weights = [("COMPLETED", 7500), ("FAILED", 1000), ("CRASHED", 500), ("CANCELLED", 500), ("SCHEDULED", 490),
               ("RUNNING", 6), ("PENDING", 4)]
    kinds = [k for k, w in weights for _ in range(w)]
    sample = None
    for start in range(0, n_runs, 5000):
        rows = []
        for i in range(start, min(start + 5000, n_runs)):
            dep_id, flow_id = deps[i % len(deps)]
            kind = rnd.choice(kinds)
            expected = now + dt.timedelta(seconds=rnd.uniform(60, 7 * 86400)) if kind == "SCHEDULED" \
                else now - dt.timedelta(seconds=rnd.uniform(0, 30 * 86400))
            ended = kind in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
            rows.append(dict(
                id=str(uuid.uuid4()), name=f"run-{i}", flow_id=flow_id, deployment_id=dep_id,
                parameters={"i": i}, tags=["bench"], state_type=kind, state_name=kind.title(), state_message="",
                state_timestamp=expected, expected_start_time=expected,
                start_time=expected if kind != "SCHEDULED" else None,
                end_time=expected + dt.timedelta(seconds=30) if ended else None,
                total_run_time=30.0 if ended else 0.0, flow_runner_type="universal", created=expected,
                updated=expected))
        with db.write() as s:
            s.execute(insert(FlowRunRow), rows)
        sample = sample or next(r for r in rows if r["state_type"] == "COMPLETED")
    with db.write() as s:
        s.execute(insert(LogRow), [dict(flow_run_id=sample["id"], timestamp=now, level=20, logger_name="bench",
                                        message=f"log line {i}") for i in range(200)])
    db.close()
    return {"run": sample["id"], "deployment": deps[0][0]}


def _first_paints(url: str, count: int) -> list[float]:
    """First contentful paint (ms) of `url` in headless Chromium, a fresh context each time."""
    import shutil

    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    if not path:
        return []
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        for _ in range(count + 1):
            context = browser.new_context()
            page = context.new_page()
            page.goto(url, wait_until="load")
            # The paint entry may come after "load": wait for it (a page that never paints fails the bench).
            out.append(page.evaluate(FIRST_PAINT))
            context.close()
        browser.close()
    return out[1:]  # the first one warms the browser


FIRST_PAINT = """new Promise(resolve => new PerformanceObserver(list => {
    const fcp = list.getEntriesByName('first-contentful-paint')[0];
    if (fcp) resolve(fcp.startTime);
}).observe({type: 'paint', buffered: true}))"""


@subcommand("ui", "dashboard: server time per page (p50/p99) with 1,000 deployments and 100,000 runs; "
            "first paint of the runs page in headless Chromium", configure_ui)
def bench_ui(args) -> int:
    import httpx

    server = ServerProcess("", ["--no-scheduler"])
    results: dict = {"deployments": args.deployments, "runs": args.runs, "requests_per_page": args.requests}
    try:
        base = server.dashboard_url()
        t0 = time.monotonic()
        ids = _seed_ui(server.address, f"sqlite:///{server.home.name}/flowdeck.db", args.deployments, args.runs)
        results["seed_seconds"] = round(time.monotonic() - t0, 1)
        with httpx.Client(base_url=base, timeout=60) as client:
            def next_of(path: str) -> str:
                m = re.search(r'href="([^"]+)" rel="next"', client.get(path).text)
                return m.group(1).replace("&amp;", "&") if m else path

            pages = {
                "overview": "/",
                "overview counts (cached 15 s)": "/overview/counts",
                "deployments": "/deployments",
                "deployments page 2": next_of("/deployments"),
                "deployments search": "/deployments?q=deployment-09",
                "deployment": f"/deployments/{ids['deployment']}",
                "runs": "/runs",
                "runs page 2": next_of("/runs"),
                "runs failed, 7 days": "/runs?state=FAILED&state=CRASHED&since=7d",
                "runs upcoming": "/runs?view=upcoming",
                "run (200 log lines)": f"/runs/{ids['run']}",
                "work queues": "/work-queues",
                "storage": "/storage",
            }
            results["pages"] = {}
            for label, path in pages.items():
                for _ in range(5):
                    assert client.get(path).status_code == 200, path
                times, cpu = [], server.cpu_seconds
                for _ in range(args.requests):
                    t = time.perf_counter()
                    r = client.get(path)
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200, (path, r.status_code)
                q = statistics.quantiles(times, n=100, method="inclusive")
                # CPU per page (API and dashboard together) does not depend on the machine's load.
                results["pages"][label] = {"p50_ms": round(q[49] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
                                           "cpu_ms": round((server.cpu_seconds - cpu) * 1000 / args.requests, 1),
                                           "bytes": len(r.content)}
        paints = _first_paints(base + "/runs", args.paints)
        results["runs_first_paint_ms"] = ({"p50": round(statistics.median(paints), 1), "max": round(max(paints), 1)}
                                          if paints else "chromium not installed")
    finally:
        results["exit_code"] = server.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"dashboard benchmark: {args.deployments} deployments, {args.runs} runs, {args.requests} requests "
          f"per page (seeded in {results['seed_seconds']} s; load average {os.getloadavg()[0]:.1f})")
    for label, r in results["pages"].items():
        print(f"  {label:<30} p50 {r['p50_ms']:>7.1f} ms   p99 {r['p99_ms']:>7.1f} ms   "
              f"server CPU {r['cpu_ms']:>6.1f} ms   {r['bytes']:>7} bytes")
    print(f"  runs page first contentful paint (headless Chromium): {results['runs_first_paint_ms']}")
    return 0


# -- main -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    for name, spec in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=spec["help"])
        if spec["configure"]:
            spec["configure"](p)
    args = parser.parse_args(argv)
    return SUBCOMMANDS[args.bench]["run"](args)


if __name__ == "__main__":
    sys.exit(main())
