"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (found
by its path; never `playwright install`), a real `flowdeck server start` and a
real agent as subprocesses. (Not a conftest.py: tests/ has one, and two
modules named conftest collide; test modules import these.)

Without Chromium the tests skip, except in CI (CI=true), where they fail."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from support.processes import BIN, ServerProcess, clean_env, stop_process

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
    """A real server (support.processes.ServerProcess) and agents in a temporary
    FLOWDECK_HOME, and the CLI pointed at them."""

    def __init__(self, tmp: Path, *server_args: str):
        self.tmp = tmp
        self.server = ServerProcess(tmp / "server", *server_args, home=tmp / "home",
                                    env={"FLOWDECK_LOG_LEVEL": "WARNING"})
        self.env = clean_env(tmp / "home", FLOWDECK_LOG_LEVEL="WARNING")
        self.agents: list[subprocess.Popen] = []
        (tmp / "project" / "flows").mkdir(parents=True)
        (tmp / "project" / "flows" / "hello.py").write_text(FLOW)

    def start(self) -> "Flowdeck":
        self.api = self.server.start()
        self.url = self.server.dashboard_url()
        self.env["FLOWDECK_API_URL"] = self.api
        return self

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
        env = dict(self.env, **({"FLOWDECK_API_KEY": key} if key else {}))
        with open(self.tmp / f"agent-{len(self.agents)}.log", "w") as log:
            self.agents.append(subprocess.Popen(
                [str(BIN / "flowdeck"), "agent", "start", "--work-queue", queue, "--name", "browser-agent"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
                cwd=self.tmp / "project"))

    def stop(self) -> None:
        for proc in self.agents:
            stop_process(proc)
        self.server.stop()
        print(f"----- {self.server.log_path}\n{self.server.output()}")


@pytest.fixture(scope="module")
def flowdeck(tmp_path_factory):
    """An open server (no --auth) with an agent on work queue `browser` (runs tagged `browser`)."""
    fd = Flowdeck(tmp_path_factory.mktemp("browser")).start()
    fd.cli("work-queue", "create", "browser", "--tag", "browser")
    fd.agent("browser")
    yield fd
    fd.stop()
