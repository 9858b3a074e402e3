"""A real Prometheus for the tests: Debian's `prometheus` package (installed
by .ci/run), started on loopback with a temporary config and data directory.

Where it is missing the tests that need it are skipped with the reason,
except in CI (CI=true), where they fail: CI must run them.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess

import pytest
import yaml

from support.processes import stop_process
from support.waiting import wait_until

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def require(binary: str) -> str:
    """The binary's path; skip (locally) or fail (CI) when it is not installed."""
    path = binary if os.access(binary, os.X_OK) else shutil.which(pathlib.Path(binary).name)
    if not path:
        reason = f"{binary} is not installed (apt-get install prometheus; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Prometheus tests: {reason}")
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """`prometheus` scraping `targets` ({job: "host:port"}) every second,
    evaluating `rule_files`; `query()` asks its HTTP API."""

    def __init__(self, tmp: pathlib.Path, targets: dict[str, str], rule_files: list[pathlib.Path] = ()):
        self.tmp = tmp
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "prometheus.log"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                               for job, target in targets.items()],
        }
        self.config = tmp / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Prometheus":
        import httpx

        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [require(PROMETHEUS), f"--config.file={self.config}", f"--storage.tsdb.path={self.tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def ready():
            assert self.proc.poll() is None, self.log()
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, lambda: f"Prometheus to be ready:\n{self.log()}", every=0.2)
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def api(self, path: str, **params) -> dict:
        import httpx

        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> dict[tuple, float]:
        """An instant query: {label pairs (sorted, without __name__): value}."""
        out = {}
        for item in self.api("query", query=expr)["result"]:
            labels = tuple(sorted((k, v) for k, v in item["metric"].items() if k != "__name__"))
            out[labels] = float(item["value"][1])
        return out

    def value(self, expr: str) -> float | None:
        """The one value an expression gives (None: no series)."""
        got = self.query(expr)
        assert len(got) <= 1, f"{expr} gives several series: {got}"
        return next(iter(got.values()), None)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 20)
