"""A user's mistake is one line: `flowdeck` as a process, exit code 1, one line
naming the cause, no Python traceback and no gRPC C-core log line; for a
server that will not start, and for a server the client cannot talk to (TLS
refused, a hung server, one killed during the call)."""
from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess

import pytest

from conftest import require_postgres
from support.processes import BIN, ServerProcess, clean_env
from support.waiting import wait_until
from test_tls import _tls_credentials, pki  # noqa: F401 - the fixture
# What gRPC's C core writes on its own: `E1129 02:07:29.862095   22596 add_port.cc:83] ...`.
C_CORE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]", re.M)


def flowdeck(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flowdeck"), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def one_line_error(res: subprocess.CompletedProcess, *expected: str) -> str:
    """The run failed with exit code 1 and said why in one `Error: ...` line,
    containing every `expected` text; returns that line."""
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out
    assert not C_CORE_LINE.search(out), out
    lines = out.strip().splitlines()
    assert res.returncode == 1, (res.returncode, out)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: "), lines
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a server that cannot start --------------------------------------------------------------

def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # --no-ui: the dashboard's fixed default port (4301) may be taken on a shared machine.
        res = flowdeck("server", "start", "--port", str(port), "--no-ui", env=clean_env(tmp_path / "home"))
        one_line_error(res, f"port {port} is already in use")
        # The C-core line is there when asked for: the check above can fail.
        loud = flowdeck("server", "start", "--port", str(port), "--no-ui",
                        env=clean_env(tmp_path / "home", GRPC_VERBOSITY="ERROR"))
        assert loud.returncode == 1 and C_CORE_LINE.search(loud.stderr), loud.stderr


@pytest.mark.parametrize("url, cause", [
    ("mysql://user@127.0.0.1/flowdeck", "unsupported database 'mysql'"),
    ("not a url", "invalid database URL 'not a url': not a database URL"),
    ("postgresql+asyncpg://u@127.0.0.1/db", "unsupported driver 'asyncpg'"),
])
def test_database_url_that_cannot_be_used(tmp_path, url, cause):
    res = flowdeck("server", "start", "--port", "0", "--database-url", url, env=clean_env(tmp_path))
    one_line_error(res, cause)


def test_postgres_with_nothing_listening(tmp_path):
    port = closed_port()
    res = flowdeck("server", "start", "--port", "0", env=clean_env(
        tmp_path, FLOWDECK_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/flowdeck"))
    one_line_error(res, f"cannot connect to Postgres at 127.0.0.1:{port}: connection refused")


def _missing_database_url() -> str:
    base = require_postgres().rsplit("/", 1)[0]
    return f"{base}/flowdeck_missing_{os.getpid()}"


def test_database_that_does_not_exist(tmp_path):
    url = _missing_database_url()
    name = url.rsplit("/", 1)[1]
    host = re.search(r"@([^/]+)/", url).group(1)
    res = flowdeck("server", "start", "--port", "0", "--database-url", url, env=clean_env(tmp_path))
    one_line_error(res, f'database "{name}" does not exist on {host}')


def test_create_admin_key_on_a_missing_database(tmp_path):
    url = _missing_database_url()
    res = flowdeck("server", "create-admin-key", "ops", "--database-url", url, env=clean_env(tmp_path))
    one_line_error(res, "does not exist")
    port = closed_port()
    res = flowdeck("server", "create-admin-key", "ops", "--database-url",
                   f"postgresql://postgres@127.0.0.1:{port}/flowdeck", env=clean_env(tmp_path))
    one_line_error(res, "connection refused")


@pytest.mark.parametrize("args, env, cause", [
    ([], {"FLOWDECK_PORT": "abc"}, "invalid port 'abc' from FLOWDECK_PORT"),
    (["--port", "70000"], {}, "invalid port 70000 from --port: must be 0 to 65535"),
    (["--log-level", "LOUD"], {}, "invalid log_level 'LOUD' from --log-level: must be one of DEBUG"),
    ([], {"FLOWDECK_DB_THREADS": "0"}, "invalid db_threads '0' from FLOWDECK_DB_THREADS"),
    ([], {"FLOWDECK_SHUTDOWN_GRACE": "soon"}, "invalid shutdown_grace 'soon' from FLOWDECK_SHUTDOWN_GRACE"),
])
def test_bad_settings(tmp_path, args, env, cause):
    res = flowdeck("server", "start", *args, env=clean_env(tmp_path, **env))
    one_line_error(res, cause)


def test_a_bad_setting_stops_the_embedded_default_too(tmp_path):
    res = flowdeck("deployment", "ls", env=clean_env(tmp_path, FLOWDECK_SCHEDULER_MAX_RUNS="many"))
    one_line_error(res, "invalid scheduler_max_runs 'many' from FLOWDECK_SCHEDULER_MAX_RUNS")


def test_flowdeck_home_that_cannot_be_written(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    res = flowdeck("server", "start", "--port", "0", env=clean_env(a_file / "home"))
    one_line_error(res, f"cannot create the folder {a_file / 'home'} for the SQLite database",
                   "set FLOWDECK_HOME to a folder you can write")
    if os.geteuid() != 0:  # root writes anywhere; a read-only folder only stops others
        ro = tmp_path / "read-only"
        ro.mkdir(mode=0o500)
        res = flowdeck("server", "start", "--port", "0", env=clean_env(ro))
        one_line_error(res, f"cannot open the SQLite database {ro / 'flowdeck.db'}")


def test_corrupt_sqlite_file(tmp_path):
    (tmp_path / "flowdeck.db").write_bytes(b"this was never a database " * 400)
    res = flowdeck("server", "start", "--port", "0", env=clean_env(tmp_path))
    one_line_error(res, f"{tmp_path / 'flowdeck.db'} is not a usable SQLite database")


def test_invalid_rrule(tmp_path):
    res = flowdeck("schedule", "preview", "--rrule", "FREQ", env=clean_env(tmp_path))
    line = one_line_error(res, "invalid schedule.rrule.rrule 'FREQ'", "'FREQ' is not NAME=VALUE")
    assert "unpack" not in line
    res = flowdeck("schedule", "preview", "--rrule", "BYHOUR=9", env=clean_env(tmp_path))
    one_line_error(res, "FREQ is required")


def test_bad_cron_schedule_in_a_python_spec_names_file_and_line(tmp_path):
    (tmp_path / "flow.py").write_text("from flowdeck import flow\n\n@flow\ndef hello():\n    pass\n")
    (tmp_path / "spec.py").write_text(
        "from flowdeck.deployments import DeploymentSpec\n"
        "from flowdeck.schedules import CronSchedule\n"
        "\n"
        "DeploymentSpec(flow_location='flow.py', name='nightly',\n"
        "               schedule=CronSchedule(cron='61 * * * *'))\n")
    res = subprocess.run([str(BIN / "flowdeck"), "deployment", "create", "--dry-run", "spec.py"],
                         capture_output=True, text=True, env=clean_env(tmp_path / "home"), cwd=tmp_path, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("Error: 'spec.py' at line 5: invalid schedule.cron.cron '61 * * * *'"), line


def test_server_logs_no_c_core_lines_for_a_refused_handshake(tmp_path, pki, server_process):  # noqa: F811
    """A plaintext client calling a TLS server: the server's log stays flowdeck's own."""
    server = server_process("--no-scheduler", "--tls-cert", str(pki / "server.pem"),
                            "--tls-key", str(pki / "server-key.pem"), credentials=_tls_credentials(pki))
    res = flowdeck("deployment", "ls", env=clean_env(tmp_path, FLOWDECK_API_URL=server.address,
                                                     FLOWDECK_API_TIMEOUT="5"))
    one_line_error(res, f"the flowdeck server at {server.address} closed the connection as soon as it opened")
    assert server.stop() == 0, server.output()
    assert not C_CORE_LINE.search(server.output()), server.output()


def test_start_prints_how_to_point_a_client_and_no_alembic_lines(server_process):
    server = server_process("--no-scheduler")
    server.wait_for_output(f"export FLOWDECK_API_URL={server.address}")
    lines = [line.strip() for line in server.stdout().splitlines()]
    assert lines[0] == f"flowdeck server listening on {server.address}", lines
    # (a dashboard line may come between: the hint is the two lines after "Point clients")
    hint = lines.index("Point clients (the CLI, agents, get_client()) at it with:")
    assert lines[hint + 1] == f"export FLOWDECK_API_URL={server.address}", lines
    assert server.stop() == 0, server.output()
    assert "alembic" not in server.output(), server.output()
    assert "SERVING" in server.output()


# -- a server the client cannot talk to ------------------------------------------------------

def _tls_env(home, address, pki, **files):  # noqa: F811
    return clean_env(home, FLOWDECK_API_URL=address, FLOWDECK_API_TIMEOUT="10",
                     **{f"FLOWDECK_API_TLS_{k.upper()}": str(pki / v) for k, v in files.items()})


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory, pki):  # noqa: F811
    server = ServerProcess(tmp_path_factory.mktemp("mtls"), "--no-scheduler", "--tls-cert", str(pki / "server.pem"),
                           "--tls-key", str(pki / "server-key.pem"), "--tls-client-ca", str(pki / "ca.pem"),
                           credentials=_tls_credentials(pki, client_cert=True))
    yield server.start(), server.home
    assert server.stop() == 0, server.output()


def test_mutual_tls_without_a_client_certificate(mtls_server, pki):  # noqa: F811
    address, home = mtls_server
    res = flowdeck("deployment", "ls", env=_tls_env(home, address, pki, ca="ca.pem"))
    one_line_error(res, f"TLS with the flowdeck server at {address} failed",
                   "it asks for a client certificate (mutual TLS); set FLOWDECK_API_TLS_CERT")
    res = flowdeck("deployment", "ls", env=_tls_env(home, address, pki, ca="ca.pem", cert="rogue.pem",
                                                    key="rogue-key.pem"))
    one_line_error(res, "it does not accept the client certificate in FLOWDECK_API_TLS_CERT")
    ok = flowdeck("deployment", "ls", env=_tls_env(home, address, pki, ca="ca.pem", cert="client.pem",
                                                   key="client-key.pem"))
    assert ok.returncode == 0, ok.stderr


def test_wrong_tls_server_name(mtls_server, pki):  # noqa: F811
    address, home = mtls_server
    env = _tls_env(home, address, pki, ca="ca.pem", cert="client.pem", key="client-key.pem")
    env["FLOWDECK_API_TLS_SERVER_NAME"] = "flowdeck.example.org"
    res = flowdeck("deployment", "ls", env=env)
    one_line_error(res, "its certificate is not for 'flowdeck.example.org' (FLOWDECK_API_TLS_SERVER_NAME)")


def test_wrong_ca(mtls_server, pki, tmp_path):  # noqa: F811
    from test_tls import _pem_cert, make_ca

    address, home = mtls_server
    (tmp_path / "other-ca.pem").write_bytes(_pem_cert(make_ca("another CA")[1]))
    env = _tls_env(home, address, pki, cert="client.pem", key="client-key.pem")
    env["FLOWDECK_API_TLS_CA"] = str(tmp_path / "other-ca.pem")
    line = one_line_error(flowdeck("deployment", "ls", env=env),
                          "its certificate is not signed by the CA in FLOWDECK_API_TLS_CA")
    assert not line.endswith("OK") and not line.endswith("OK)"), line


def test_a_server_that_does_not_answer(tmp_path, server_process):
    server = server_process("--no-scheduler")
    address = server.address
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        res = flowdeck("deployment", "ls", env=clean_env(tmp_path, FLOWDECK_API_URL=address, FLOWDECK_API_TIMEOUT="1"))
        one_line_error(res, f"the flowdeck server at {address} did not answer within 1s (tried 3 times)")
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert server.stop() == 0, server.output()


def _request_waiting_at(port: int) -> bool:
    """Whether an accepted connection on `port` holds a request its server has
    not read (/proc/net/tcp: the rx_queue of an ESTABLISHED socket holds more
    than HTTP/2's control frames, PING 17 bytes, WINDOW_UPDATE 13)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01" and int(queues.split(":")[1], 16) > 64:
                return True
    return False


def test_a_server_killed_during_the_call(tmp_path, server_process):
    """`flow-run logs --follow` polls; the server is stopped, the next poll
    reaches it unread, and it is killed: the call's connection is lost."""
    from flowdeck.client import FlowdeckClient

    server = server_process("--no-scheduler")
    address, port = server.address, server.port
    with FlowdeckClient(address, timeout=30) as c:
        run = c.create_flow_run(flow_name="doomed", state="RUNNING")
    follower = subprocess.Popen([str(BIN / "flowdeck"), "flow-run", "logs", run.id, "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=clean_env(tmp_path, FLOWDECK_API_URL=address))
    try:
        assert "No logs yet" in follower.stdout.readline()
        os.kill(server.proc.pid, signal.SIGSTOP)
        wait_until(lambda: _request_waiting_at(port), "the follower's next call to reach the server")
        os.kill(server.proc.pid, signal.SIGKILL)
        server.wait()
        out, err = follower.communicate(timeout=120)
    finally:
        if server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGKILL)
        if follower.poll() is None:
            follower.kill()
    res = subprocess.CompletedProcess(follower.args, follower.returncode, "", err)
    one_line_error(res, f"the connection to the flowdeck server at {address} was lost during the call",
                   "nothing answers there now: the server stopped")
    assert out == "", out


def test_unreachable_server_still_says_start_one(tmp_path):
    address = f"127.0.0.1:{closed_port()}"
    res = flowdeck("flow-run", "ls", env=clean_env(tmp_path, FLOWDECK_API_URL=address))
    one_line_error(res, f"cannot reach the flowdeck server at {address}; start one with `flowdeck server start`")


def test_bad_client_timeout_setting(tmp_path):
    res = flowdeck("flow-run", "ls", env=clean_env(tmp_path, FLOWDECK_API_URL="127.0.0.1:1",
                                                   FLOWDECK_API_TIMEOUT="soon"))
    one_line_error(res, "invalid FLOWDECK_API_TIMEOUT 'soon'")
