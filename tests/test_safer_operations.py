"""Operations that are hard to undo say so: the last active admin key is not
revoked without --force, and a server stopped with Ctrl-C says how long its
grace is, and that a second Ctrl-C forces it."""
from __future__ import annotations

import os
import selectors
import signal
import time

import grpc
import pytest

from conftest import run_cli
from test_server_process import clean_env, start_server


def test_last_admin_key_is_not_revoked_without_force(auth_client, api_keys):
    from flowdeck.exceptions import FailedPreconditionError

    with pytest.raises(FailedPreconditionError) as info:
        auth_client.revoke_api_key("test-admin")
    assert info.value.reason == "LAST_ADMIN_KEY" and info.value.metadata["name"] == "test-admin"
    assert "last active admin key" in info.value.message and "--force" in info.value.message
    assert [k.name for k in auth_client.list_api_keys() if k.name == "test-admin"]  # still active

    _, second = auth_client.create_api_key("second-admin", scope="admin")
    assert auth_client.revoke_api_key("test-admin").revoked is not None  # another admin remains
    from flowdeck.client import FlowdeckClient

    with FlowdeckClient(auth_client.address, timeout=20, api_key=second) as admin:
        with pytest.raises(FailedPreconditionError):
            admin.revoke_api_key("second-admin")
        assert admin.revoke_api_key("second-admin", force=True).revoked is not None


def test_cli_revoke_of_the_last_admin_key(auth_server, api_keys, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the CLI is not about the database: one backend is enough")
    env = {"FLOWDECK_API_URL": auth_server.address, "FLOWDECK_API_KEY": api_keys["admin"]}
    res = run_cli("api-key", "revoke", "test-admin", env=env)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("Error: API key 'test-admin' is the last active admin key"), line
    res = run_cli("api-key", "revoke", "test-admin", "--force", env=env)
    assert res.returncode == 0, res.stderr
    assert "Revoked API key 'test-admin'" in res.stdout


def _wait_for_line(stream, text: str, timeout: float = 60) -> str:
    """Read `stream` line by line until one holds `text`; return everything read."""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=1):
            line = stream.readline()
            seen += line
            if text in line:
                return seen
            if not line:
                break
    raise AssertionError(f"{text!r} never came:\n{seen}")


def test_ctrl_c_says_the_grace_and_a_second_forces(tmp_path):
    """A download the test does not read keeps a call in flight, so the
    server waits out its grace until the second Ctrl-C."""
    from flowdeck.client import FlowdeckClient
    from flowdeck.v1 import flow_data_service_pb2 as fpb
    from flowdeck.v1 import flow_data_service_pb2_grpc as fgrpc

    proc, address, _ = start_server(clean_env(tmp_path, FLOWDECK_SHUTDOWN_GRACE="60"), "--no-scheduler")
    channel = grpc.insecure_channel(address)
    try:
        with FlowdeckClient(address, timeout=60) as c:
            _, sha = c.upload_flow_data(os.urandom(32 * 1024 * 1024), flow_name="big")
        download = fgrpc.FlowDataServiceStub(channel).DownloadFlowData(fpb.DownloadFlowDataRequest(sha256=sha),
                                                                        timeout=120)
        assert next(download).chunk  # the call is in the server's hands; the rest waits on this reader
        proc.send_signal(signal.SIGINT)
        first = _wait_for_line(proc.stderr, "shutting down")
        assert "in-flight calls get up to 60s to finish (Ctrl-C again to force)" in first, first
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        second = _wait_for_line(proc.stderr, "forcing shutdown")
        assert "cancelling in-flight calls now" in second
        rest = proc.communicate(timeout=30)[1]
    finally:
        channel.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "grace period is over" not in first + second + rest and "Traceback" not in first + second + rest
    assert "flowdeck server stopped" in rest


def test_interrupted_server_without_calls_in_flight_stops_at_once(tmp_path):
    proc, _, _ = start_server(clean_env(tmp_path, FLOWDECK_SHUTDOWN_GRACE="60"), "--no-scheduler")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "in-flight calls get up to 60s to finish" in err and "forcing" not in err
