"""`scripts/bench.py docker`: runs in containers next to runs in processes.

* due -> RUNNING: one `flowdeck agent start` (limit 10) serves a deployment
  with the universal runner (a fresh process per run) and one with the Docker
  runner (a fresh container per run, image from `flowdeck image build`). For
  each: `--runs` runs one after another (each due now, the next once it has
  finished), then a burst of `--burst` runs due at the same moment; from each
  run's expected start time to its RUNNING report (the flow process is up and
  has loaded the flow).
* container start overhead: `python3 -c pass` as a container (create, start,
  wait, remove through the Engine API) against the same as a host process
  (Debian's /usr/bin/python3, as in the base image).

Needs a Docker Engine (scripts/docker-daemon start) and the base image
(scripts/docker-base-image).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from bench_agents import flowdeck_exe, ms, report  # noqa: F401 - report: bench.py calls it

NOOP_FLOW = "from flowdeck import flow\n\n\n@flow(log_prints=False)\ndef noop(i: int = 0):\n    return i\n"
IMAGE = "local/flowdeck-bench:latest"
# The base image's python is Debian's; the same one on the host, when there.
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--runs", type=int, default=20, help="serial runs per runner (default 20)")
    p.add_argument("--burst", type=int, default=10, help="runs due at once per runner (default 10)")
    p.add_argument("--base", default="local/python:bookworm", help="base image for the flowdeck image")
    p.add_argument("--json", action="store_true")


def _build_image(base: str) -> str:
    r = subprocess.run([flowdeck_exe(), "image", "build", "--base", base, "--tag", IMAGE, "--quiet"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"flowdeck image build failed: {(r.stdout + r.stderr).strip()}")
    print(r.stdout.strip(), file=sys.stderr)
    return IMAGE


def _wait_running(client, run_ids: list[str], timeout: float = 120) -> dict[str, float]:
    """run id -> seconds from expected start to RUNNING, once all have finished."""
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    out = {}
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            run = client.get_flow_run(run_id)
            if run.state.is_terminal:
                if run.state.type != "COMPLETED":
                    raise SystemExit(f"run {run_id} ended {run.state.type}: {run.state.message}")
                out[run_id] = (run.start_time - run.expected_start_time).total_seconds()
                pending.discard(run_id)
        time.sleep(0.05)
    if pending:
        raise SystemExit(f"{len(pending)} runs did not finish within {timeout:.0f}s")
    return out


def _due_to_running(client, dep_id: str, runs: int, burst: int) -> dict:
    serial = []
    for i in range(runs):
        run = client.create_flow_run_from_deployment(deployment_id=dep_id, parameters={"i": i})
        serial += list(_wait_running(client, [run.id]).values())
    due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    made = [client.create_flow_run_from_deployment(deployment_id=dep_id, parameters={"i": i}, expected_start_time=due)
            for i in range(burst)]
    together = list(_wait_running(client, [r.id for r in made]).values())
    return {"serial": ms(serial), f"burst_of_{burst}": ms(together)}


def _start_overhead(image: str, n: int = 10) -> dict:
    import docker

    engine = docker.from_env()
    in_container, on_host = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        c = engine.containers.create(image, ["python3", "-c", "pass"], network_mode="host", init=True)
        c.start()
        c.wait()
        c.remove()
        in_container.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([HOST_PYTHON, "-c", "pass"], check=True)
        on_host.append(time.perf_counter() - t0)
    extra = [a - b for a, b in zip(sorted(in_container), sorted(on_host))]
    return {"container_python_pass": ms(in_container), "host_python_pass": ms(on_host), "overhead": ms(extra)}


def run(args, ServerProcess, bench_database, admin_url: str) -> dict:
    from flowdeck.client import FlowdeckClient
    from flowdeck.flow_data import file_flow_data

    image = _build_image(args.base)
    results = {"container_start": _start_overhead(image)}
    with bench_database(args.database, admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "noop.py").write_text(NOOP_FLOW)
        server = ServerProcess(url)
        client = FlowdeckClient(server.address, timeout=60)
        agent = None
        try:
            client.create_work_queue("bench")
            flow_data = file_flow_data(tmp / "noop.py", "noop")
            runners = {"subprocess (universal)": {"type": "universal"},
                       "docker": {"type": "docker", "config": {"image": image, "volumes": [f"{tmp}:{tmp}:ro"],
                                                               "stream_output": False}}}
            agent = subprocess.Popen([flowdeck_exe(), "agent", "start", "-q", "bench", "--limit", "10",
                                      "--log-level", "WARNING"], env=dict(os.environ, FLOWDECK_API_URL=server.address),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2.5)
            for name, runner in runners.items():
                dep, _ = client.create_deployment(name.split()[0], flow_name="noop", flow_data=flow_data,
                                                  flow_runner=runner)
                results[f"due_to_running {name}"] = _due_to_running(client, dep.id, args.runs, args.burst)
                print(f"{name}: {json.dumps(results[f'due_to_running {name}'])}", file=sys.stderr, flush=True)
        finally:
            if agent is not None:
                agent.terminate()
                agent.wait(60)
            client.close()
            server.stop()
    return {args.database: results}  # the shape bench_agents.report prints
