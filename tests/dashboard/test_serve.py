"""`flowdeck server start` serves the dashboard: the printed address, the
flags, a busy port, HTTPS with the server's certificate. Real processes."""
from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import lines_until

BIN = Path(sys.executable).parent


def start(tmp_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWDECK_")}
    env.update(FLOWDECK_HOME=str(tmp_path / "home"), FLOWDECK_LOG_LEVEL="WARNING", **(env_extra or {}))
    return subprocess.Popen([str(BIN / "flowdeck"), "server", "start", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def stop(proc) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        proc.stdout.close()
        proc.stderr.close()


def test_start_prints_the_dashboard_address_and_serves_it(tmp_path):
    proc = start(tmp_path, "--port", "0")
    try:
        out = lines_until(proc, r"^dashboard: ")
        assert re.fullmatch(r"flowdeck server listening on 127\.0\.0\.1:\d+", out[0])
        url = re.fullmatch(r"dashboard: (http://127\.0\.0\.1:(\d+)/)", out[1])
        assert url and url.group(2) != "4301", "--port 0 picks a free dashboard port too"
        with urllib.request.urlopen(url.group(1) + "deployments", timeout=20) as r:
            assert r.status == 200 and b"<h1>Deployments</h1>" in r.read()
    finally:
        assert stop(proc) == 0


def test_no_ui_and_ui_port_flag(tmp_path):
    proc = start(tmp_path, "--port", "0", "--no-ui")
    try:
        out = lines_until(proc, r"listening on")
        urlport = free_port()
        assert not any(line.startswith("dashboard:") for line in out)
    finally:
        assert stop(proc) == 0
    proc = start(tmp_path, "--port", "0", env_extra={"FLOWDECK_UI_PORT": str(urlport)})
    try:
        assert lines_until(proc, r"^dashboard: ")[-1] == f"dashboard: http://127.0.0.1:{urlport}/"
    finally:
        assert stop(proc) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_busy_ui_port_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = start(tmp_path, "--port", "0", "--ui-port", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip() == f"Error: dashboard port {port} is already in use"
    assert "listening" not in out, "nothing started"


def test_https_with_the_servers_certificate(tmp_path):
    from test_tls import _pem_cert, _pem_key, issue, make_ca

    ca = make_ca("dashboard test CA")
    key, cert = issue(ca, "flowdeck server", server=True)
    (tmp_path / "ca.pem").write_bytes(_pem_cert(ca[1]))
    (tmp_path / "server.pem").write_bytes(_pem_cert(cert))
    (tmp_path / "server-key.pem").write_bytes(_pem_key(key))
    proc = start(tmp_path, "--port", "0", "--tls-cert", str(tmp_path / "server.pem"),
                 "--tls-key", str(tmp_path / "server-key.pem"))
    try:
        url = lines_until(proc, r"^dashboard: ")[-1].split(" ", 1)[1]
        assert url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with urllib.request.urlopen(url + "runs", timeout=20, context=ctx) as r:
            assert r.status == 200
            cookie = r.headers["set-cookie"]
            assert cookie.startswith("__Host-flowdeck_session=") and "Secure" in cookie
        with pytest.raises(Exception):
            urllib.request.urlopen(url.replace("https", "http"), timeout=10)
    finally:
        assert stop(proc) == 0
