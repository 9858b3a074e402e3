"""Real processes for tests: `flowdeck server start` on 127.0.0.1, and stopping
any child process the way an operator would (SIGTERM, then a kill)."""
from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping

from .waiting import wait_until

BIN = pathlib.Path(sys.executable).parent
LISTENING = re.compile(r"^flowdeck server listening on (\S+):(\d+)$")
DASHBOARD = re.compile(r"^dashboard: (\S+)$", re.M)


def clean_env(home: pathlib.Path | str, base: Mapping[str, str] | None = None, **extra) -> dict[str, str]:
    """`base` (default: this process's environment) without FLOWDECK_* settings,
    with FLOWDECK_HOME=`home` and `extra` on top."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("FLOWDECK_")}
    env["FLOWDECK_HOME"] = str(home)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds.
    Returns the exit code (negative: killed by that signal)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class ServerProcess:
    """`flowdeck server start` as a real process.

    `start()` runs it on port 0 (a restart keeps the port it got), reads the address from its "listening on" line, waits until the
    health service says SERVING and returns "host:port". stdout and stderr go
    to `log_path`, which `output()` reads (`stdout()`: what it printed on stdout
    alone); `wait_for_output()` waits for a line to come, `dashboard_url()` for
    the dashboard's address. `args` are more
    command-line flags (--auth, --tls-cert ..., --no-scheduler); `env` are more
    environment variables over a clean one (no FLOWDECK_* from the test run);
    `credentials` are what the health check needs against a TLS server.
    """

    def __init__(self, tmp: pathlib.Path, *args: str, env: Mapping | None = None, home: pathlib.Path | None = None,
                 database_url: str | None = None, exe: pathlib.Path | str | None = None,
                 cwd: pathlib.Path | None = None, base_env: Mapping[str, str] | None = None, credentials=None):
        self.tmp = pathlib.Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.home = home or self.tmp / "home"
        self.args = [*args, *(["--database-url", database_url] if database_url else [])]
        self.env = clean_env(self.home, base_env, **(env or {}))
        self.exe = str(exe or BIN / "flowdeck")
        self.cwd = cwd
        self.credentials = credentials
        self.port = 0
        self.host = ""
        self.address = ""
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._stdout: list[str] = []

    def start(self, timeout: float = 60) -> str:
        self.address = ""
        with open(self.log_path, "a") as err:
            self.proc = subprocess.Popen([self.exe, "server", "start", "--port", str(self.port), *self.args],
                                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True,
                                         env=self.env, cwd=self.cwd)
        listening = threading.Event()
        self._reader = threading.Thread(target=self._copy_stdout, args=(self.proc, listening), daemon=True)
        self._reader.start()
        try:
            if not listening.wait(timeout) or not self.address:
                raise AssertionError(f"`flowdeck server start` printed no listening line:\n{self.output()}")
            self._wait_serving(timeout)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        return self.address

    def _copy_stdout(self, proc: subprocess.Popen, listening: threading.Event) -> None:
        """Copy the server's stdout to the log; note the address on the way."""
        with open(self.log_path, "a") as log:
            for line in proc.stdout:
                self._stdout.append(line)
                log.write(line)
                log.flush()
                m = LISTENING.match(line.strip())
                if m and not listening.is_set():
                    self.host, self.port = m.group(1), int(m.group(2))
                    self.address = f"{self.host}:{self.port}"
                    listening.set()
        listening.set()  # the process ended without one: start() reports it

    def _wait_serving(self, timeout: float) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "[::]") else self.host
        target = f"{host}:{self.port}"
        channel = (grpc.secure_channel(target, self.credentials) if self.credentials is not None
                   else grpc.insecure_channel(target))
        serving = health_pb2.HealthCheckResponse.SERVING
        try:
            with channel:  # closing it ends the watch
                watch = health_pb2_grpc.HealthStub(channel).Watch(
                    health_pb2.HealthCheckRequest(service=""), timeout=timeout, wait_for_ready=True)
                for answer in watch:
                    if answer.status == serving:
                        return
        except grpc.RpcError as e:
            raise AssertionError(f"the server never said SERVING ({e.code().name}: {e.details()}):\n"
                                 f"{self.output()}") from None
        raise AssertionError(f"the server's health stream ended before SERVING:\n{self.output()}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then a kill after `timeout` s; the exit code (0: graceful)."""
        if self.proc is None:
            return 0
        stop_process(self.proc, timeout)
        return self.wait()

    def wait(self, timeout: float = 30) -> int:
        """Until the process ends by itself (a signal the test sent, a kill);
        its exit code, with all it printed in `output()`."""
        code = self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return code

    def output(self) -> str:
        """Everything the server printed, stdout and stderr, in one log."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stdout(self) -> str:
        """What the server printed on stdout (the listening line, the client hint)."""
        return "".join(self._stdout)

    def dashboard_url(self, timeout: float = 60) -> str:
        """The address on the `dashboard: URL` line the server prints after its
        listening line, without the trailing "/"."""
        self.wait_for_output("dashboard: ", timeout)  # stdout() holds each line before the log does
        return DASHBOARD.search(self.stdout()).group(1).rstrip("/")

    def wait_for_output(self, text: str, timeout: float = 60) -> str:
        """Until `text` is in `output()`, which is returned; fails at once when
        the process ends without printing it."""
        def printed() -> str | None:
            out = self.output()
            if text in out:
                return out
            if self.proc.poll() is not None:
                self.wait()  # the rest of its stdout is in the log
                out = self.output()
                if text in out:
                    return out
                raise AssertionError(f"the server exited ({self.proc.returncode}) without printing "
                                     f"{text!r}:\n{out}")
            return None

        return wait_until(printed, lambda: f"{text!r} from the server:\n{self.output()}", timeout)
