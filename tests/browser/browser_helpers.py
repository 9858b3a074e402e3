"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (found
by its path; never `playwright install`), a real `flowdeck server start` and a
real agent as subprocesses. (Not a conftest.py: tests/ has one, and two
modules named conftest collide; test modules import these.)

Without Chromium the tests skip, except in CI (CI=true), where they fail."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import lines_until

BIN = Path(sys.executable).parent
SHOTS = Path(os.environ.get("FLOWDECK_TEST_SCREENSHOTS", "test-screenshots"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
FLOW = textwrap.dedent('''
    import time

    from flowdeck import flow, get_run_logger


    @flow
    def hello_world(name: str = "world", times: int = 1, wait: float = 2.0):
        for i in range(times):
            print(f"Hello {name}! ({i + 1}/{times})")
        time.sleep(wait)  # long enough for a page to see it RUNNING
        return times


    @flow
    def shouty(text: str = "<script>alert(1)</script>"):
        get_run_logger().info(text)
        print(text)
''')


def chromium_path() -> str:
    path = os.environ.get("FLOWDECK_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: CI must run the browser tests (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        # launch() gives every run a fresh, temporary user-data dir.
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A fresh context per test; a screenshot in test-screenshots/ when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs
    failed_before = request.session.testsfailed
    yield pg
    if request.session.testsfailed > failed_before:
        SHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-120:]
        pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    context.close()


class Flowdeck:
    """A real server (and optionally an agent) in a temporary FLOWDECK_HOME, and the CLI."""

    def __init__(self, tmp: Path, *server_args: str):
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWDECK_")}
        self.env.update(FLOWDECK_HOME=str(tmp / "home"), FLOWDECK_LOG_LEVEL="WARNING")
        self.procs: list[subprocess.Popen] = []
        self.server_args = server_args
        (tmp / "project" / "flows").mkdir(parents=True)
        (tmp / "project" / "flows" / "hello.py").write_text(FLOW)

    def start(self) -> "Flowdeck":
        proc = self._spawn(["server", "start", "--port", "0", *self.server_args])
        lines = lines_until(proc, r"^dashboard: ")
        self.api = re.search(r"listening on (\S+)", lines[0]).group(1)
        self.url = lines[-1].split(" ", 1)[1].rstrip("/")
        self.env["FLOWDECK_API_URL"] = self.api
        return self

    def _spawn(self, args) -> subprocess.Popen:
        proc = subprocess.Popen([str(BIN / "flowdeck"), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.env, cwd=self.tmp / "project")
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, key: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(self.env, **({"FLOWDECK_API_KEY": key} if key else {}))
        r = subprocess.run([str(BIN / "flowdeck"), *args], capture_output=True, text=True, env=env,
                           cwd=self.tmp / "project", timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"flowdeck {' '.join(args)} failed: {r.stdout}{r.stderr}")
        return r

    def deploy(self, spec: str, key: str | None = None) -> None:
        path = self.tmp / "project" / f"spec-{time.monotonic_ns()}.yaml"
        path.write_text(textwrap.dedent(spec))
        self.cli("deployment", "create", str(path), key=key)

    def agent(self, queue: str, key: str | None = None) -> None:
        if key:
            self.env["FLOWDECK_API_KEY"] = key
        self._spawn(["agent", "start", "--work-queue", queue, "--name", "browser-agent"])
        self.env.pop("FLOWDECK_API_KEY", None)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc.stdout:
                proc.stdout.close()


@pytest.fixture(scope="module")
def flowdeck(tmp_path_factory):
    """An open server (no --auth) with an agent on work queue `browser` (runs tagged `browser`)."""
    fd = Flowdeck(tmp_path_factory.mktemp("browser")).start()
    fd.cli("work-queue", "create", "browser", "--tag", "browser")
    fd.agent("browser")
    yield fd
    fd.stop()
