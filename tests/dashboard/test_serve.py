"""`flowdeck server start` serves the dashboard: the printed address, the
flags, a busy port, HTTPS with the server's certificate. Real processes."""
from __future__ import annotations

import re
import socket
import ssl
import urllib.request

import pytest

from support.processes import clean_env
from test_cli_errors import flowdeck, one_line_error
from test_tls import _tls_credentials, pki  # noqa: F401 - the fixture


def test_start_prints_the_dashboard_address_and_serves_it(server_process):
    server = server_process("--no-scheduler")
    url = server.dashboard_url()
    lines = server.stdout().splitlines()
    assert re.fullmatch(r"flowdeck server listening on 127\.0\.0\.1:\d+", lines[0])
    assert lines[1] == f"dashboard: {url}/"
    port = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", url).group(1)
    assert port != "4301", "--port 0 picks a free dashboard port too"
    with urllib.request.urlopen(url + "/deployments", timeout=20) as r:
        assert r.status == 200 and b"<h1>Deployments</h1>" in r.read()
    assert server.stop() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_ui_and_ui_port_flag(server_process):
    server = server_process("--no-scheduler", "--no-ui")
    # The client hint comes after where the dashboard line would be.
    out = server.wait_for_output("Point clients")
    assert "dashboard:" not in out
    assert server.stop() == 0
    port = free_port()
    server = server_process("--no-scheduler", env={"FLOWDECK_UI_PORT": str(port)})
    assert server.dashboard_url() == f"http://127.0.0.1:{port}"
    assert server.stop() == 0


def test_busy_ui_port_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        res = flowdeck("server", "start", "--port", "0", "--ui-port", str(port), env=clean_env(tmp_path / "home"))
    # One line and nothing else: the API did not start either.
    one_line_error(res, f"Error: dashboard port {port} is already in use")


def test_https_with_the_servers_certificate(server_process, pki):  # noqa: F811
    server = server_process("--no-scheduler", "--tls-cert", str(pki / "server.pem"),
                            "--tls-key", str(pki / "server-key.pem"), credentials=_tls_credentials(pki))
    url = server.dashboard_url()
    assert url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with urllib.request.urlopen(url + "/runs", timeout=20, context=ctx) as r:
        assert r.status == 200
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-flowdeck_session=") and "Secure" in cookie
    with pytest.raises(Exception):
        urllib.request.urlopen(url.replace("https", "http"), timeout=10)
    assert server.stop() == 0
