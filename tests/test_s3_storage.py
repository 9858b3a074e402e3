"""S3 storage against a real S3-compatible HTTP endpoint: moto in server mode,
started as a subprocess on a loopback port; boto3 reaches it by endpoint_url
(no in-process patching). Also: secrets never leak, and flows stored in S3 or
on the server run from a folder where the script does not exist."""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid

import pytest

from flowdeck.blocks.storage import S3StorageBlock, StorageError, block_from_document
from support import processes
from support.processes import BIN, stop_process
from support.waiting import wait_until

KEY_ID = "AKIAS3TESTKEYID77QZX"
SECRET = "s3cr3t-Zq9-VERY-PRIVATE-do-not-print-4711"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """`python -m moto.server` on 127.0.0.1:<free port>, as a real process."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    for _attempt in range(3):
        port = _free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        if proc.poll() is None:
            break
    else:
        pytest.fail(f"moto server did not start:\n{log.read_text()}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def s3_client(endpoint: str):
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)


@pytest.fixture
def bucket(moto_endpoint) -> str:
    name = f"flows-{uuid.uuid4().hex[:10]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def no_aws_env(monkeypatch, tmp_path):
    """No credentials anywhere in boto3's chain."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "FLOWDECK_STORAGE_CONFIG_JSON"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def keyed_block(endpoint, bucket, **kw) -> S3StorageBlock:
    return S3StorageBlock(bucket=bucket, endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, **kw)


# -- the block -----------------------------------------------------------------------

def test_s3_block_writes_content_addressed_objects(moto_endpoint, bucket, no_aws_env):
    block = keyed_block(moto_endpoint, bucket, prefix="/team/flows/")
    key = block.write(b"print('hello from s3')\n")
    assert block.write(b"print('hello from s3')\n") == key  # same content, same object
    listed = s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"team/flows/{key}"]
    assert block.read(key) == b"print('hello from s3')\n"
    with pytest.raises(FileNotFoundError, match=bucket):
        block.read("f" * 64)
    with pytest.raises(ValueError):
        block.read("../../etc/passwd")
    # An object that no longer matches its key is refused.
    s3_client(moto_endpoint).put_object(Bucket=bucket, Key=f"team/flows/{key}", Body=b"tampered")
    with pytest.raises(StorageError, match="corrupt"):
        block.read(key)
    with pytest.raises(StorageError) as e:
        keyed_block(moto_endpoint, "no-such-bucket").write(b"x")
    assert SECRET not in str(e.value)


def test_credentials_come_from_the_chain_or_the_lease(moto_endpoint, bucket, no_aws_env, monkeypatch):
    key = keyed_block(moto_endpoint, bucket).write(b"x = 1\n")
    public = keyed_block(moto_endpoint, bucket).public_config()
    assert "aws_secret_access_key" not in public and "aws_access_key_id" not in public
    # No keys anywhere: boto3 finds none.
    with pytest.raises(StorageError, match="credentials"):
        block_from_document("s3", public).read(key)
    # What an agent hands a run process from the run's lease.
    lease = {"type": "s3", "config": {"bucket": bucket, "endpoint_url": moto_endpoint, "region_name": "us-east-1",
                                      "aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}}
    monkeypatch.setenv("FLOWDECK_STORAGE_CONFIG_JSON", json.dumps(lease))
    assert block_from_document("s3", public).read(key) == b"x = 1\n"
    # ... but only for the block it is about.
    other = dict(public, bucket="someone-elses")
    assert block_from_document("s3", other).aws_secret_access_key is None
    # The usual chain: environment variables.
    monkeypatch.delenv("FLOWDECK_STORAGE_CONFIG_JSON")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "chain-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    assert block_from_document("s3", public).read(key) == b"x = 1\n"


# -- a real server process -------------------------------------------------------------

def clean_env(home: pathlib.Path, **extra: str) -> dict:
    """No FLOWDECK_* settings and no AWS credentials or config from the test run."""
    return processes.clean_env(home, {k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                               AWS_CONFIG_FILE=home / "no-aws-config",
                               AWS_SHARED_CREDENTIALS_FILE=home / "no-aws-credentials",
                               AWS_EC2_METADATA_DISABLED="true", **extra)


@pytest.fixture
def server_proc(server_process, tmp_path):
    # SQLite under its own home: a clean server per test (the backends are
    # covered by tests/test_storage.py).
    return server_process(env={"FLOWDECK_LOG_LEVEL": "DEBUG"}, base_env=clean_env(tmp_path / "server-home"))


def cli(address: str, home: pathlib.Path, *args: str, cwd=None, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run([str(BIN / "flowdeck"), *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(home, FLOWDECK_API_URL=address, **env), cwd=cwd,
                          stdin=subprocess.DEVNULL)



FLOW = textwrap.dedent("""
    from flowdeck import flow

    @flow
    def greet(name: str = "world"):
        print(f"greetings {name}, from a flow nobody has on disk here")
        return name
""")


def spec_file(folder: pathlib.Path, storage_line: str, name: str) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "greet.py").write_text(FLOW)
    spec = folder / "deploy.py"
    spec.write_text(textwrap.dedent(f"""
        from flowdeck.blocks.storage import S3StorageBlock, ServerStorageBlock
        from flowdeck.deployments import DeploymentSpec

        DeploymentSpec(name={name!r}, flow_location="./greet.py", flow_name="greet",
                       parameters={{"name": {name!r}}}, flow_storage={storage_line})
    """))
    return spec


def test_secrets_never_leak(moto_endpoint, bucket, server_proc, tmp_path, wire):
    """Grep the server log (DEBUG), the CLI output and every List/Get response."""
    home = tmp_path / "user-home"
    outputs = []

    def run(*args, ok=True, **env):
        r = cli(server_proc.address, home, *args, **env)
        outputs.append((args[:3], r.stdout + r.stderr))
        assert (r.returncode == 0) == ok, (r.stdout + r.stderr).replace(SECRET, "<SECRET>")
        return r

    made = json.loads(run("storage", "create", "s3", "--bucket", bucket, "--endpoint-url", moto_endpoint,
                          "--region", "us-east-1", "--aws-access-key-id", KEY_ID,
                          "--aws-secret-access-key", SECRET, "--json").stdout)
    # From the environment too (a second block: different prefix).
    run("storage", "create", "s3", "--bucket", bucket, "--prefix", "env", "--endpoint-url", moto_endpoint,
        AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
    run("storage", "ls")
    run("storage", "ls", "--json")
    run("storage", "inspect", made["id"])
    run("storage", "inspect", made["id"], "--json")
    run("storage", "set-default", made["id"])
    run("storage", "create", "s3", "--bucket", "bkt", "--aws-secret-access-key", SECRET, ok=False)
    # The default block is S3 with stored keys: the server writes the script (it gives no keys out).
    spec = spec_file(tmp_path / "project", "None", "leaky")
    out = run("deployment", "create", str(spec), AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET).stdout
    assert "using S3 Storage" in out
    run("deployment", "inspect", "greet/leaky")
    run("deployment", "inspect", "greet/leaky", "--json")
    run("deployment", "ls", "--json")
    from flowdeck.v1 import deployment_service_pb2 as dpb
    from flowdeck.v1 import deployment_service_pb2_grpc as dgrpc
    from flowdeck.v1 import storage_service_pb2 as spb
    from flowdeck.v1 import storage_service_pb2_grpc as sgrpc

    storage = wire.stub(server_proc.address, sgrpc.StorageServiceStub)
    deployments = wire.stub(server_proc.address, dgrpc.DeploymentServiceStub)
    raw = [
        storage.ListStorageBlocks(spb.ListStorageBlocksRequest(), timeout=30),
        storage.GetStorageBlock(spb.GetStorageBlockRequest(id=made["id"]), timeout=30),
        storage.GetDefaultStorageBlock(spb.GetDefaultStorageBlockRequest(), timeout=30),
        deployments.ListDeployments(dpb.ListDeploymentsRequest(), timeout=30),
    ]
    for dep in raw[-1].deployments:
        raw.append(deployments.GetDeployment(dpb.GetDeploymentRequest(id=dep.id), timeout=30))
    assert len(raw[0].storage_blocks) == 2
    server_proc.stop()
    log = server_proc.output()
    assert "SERVING" in log
    for msg in raw:
        data = msg.SerializeToString()
        assert SECRET.encode() not in data and KEY_ID.encode() not in data
    # (Failure messages name the place, never the text: it would hold the secret.)
    for where, text in outputs + [(("server log",), log)]:
        assert SECRET not in text, f"secret in the output of {where}"
        assert KEY_ID not in text and KEY_ID[-6:] not in text, f"access key id in the output of {where}"


@contextlib.contextmanager
def agent_serving(address: str, home: pathlib.Path, cwd: pathlib.Path, queue: str, log_path: pathlib.Path):
    """`flowdeck agent start` serving `queue` from `cwd`, with no AWS credentials
    in its environment; yields a function returning what it printed so far."""
    log = open(log_path, "w")
    agent = subprocess.Popen([str(BIN / "flowdeck"), "agent", "start", "--work-queue", queue],
                             cwd=cwd, env=clean_env(home, FLOWDECK_API_URL=address),
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield log_path.read_text
    finally:
        stop_process(agent, timeout=40)
        log.close()


def _wait_run(address, home, cwd, run_id, timeout=60):
    def finished():
        r = cli(address, home, "flow-run", "inspect", run_id, "--json", cwd=cwd)
        state = json.loads(r.stdout)["state"]["type"]
        return state if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    return wait_until(finished, f"run {run_id} to finish", timeout=timeout, every=0.5)


@pytest.mark.parametrize("where", ["s3", "server"])
def test_flow_stored_elsewhere_runs_where_the_script_does_not_exist(where, moto_endpoint, bucket, server_proc,
                                                                    tmp_path):
    project, home = tmp_path / "project", tmp_path / "user-home"
    if where == "s3":
        storage = (f"S3StorageBlock(bucket={bucket!r}, prefix='deploys', endpoint_url={moto_endpoint!r}, "
                   f"region_name='us-east-1', aws_access_key_id={KEY_ID!r}, aws_secret_access_key={SECRET!r})")
        label = "S3 Storage"
    else:
        storage, label = "ServerStorageBlock()", "Server Storage"
    spec = spec_file(project, storage, f"far-{where}")
    r = cli(server_proc.address, home, "deployment", "create", str(spec), cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"using {label}" in r.stdout
    # Again: the same block, not a second one.
    r = cli(server_proc.address, home, "deployment", "create", str(spec), cwd=project)
    assert r.returncode == 0 and "Updated deployment" in r.stdout, r.stdout + r.stderr
    blocks = json.loads(cli(server_proc.address, home, "storage", "ls", "--json").stdout)
    assert [b["type"] for b in blocks] == [where]
    dep = json.loads(cli(server_proc.address, home, "deployment", "inspect", f"greet/far-{where}", "--json").stdout)
    assert dep["storage_block_id"] == blocks[0]["id"]
    assert SECRET not in json.dumps(dep) and KEY_ID not in json.dumps(dep)
    if where == "s3":
        listed = s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
        assert len(listed) == 1 and listed[0]["Key"].startswith("deploys/")

    # Elsewhere: another folder and FLOWDECK_HOME, the script gone from disk.
    elsewhere, other_home = tmp_path / "elsewhere", tmp_path / "other-home"
    elsewhere.mkdir()
    (project / "greet.py").unlink()
    greeting = f"greetings far-{where}, from a flow nobody has on disk here"

    # 1. An agent there: it gets the S3 keys only inside the run's lease (its
    #    environment has no AWS credentials at all).
    from flowdeck.client import FlowdeckClient

    r = cli(server_proc.address, other_home, "work-queue", "create", "far", "--deployment", f"greet/far-{where}")
    assert r.returncode == 0, r.stdout + r.stderr
    with agent_serving(server_proc.address, other_home, elsewhere, "far", tmp_path / "agent.log") as output, \
            FlowdeckClient(server_proc.address) as c:
        run_id = c.create_flow_run_from_deployment(deployment_name=f"greet/far-{where}").id

        def finished():
            run = c.get_flow_run(run_id)
            return run if run.state.is_terminal else None

        run = wait_until(finished, lambda: "the run to finish; the agent said:\n"
                         + output().replace(SECRET, "<SECRET>"), timeout=90)
        logs = "\n".join(rec.message for rec in c.list_logs(run_id))
    agent_out = output()
    assert run.state.type == "COMPLETED", (run.state, agent_out.replace(SECRET, "<SECRET>"))
    assert greeting in logs
    assert SECRET not in agent_out and KEY_ID not in agent_out

    # 2. `deployment execute` there (a person's machine: S3 keys from its own environment).
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET} if where == "s3" else {}
    r = cli(server_proc.address, other_home, "deployment", "execute", f"greet/far-{where}", cwd=elsewhere, **env)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = json.loads(cli(server_proc.address, other_home, "flow-run", "ls", "--deployment", f"greet/far-{where}",
                          "--json", cwd=elsewhere).stdout)
    assert len(runs) == 2 and all(x["state"]["type"] == "COMPLETED" for x in runs)
    logs = cli(server_proc.address, other_home, "flow-run", "logs", runs[0]["id"], cwd=elsewhere).stdout
    assert greeting in logs


def test_keys_kept_by_the_server_deploy_and_run_without_keys_here(moto_endpoint, bucket, server_proc, tmp_path):
    """The new user's story: an S3 block created with its keys; deploying,
    inspecting and running from shells with no AWS_* at all (the server
    writes the code; an agent gets the keys in the run's lease)."""
    project, home = tmp_path / "project", tmp_path / "user-home"
    made = cli(server_proc.address, home, "storage", "create", "s3", "--bucket", bucket, "--endpoint-url",
               moto_endpoint, "--region", "us-east-1", "--aws-access-key-id", KEY_ID, "--aws-secret-access-key",
               SECRET, "--json")
    assert made.returncode == 0, made.stderr
    block_id = json.loads(made.stdout)["id"]
    spec = spec_file(project, repr(block_id), "keyless")
    r = cli(server_proc.address, home, "deployment", "create", str(spec), cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "using S3 Storage" in r.stdout and "Created deployment 'greet/keyless'." in r.stdout
    (stored,) = s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    body = s3_client(moto_endpoint).get_object(Bucket=bucket, Key=stored["Key"])["Body"].read()
    assert body == (project / "greet.py").read_bytes()

    # Elsewhere: no flow code, no AWS keys.
    elsewhere, other_home = tmp_path / "elsewhere", tmp_path / "other-home"
    elsewhere.mkdir()
    (project / "greet.py").unlink()
    r = cli(server_proc.address, other_home, "deployment", "run", "greet/keyless", "--param", "name=5",
            cwd=elsewhere)
    assert r.returncode == 0, r.stdout + r.stderr
    run_id = re.search(r"\(([0-9a-f-]{36})\)", r.stdout).group(1)
    r = cli(server_proc.address, other_home, "deployment", "run", "greet/keyless", "--param", "nme=x", cwd=elsewhere)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("Error: parameters.nme: is not a parameter of this flow (parameters: name)")
    inspected = cli(server_proc.address, other_home, "deployment", "inspect", "greet/keyless", cwd=elsewhere)
    assert inspected.returncode == 0 and re.search(r"^name +string", inspected.stdout, re.M), \
        inspected.stdout + inspected.stderr
    # Only `deployment execute` loads the code: without keys it says so in one line.
    r = cli(server_proc.address, other_home, "deployment", "execute", "greet/keyless", cwd=elsewhere)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "cannot read flow code from s3://" in r.stderr and SECRET not in r.stderr

    r = cli(server_proc.address, other_home, "work-queue", "create", "keyless", "--deployment", "greet/keyless")
    assert r.returncode == 0, r.stdout + r.stderr
    with agent_serving(server_proc.address, other_home, elsewhere, "keyless", tmp_path / "agent.log") as output:
        state = _wait_run(server_proc.address, other_home, elsewhere, run_id, timeout=120)
    agent_out = output()
    assert state == "COMPLETED", agent_out.replace(SECRET, "<SECRET>")
    logs = cli(server_proc.address, other_home, "flow-run", "logs", run_id, cwd=elsewhere).stdout
    assert "greetings 5, from a flow nobody has on disk here" in logs  # `name: str`: the text "5"
    assert SECRET not in agent_out and KEY_ID not in agent_out
    server_proc.stop()
    assert SECRET not in server_proc.output()
