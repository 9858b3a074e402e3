"""TLS and mutual TLS (issue 8), with a throwaway CA made at test time."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from conftest import run_cli
from support.processes import stop_process
from support.waiting import wait_until


# -- a throwaway CA ---------------------------------------------------------------------

def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(cn: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca, cn: str, *, server: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key, ca_cert = ca
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Files: ca.pem, server.pem/-key.pem, client.pem/-key.pem, and a client
    certificate from another CA (rogue.pem/-key.pem)."""
    d = tmp_path_factory.mktemp("pki")
    ca, other_ca = make_ca("flowdeck test CA"), make_ca("someone else's CA")
    (d / "ca.pem").write_bytes(_pem_cert(ca[1]))
    for name, issuer, is_server in (("server", ca, True), ("client", ca, False), ("rogue", other_ca, False)):
        key, cert = issue(issuer, f"flowdeck {name}", server=is_server)
        (d / f"{name}.pem").write_bytes(_pem_cert(cert))
        (d / f"{name}-key.pem").write_bytes(_pem_key(key))
    return d


def _server(tmp_path, database_url, pki, **extra):
    from conftest import in_process_server, truncate_all

    server = in_process_server(tmp_path, database_url=database_url, tls_cert=str(pki / "server.pem"),
                               tls_key=str(pki / "server-key.pem"), **extra)
    truncate_all(server.server.db)
    return server


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("FLOWDECK_API_KEY", "FLOWDECK_API_TLS_CA", "FLOWDECK_API_TLS_CERT", "FLOWDECK_API_TLS_KEY",
                 "FLOWDECK_API_TLS_SERVER_NAME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- tests ------------------------------------------------------------------------------------

def test_tls_client_works_and_plaintext_client_fails(tmp_path, database_url, pki, clean_env):
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import UnavailableError

    server = _server(tmp_path, database_url, pki)
    try:
        clean_env.setenv("FLOWDECK_API_TLS_CA", str(pki / "ca.pem"))
        with FlowdeckClient(server.address, timeout=10) as c:
            flow = c.create_flow("over-tls")
            assert c.get_flow(flow.id).name == "over-tls"
        clean_env.delenv("FLOWDECK_API_TLS_CA")
        with FlowdeckClient(server.address, timeout=20, retries=0) as plain:
            with pytest.raises(UnavailableError):
                plain.list_flows()
        # TLS without the CA: the server's certificate is not trusted.
        from flowdeck.channels import make_channel

        with FlowdeckClient(server.address, timeout=20, retries=0,
                            channel=make_channel(server.address, tls=True)) as untrusting:
            with pytest.raises(UnavailableError):
                untrusting.list_flows()
    finally:
        server.stop()


def test_health_over_tls(tmp_path, database_url, pki, clean_env):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server = _server(tmp_path, database_url, pki)
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
        with grpc.secure_channel(server.address, creds) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop()


def test_mutual_tls_refuses_clients_without_a_certificate(tmp_path, database_url, pki, clean_env):
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import UnavailableError

    server = _server(tmp_path, database_url, pki, tls_client_ca=str(pki / "ca.pem"))
    try:
        clean_env.setenv("FLOWDECK_API_TLS_CA", str(pki / "ca.pem"))
        with FlowdeckClient(server.address, timeout=20, retries=0) as no_cert:
            with pytest.raises(UnavailableError):
                no_cert.list_flows()
        clean_env.setenv("FLOWDECK_API_TLS_CERT", str(pki / "rogue.pem"))
        clean_env.setenv("FLOWDECK_API_TLS_KEY", str(pki / "rogue-key.pem"))
        with FlowdeckClient(server.address, timeout=20, retries=0) as rogue:
            with pytest.raises(UnavailableError):
                rogue.list_flows()
        clean_env.setenv("FLOWDECK_API_TLS_CERT", str(pki / "client.pem"))
        clean_env.setenv("FLOWDECK_API_TLS_KEY", str(pki / "client-key.pem"))
        with FlowdeckClient(server.address, timeout=10) as good:
            assert good.list_flows() == []
    finally:
        server.stop()


def test_tls_with_api_keys_and_the_agent_channel(tmp_path, database_url, pki, clean_env, session_key_material):
    """TLS and auth together; the agent's channel (flowdeck.agent.runners.channel)
    takes the same settings from the environment."""
    from conftest import insert_test_keys
    from flowdeck.agent import runners
    from flowdeck.client import FlowdeckClient
    from flowdeck.exceptions import UnauthenticatedError

    server = _server(tmp_path, database_url, pki, auth=True, tls_client_ca=str(pki / "ca.pem"))
    try:
        keys = insert_test_keys(server.server.db, session_key_material)
        clean_env.setenv("FLOWDECK_API_TLS_CA", str(pki / "ca.pem"))
        clean_env.setenv("FLOWDECK_API_TLS_CERT", str(pki / "client.pem"))
        clean_env.setenv("FLOWDECK_API_TLS_KEY", str(pki / "client-key.pem"))
        with FlowdeckClient(server.address, timeout=10, retries=0) as anonymous:
            with pytest.raises(UnauthenticatedError):
                anonymous.list_flows()
        clean_env.setenv("FLOWDECK_API_KEY", keys["agent"])
        with FlowdeckClient(server.address, timeout=10, channel=runners.channel(server.address)) as agent:
            assert agent.list_flows() == []
    finally:
        server.stop()


def test_bad_tls_settings_fail_clearly(tmp_path, pki):
    from flowdeck.exceptions import InvalidArgumentError
    from flowdeck.server.api.tls import server_credentials
    from flowdeck.server.settings import Settings

    def creds(**kw):
        return server_credentials(Settings(home=tmp_path, **kw))

    assert creds() is None
    with pytest.raises(InvalidArgumentError, match="both"):
        creds(tls_cert=str(pki / "server.pem"))
    with pytest.raises(InvalidArgumentError, match="needs --tls-cert"):
        creds(tls_client_ca=str(pki / "ca.pem"))
    with pytest.raises(InvalidArgumentError, match="does not belong"):
        creds(tls_cert=str(pki / "server.pem"), tls_key=str(pki / "client-key.pem"))
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        creds(tls_cert=str(pki / "nope.pem"), tls_key=str(pki / "server-key.pem"))
    assert creds(tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server-key.pem")) is not None


def _tls_credentials(pki, client_cert: bool = False):
    """What a client (here: the helper's health check) needs to trust the server."""
    cert = dict(private_key=(pki / "client-key.pem").read_bytes(),
                certificate_chain=(pki / "client.pem").read_bytes()) if client_cert else {}
    return grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes(), **cert)


def test_cli_server_with_tls_flags(tmp_path, pki, server_process):
    """`flowdeck server start --tls-cert --tls-key --tls-client-ca --auth` and the CLI
    as its client (FLOWDECK_API_TLS_* and FLOWDECK_API_KEY)."""
    env = {"FLOWDECK_HOME": str(tmp_path / "home"), "FLOWDECK_API_KEY": "", "FLOWDECK_DATABASE_URL": "",
           "FLOWDECK_API_TLS_CA": "", "FLOWDECK_API_TLS_CERT": "", "FLOWDECK_API_TLS_KEY": ""}
    made = run_cli("server", "create-admin-key", "root", env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    server = server_process("--no-scheduler", "--tls-cert", str(pki / "server.pem"),
                            "--tls-key", str(pki / "server-key.pem"), "--tls-client-ca", str(pki / "ca.pem"),
                            "--auth", home=tmp_path / "home", credentials=_tls_credentials(pki, client_cert=True))
    client_env = {**env, "FLOWDECK_API_URL": server.address, "FLOWDECK_API_TLS_CA": str(pki / "ca.pem"),
                  "FLOWDECK_API_TLS_CERT": str(pki / "client.pem"),
                  "FLOWDECK_API_TLS_KEY": str(pki / "client-key.pem"), "FLOWDECK_API_KEY": key}
    ok = run_cli("deployment", "ls", "--json", env=client_env)
    assert ok.returncode == 0, ok.stderr
    plain = run_cli("deployment", "ls", env={**client_env, "FLOWDECK_API_TLS_CA": "",
                                              "FLOWDECK_API_TLS_CERT": "", "FLOWDECK_API_TLS_KEY": ""})
    assert plain.returncode == 1 and plain.stderr.strip().count("\n") == 0, plain.stderr


def test_cli_bad_tls_file_is_one_line(tmp_path):
    env = {"FLOWDECK_HOME": str(tmp_path / "home")}
    r = run_cli("server", "start", "--port", "0", "--tls-cert", str(tmp_path / "missing.pem"),
                "--tls-key", str(tmp_path / "missing-key.pem"), env=env, timeout=60)
    assert r.returncode == 1
    assert "cannot read --tls-cert" in r.stderr and "Traceback" not in r.stderr


def test_binding_beyond_loopback_without_tls_warns(tmp_path, pki, server_process):
    home = tmp_path / "home"
    plain = server_process("--no-scheduler", "--host", "0.0.0.0", home=home)
    assert plain.stop() == 0
    assert "without TLS" in plain.output() and "without --auth" in plain.output()
    secure = server_process("--no-scheduler", "--host", "0.0.0.0", "--tls-cert", str(pki / "server.pem"),
                            "--tls-key", str(pki / "server-key.pem"), "--auth", home=home,
                            credentials=_tls_credentials(pki))
    assert secure.stop() == 0
    assert "without TLS" not in secure.output() and "without --auth" not in secure.output()


FLOW = '''
from flowdeck import flow, get_run_logger


@flow
def hello(name: str = "world"):
    get_run_logger().info("hello %s", name)
    return name
'''


def test_agent_runs_a_flow_over_mutual_tls_with_an_agent_key(tmp_path, pki, session_key_material):
    """The whole path with security on: server (TLS, client CA, auth), an agent
    process with an agent key, its flow process reporting state and logs."""
    from conftest import in_process_server, insert_test_keys
    from flowdeck.client import FlowdeckClient
    from flowdeck.flow_data import file_flow_data

    (tmp_path / "flows.py").write_text(FLOW)
    server = in_process_server(tmp_path / "home", background=True, auth=True, lease_ttl_seconds=5,
                               tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server-key.pem"),
                               tls_client_ca=str(pki / "ca.pem"))
    address = server.address
    keys = insert_test_keys(server.server.db, session_key_material)
    tls_env = {"FLOWDECK_API_TLS_CA": str(pki / "ca.pem"), "FLOWDECK_API_TLS_CERT": str(pki / "client.pem"),
               "FLOWDECK_API_TLS_KEY": str(pki / "client-key.pem")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWDECK_")}
    env.update(tls_env, FLOWDECK_HOME=str(tmp_path / "home"), FLOWDECK_API_URL=address,
               FLOWDECK_API_KEY=keys["agent"], FLOWDECK_AGENT_BACKOFF_MAX="1")
    log_path = tmp_path / "agent.log"
    agent = None
    from flowdeck.channels import make_channel

    channel = make_channel(address, api_key=keys["admin"], tls_ca=tls_env["FLOWDECK_API_TLS_CA"],
                           tls_cert=tls_env["FLOWDECK_API_TLS_CERT"], tls_key=tls_env["FLOWDECK_API_TLS_KEY"])
    try:
        admin = FlowdeckClient(address, timeout=20, channel=channel)
        admin.create_work_queue("secure")
        dep, _ = admin.create_deployment("d", flow_name="hello", flow_data=file_flow_data(tmp_path / "flows.py", "hello"))
        exe = Path(sys.executable).parent / "flowdeck"
        agent = subprocess.Popen([str(exe), "agent", "start", "--work-queue", "secure", "--name", "sec"],
                                 stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115
        run = admin.create_flow_run_from_deployment(deployment_id=dep.id, parameters={"name": "tls"})
        def finished():
            assert agent.poll() is None, log_path.read_text()
            got = admin.get_flow_run(run.id)
            return got if got.state.is_terminal else None

        got = wait_until(finished, lambda: f"the run to finish\n{log_path.read_text()}")
        assert got.state.type == "COMPLETED", (got.state, log_path.read_text())
        assert any("hello tls" in r.message for r in admin.list_logs(run.id))
        assert keys["agent"] not in log_path.read_text()
        admin.close()
    finally:
        if agent is not None:
            stop_process(agent)
        server.stop()
