"""Operations that are hard to undo say so: the last active admin key is not
revoked without --force, and a server stopped with Ctrl-C says how long its
grace is, and that a second Ctrl-C forces it."""
from __future__ import annotations

import os
import signal

import grpc
import pytest

from conftest import run_cli


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


def test_ctrl_c_says_the_grace_and_a_second_forces(server_process):
    """A download the test does not read keeps a call in flight, so the
    server waits out its grace until the second Ctrl-C."""
    from flowdeck.client import FlowdeckClient
    from flowdeck.v1 import flow_data_service_pb2 as fpb
    from flowdeck.v1 import flow_data_service_pb2_grpc as fgrpc

    server = server_process("--no-scheduler", env={"FLOWDECK_SHUTDOWN_GRACE": "60"})
    channel = grpc.insecure_channel(server.address)
    try:
        with FlowdeckClient(server.address, timeout=60) as c:
            _, sha = c.upload_flow_data(os.urandom(32 * 1024 * 1024), flow_name="big")
        download = fgrpc.FlowDataServiceStub(channel).DownloadFlowData(fpb.DownloadFlowDataRequest(sha256=sha),
                                                                        timeout=120)
        assert next(download).chunk  # the call is in the server's hands; the rest waits on this reader
        server.proc.send_signal(signal.SIGINT)
        first = server.wait_for_output("shutting down")
        assert "in-flight calls get up to 60s to finish (Ctrl-C again to force)" in first, first
        assert server.proc.poll() is None
        server.proc.send_signal(signal.SIGINT)
        second = server.wait_for_output("forcing shutdown")
        assert "cancelling in-flight calls now" in second, second
        code = server.wait()
    finally:
        channel.close()
    out = server.output()
    assert code == 0, out
    assert "grace period is over" not in out and "Traceback" not in out, out
    assert "flowdeck server stopped" in out, out


def test_interrupted_server_without_calls_in_flight_stops_at_once(server_process):
    server = server_process("--no-scheduler", env={"FLOWDECK_SHUTDOWN_GRACE": "60"})
    server.proc.send_signal(signal.SIGINT)
    assert server.wait() == 0, server.output()
    out = server.output()
    assert "in-flight calls get up to 60s to finish" in out and "forcing" not in out, out
