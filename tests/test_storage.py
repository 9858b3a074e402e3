"""Storage blocks (StorageService) and flow code kept by the server (FlowDataService),
on every database backend, through the real client and CLI."""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os

import pytest
from conftest import run_cli

from flowdeck import exceptions as exc
from flowdeck.blocks.storage import (
    LocalStorageBlock,
    S3StorageBlock,
    ServerStorageBlock,
    block_from_document,
)
from flowdeck.deployments.storage import resolve_flow_storage

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-SECRET-1234"
KEY_ID = "AKIAFLOWDECKTESTKEY9"


def blockstorage(block, block_id, key="0" * 64, flow_name="f"):
    """The FlowData document the spec loader writes for block storage."""
    return {
        "encoding": "blockstorage",
        "blob": json.dumps({
            "block_id": block_id, "block_type": block.block_type, "block_config": block.public_config(),
            "key": key, "flow_name": flow_name, "filename": "flow.py",
        }),
    }


def s3_block(**kw) -> S3StorageBlock:
    return S3StorageBlock(bucket="flows", prefix="team-a", endpoint_url="http://127.0.0.1:1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, **kw)


# -- blocks ------------------------------------------------------------------------

def test_equal_blocks_are_one_block(client):
    a = client.create_storage_block(block_type="local", config={"path": "/srv/flows"})
    b = client.create_storage_block(LocalStorageBlock(path="/srv/flows"))
    assert a.id == b.id and a.type == "local" and a.config == {"path": "/srv/flows"}
    # Unset and empty settings are the same block; a trailing "/" on a prefix too.
    s1 = client.create_storage_block(S3StorageBlock(bucket="bkt"))
    s2 = client.create_storage_block(block_type="s3", config={"bucket": "bkt", "prefix": "", "region_name": None})
    s3 = client.create_storage_block(block_type="s3", config={"bucket": "bkt", "prefix": "/"})
    assert s1.id == s2.id == s3.id
    # Different settings (or credentials) are different blocks.
    other = client.create_storage_block(S3StorageBlock(bucket="bkt", prefix="x"))
    keyed = client.create_storage_block(s3_block())
    keyed2 = client.create_storage_block(s3_block())
    assert len({s1.id, other.id, keyed.id}) == 3 and keyed.id == keyed2.id
    srv1 = client.create_storage_block(ServerStorageBlock())
    srv2 = client.create_storage_block(block_type="server", config={})
    assert srv1.id == srv2.id
    assert len(client.list_storage_blocks()) == 5


def test_concurrent_creates_make_one_block(client, server):
    from flowdeck.client import FlowdeckClient

    def make(_):
        with FlowdeckClient(server.address, timeout=20) as c:
            return c.create_storage_block(S3StorageBlock(bucket="race", prefix="p")).id

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(make, range(16)))
    assert len(ids) == 1
    assert [b.id for b in client.list_storage_blocks()] == list(ids)


def test_repeated_deploys_leave_exactly_one_block(client):
    """The flaw where every create made a new identical block must not exist."""
    for i in range(5):
        storage = resolve_flow_storage(s3_block(), client)
        block, block_id = storage.block, storage.block_id
        dep, created = client.create_deployment("d", flow_name="f", flow_data=blockstorage(block, block_id),
                                                tags=[f"t{i}"])
        assert created == (i == 0) and dep.storage_block_id == block_id
        dep2, _ = client.create_deployment(f"other-{i}", flow_name="f", flow_data=blockstorage(block, block_id))
    blocks = client.list_storage_blocks()
    assert [b.id for b in blocks] == [block_id]
    # The flow data in the deployment names the block but carries no secret.
    got = client.get_deployment_by_name("f/d")
    assert SECRET not in got.model_dump_json() and KEY_ID not in got.model_dump_json()
    assert json.loads(got.flow_data.blob)["block_config"]["bucket"] == "flows"
    # Updating the flow data through UpdateDeployment keeps one block too.
    client.update_deployment(dep.id, flow_data=blockstorage(block, block_id, key="1" * 64))
    assert len(client.list_storage_blocks()) == 1


def test_flow_storage_by_id_and_unknown_ids(client):
    made = client.create_storage_block(s3_block())
    storage = resolve_flow_storage(made.id, client)
    block, block_id = storage.block, storage.block_id
    assert block_id == made.id and isinstance(block, S3StorageBlock)
    # The server never hands out the keys: it writes the script into the block itself.
    assert block.bucket == "flows" and block.prefix == "team-a" and block.aws_secret_access_key is None
    assert storage.written_by_server
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(exc.NotFoundError, match="storage block"):
        resolve_flow_storage(missing, client)
    with pytest.raises(exc.InvalidArgumentError, match="flow_storage"):
        resolve_flow_storage("not-an-id", client)
    # A deployment naming an unknown block is a clear error, not a retry loop.
    with pytest.raises(exc.NotFoundError, match="storage block"):
        client.create_deployment("d", flow_name="f", flow_data=blockstorage(block, missing))
    dep, _ = client.create_deployment("d", flow_name="f")
    with pytest.raises(exc.NotFoundError, match="storage block"):
        client.update_deployment(dep.id, flow_data=blockstorage(block, missing))
    # Dicts (YAML specs) are blocks too.
    other = resolve_flow_storage({"type": "s3", "bucket": "flows", "prefix": "team-a",
                                  "endpoint_url": "http://127.0.0.1:1"}, client)
    assert isinstance(other.block, S3StorageBlock) and other.block_id != made.id  # no keys: a different block
    assert not other.written_by_server  # written here, with this environment's credentials


def test_no_flow_storage_uses_the_default_else_local(client):
    storage = resolve_flow_storage(None, client)
    assert isinstance(storage.block, LocalStorageBlock) and storage.block_id is None
    server_block = client.create_storage_block(ServerStorageBlock())
    client.set_default_storage_block(server_block.id)
    storage = resolve_flow_storage(None, client)
    assert isinstance(storage.block, ServerStorageBlock) and storage.block_id == server_block.id
    assert storage.label == "Server Storage"


def test_secrets_are_masked_in_every_response(client, server, wire):
    created = client.create_storage_block(s3_block(), is_default=True)
    responses = [created, client.get_storage_block(created.id), *client.list_storage_blocks(),
                 client.get_default_storage_block(), client.set_default_storage_block(created.id)]
    for r in responses:
        text = r.model_dump_json()
        assert SECRET not in text and KEY_ID not in text and KEY_ID[-4:] not in text
        assert r.config["aws_secret_access_key"] == "********"
        assert r.config["aws_access_key_id"] == "********"
        assert r.config["bucket"] == "flows" and r.config["endpoint_url"] == "http://127.0.0.1:1"
    # Nor at the wire level, nor on request-id replay.
    import grpc

    from flowdeck.v1 import storage_service_pb2 as spb
    from flowdeck.v1 import storage_service_pb2_grpc as sgrpc

    stub = wire.stub(server.address, sgrpc.StorageServiceStub)
    raw = stub.ListStorageBlocks(spb.ListStorageBlocksRequest()).SerializeToString()
    assert SECRET.encode() not in raw and KEY_ID.encode() not in raw
    with pytest.raises(grpc.RpcError) as err:
        stub.GetStorageBlock(spb.GetStorageBlockRequest(id=created.id, reveal_secrets=True))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and "lease" in err.value.details()
    # The block instance hides its keys as well.
    assert SECRET not in repr(s3_block()) and SECRET not in str(s3_block())
    assert "aws_secret_access_key" not in s3_block().config()
    # Only the lease path sees them.
    from flowdeck.server import storage_blocks

    with server.server.db.read() as s:
        block_type, config = storage_blocks.lease_configs(s, [created.id])[created.id]
    assert block_type == "s3" and config["aws_secret_access_key"] == SECRET
    assert config["aws_access_key_id"] == KEY_ID


def test_invalid_configs_are_refused_without_echoing_secrets(client):
    with pytest.raises(exc.InvalidArgumentError, match="storage_block.type"):
        client.create_storage_block(block_type="ftp", config={})
    with pytest.raises(exc.InvalidArgumentError, match="bucket.*required"):
        client.create_storage_block(block_type="s3", config={"prefix": "x"})
    with pytest.raises(exc.InvalidArgumentError, match="not a setting") as e:
        client.create_storage_block(block_type="server", config={"path": "/x"})
    with pytest.raises(exc.InvalidArgumentError, match="go together") as e:
        client.create_storage_block(block_type="s3", config={"bucket": "bkt", "aws_secret_access_key": SECRET})
    assert SECRET not in str(e.value)
    with pytest.raises(exc.InvalidArgumentError, match="must be a string") as e:
        client.create_storage_block(block_type="s3", config={"bucket": "bkt", "aws_secret_access_key": 12345678,
                                                             "aws_access_key_id": "k"})
    assert "12345678" not in str(e.value)
    assert client.list_storage_blocks() == []


def test_delete_is_refused_while_a_deployment_uses_the_block(client):
    storage = resolve_flow_storage(ServerStorageBlock(), client)
    block, block_id = storage.block, storage.block_id
    dep, _ = client.create_deployment("d", flow_name="f", flow_data=blockstorage(block, block_id))
    with pytest.raises(exc.FailedPreconditionError, match="f/d") as e:
        client.delete_storage_block(block_id)
    assert e.value.reason == "STORAGE_BLOCK_IN_USE"
    assert client.get_storage_block(block_id).id == block_id
    # Moving the deployment's flow code elsewhere releases the block.
    client.update_deployment(dep.id, flow_data={"encoding": "text", "blob": "{}"})
    assert client.get_deployment(dep.id).storage_block_id is None
    client.delete_storage_block(block_id)
    with pytest.raises(exc.NotFoundError):
        client.get_storage_block(block_id)
    with pytest.raises(exc.NotFoundError):
        client.delete_storage_block(block_id)


def test_defaults(client):
    with pytest.raises(exc.NotFoundError):
        client.get_default_storage_block()
    a = client.create_storage_block(LocalStorageBlock(path="/a"))
    b = client.create_storage_block(LocalStorageBlock(path="/b"), is_default=True)
    assert b.is_default and client.get_default_storage_block().id == b.id
    assert client.set_default_storage_block(a.id).is_default
    assert [x.id for x in client.list_storage_blocks() if x.is_default] == [a.id]
    # Re-creating an equal block with is_default moves the default to it.
    assert client.create_storage_block(LocalStorageBlock(path="/b"), is_default=True).id == b.id
    assert client.get_default_storage_block().id == b.id
    # Deleting the default leaves none.
    client.delete_storage_block(b.id)
    with pytest.raises(exc.NotFoundError):
        client.get_default_storage_block()
    with pytest.raises(exc.NotFoundError):
        client.set_default_storage_block(b.id)


def test_racing_set_defaults_leave_one_default(client, server):
    from flowdeck.client import FlowdeckClient

    ids = [client.create_storage_block(LocalStorageBlock(path=f"/p{i}")).id for i in range(6)]

    def pick(i):
        with FlowdeckClient(server.address, timeout=20) as c:
            c.set_default_storage_block(ids[i % len(ids)])

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(pick, range(24)))
    assert len([b for b in client.list_storage_blocks() if b.is_default]) == 1


# -- flow data ---------------------------------------------------------------------

def _blob_count(server) -> int:
    from sqlalchemy import func, select

    from flowdeck.server.models import FlowDataBlobRow

    with server.server.db.read() as s:
        return s.scalar(select(func.count()).select_from(FlowDataBlobRow))


def test_upload_download_roundtrip_and_dedupe(client, server, wire):
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks each way
    fd, sha = client.upload_flow_data(data, flow_name="etl", filename="etl.py")
    assert sha == hashlib.sha256(data).hexdigest()
    assert fd.encoding == "blockstorage"
    blob = json.loads(fd.blob)
    assert blob["key"] == sha and blob["block_type"] == "server"
    assert blob["flow_name"] == "etl" and blob["filename"] == "etl.py" and blob["block_id"] is None
    assert client.download_flow_data(sha) == data
    # Same content again: nothing new is stored.
    from flowdeck.v1 import flow_data_service_pb2 as fdpb
    from flowdeck.v1 import flow_data_service_pb2_grpc as fdgrpc

    def upload_raw(payload):
        reqs = [fdpb.UploadFlowDataRequest(metadata=fdpb.FlowDataMetadata(flow_name="x", size=len(payload))),
                fdpb.UploadFlowDataRequest(chunk=payload)]
        return wire.stub(server.address, fdgrpc.FlowDataServiceStub).UploadFlowData(iter(reqs), timeout=30)

    assert upload_raw(data).created is False
    assert _blob_count(server) == 1
    # With a server block registered, the FlowData names it (and deployments link to it).
    srv = client.create_storage_block(ServerStorageBlock())
    fd2, sha2 = client.upload_flow_data(b"print('hi')\n", flow_name="hi", filename="hi.py")
    assert json.loads(fd2.blob)["block_id"] == srv.id
    dep, _ = client.create_deployment("d", flow_name="hi", flow_data=fd2)
    assert dep.storage_block_id == srv.id
    assert _blob_count(server) == 2
    # Empty content is fine too.
    _, empty_sha = client.upload_flow_data(b"")
    assert client.download_flow_data(empty_sha) == b""


def test_uploads_into_a_named_block(client):
    """UploadFlowData with a storage_block_id: the server writes into server and
    S3 blocks (S3: tests/test_s3_storage.py); a local block is the caller's folder."""
    srv = client.create_storage_block(ServerStorageBlock())
    fd, sha = client.upload_flow_data(b"x = 1\n", flow_name="f", filename="f.py", storage_block_id=srv.id)
    assert json.loads(fd.blob)["block_id"] == srv.id and client.download_flow_data(sha) == b"x = 1\n"
    local = client.create_storage_block(LocalStorageBlock(path="/srv/flows"))
    with pytest.raises(exc.InvalidArgumentError, match="metadata.storage_block_id.*'local' block") as e:
        client.upload_flow_data(b"y = 2\n", storage_block_id=local.id)
    assert e.value.violations[0].field == "metadata.storage_block_id"
    with pytest.raises(exc.NotFoundError, match="storage block"):
        client.upload_flow_data(b"y = 2\n", storage_block_id="00000000-0000-4000-8000-000000000000")
    with pytest.raises(exc.InvalidArgumentError, match="metadata.storage_block_id"):
        client.upload_flow_data(b"y = 2\n", storage_block_id="not-a-uuid")
    # An S3 block the server cannot reach: FAILED_PRECONDITION naming the place, never the keys.
    keyed = client.create_storage_block(s3_block())
    with pytest.raises(exc.FailedPreconditionError, match="cannot write flow code to s3://flows/team-a/") as e:
        client.upload_flow_data(b"z = 3\n", storage_block_id=keyed.id, timeout=60)
    assert e.value.reason == "STORAGE_WRITE_FAILED" and SECRET not in e.value.message


def test_blocks_refuse_unknown_settings_and_bad_bucket_names(client):
    with pytest.raises(exc.InvalidArgumentError,
                       match=r"S3StorageBlock: endpont_url: unknown setting \(did you mean 'endpoint_url'\?\)"):
        S3StorageBlock(bucket="flows", endpont_url="http://127.0.0.1:1")
    with pytest.raises(exc.InvalidArgumentError, match="flow_storage: S3StorageBlock: endpont_url: unknown setting"):
        resolve_flow_storage({"type": "s3", "bucket": "flows", "endpont_url": "http://127.0.0.1:1"}, client)
    with pytest.raises(exc.InvalidArgumentError, match="LocalStorageBlock: folder: unknown setting"):
        LocalStorageBlock(folder="/x")
    for name, why in (("ab", "3 to 63"), ("My_Bucket", "lowercase"), ("a..b", "two dots"),
                      ("192.168.5.4", "IP address"), ("-flows", "lowercase"), ("xn--flows", "'xn--'")):
        with pytest.raises(exc.InvalidArgumentError, match=why) as e:
            S3StorageBlock(bucket=name, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
        assert SECRET not in str(e.value) and "not a valid S3 bucket name" in str(e.value)
        with pytest.raises(exc.InvalidArgumentError, match=why) as e:
            client.create_storage_block(block_type="s3", config={"bucket": name})
        assert e.value.violations[0].field == "storage_block.config.bucket"
    assert client.list_storage_blocks() == []
    from flowdeck.blocks.storage import StorageError

    assert issubclass(StorageError, exc.FlowdeckError)


def test_a_failed_create_leaves_no_block_and_reports_nothing_created(server, client, flowdeck_home, tmp_path):
    (tmp_path / "flow.py").write_text("from flowdeck import flow\n\n@flow\ndef hi(n: int = 1):\n    pass\n")
    (tmp_path / "not-a-folder").write_text("a file")
    (tmp_path / "d.yaml").write_text(
        "name: first\nflow_location: flow.py\nflow_storage: {type: local, path: ./blocks}\n---\n"
        "name: second\nflow_location: flow.py\nflow_storage: {type: local, path: ./not-a-folder/sub}\n")
    kept = client.create_storage_block(ServerStorageBlock())  # there before: it stays
    r = run_cli("deployment", "create", "d.yaml", cwd=tmp_path,
                env={"FLOWDECK_API_URL": server.address, "FLOWDECK_HOME": str(flowdeck_home)})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().startswith("Error: deployment spec 'second'") and "cannot write flow code" in r.stderr
    assert "no deployment was created or changed" in r.stderr
    assert "Created deployment" not in r.stdout and "Creating deployment 'second'" in r.stdout
    assert client.list_deployments() == []
    assert [b.id for b in client.list_storage_blocks()] == [kept.id]


def test_server_storage_block_reads_what_it_wrote(client):
    block = ServerStorageBlock(client=client)
    key = block.write(b"from flowdeck import flow\n")
    assert block.read(key) == b"from flowdeck import flow\n"
    again = block_from_document("server", {})
    again._client = client
    assert again.read(key) == b"from flowdeck import flow\n"
    with pytest.raises(FileNotFoundError):
        block.read("e" * 64)


def test_download_errors(client, server):
    with pytest.raises(exc.NotFoundError):
        client.download_flow_data("a" * 64)
    with pytest.raises(exc.InvalidArgumentError, match="sha256"):
        client.download_flow_data("../etc/passwd")
    # A blob that no longer matches its hash is never served.
    _, sha = client.upload_flow_data(b"original")
    from sqlalchemy import update

    from flowdeck.server.models import FlowDataBlobRow

    with server.server.db.write() as s:
        s.execute(update(FlowDataBlobRow).where(FlowDataBlobRow.sha256 == sha).values(data=b"tampered"))
    with pytest.raises(exc.DataLossError, match="corrupt"):
        client.download_flow_data(sha)


def test_size_limit_refuses_and_leaves_nothing(client, server, monkeypatch, wire):
    monkeypatch.setattr(server.server.settings, "max_flow_data_bytes", 1024 * 1024)
    too_big = os.urandom(1024 * 1024 + 1)
    with pytest.raises(exc.ResourceExhaustedError, match="limit"):
        client.upload_flow_data(too_big)
    # A client that lies about the size is stopped while it streams.
    from flowdeck.v1 import flow_data_service_pb2 as fdpb
    from flowdeck.v1 import flow_data_service_pb2_grpc as fdgrpc

    sent = []

    def stream():
        yield fdpb.UploadFlowDataRequest(metadata=fdpb.FlowDataMetadata(size=10))
        for _ in range(50):
            sent.append(1)
            yield fdpb.UploadFlowDataRequest(chunk=b"x" * 256 * 1024)

    import grpc

    with pytest.raises(grpc.RpcError) as e:
        wire.stub(server.address, fdgrpc.FlowDataServiceStub).UploadFlowData(stream(), timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(sent) < 50
    assert _blob_count(server) == 0
    exact = os.urandom(1024 * 1024)
    _, sha = client.upload_flow_data(exact)
    assert client.download_flow_data(sha) == exact and _blob_count(server) == 1


def test_blocks_and_blobs_survive_a_restart(db, database_url, tmp_path):
    from conftest import in_process_server
    from flowdeck.client import FlowdeckClient

    def start():
        srv = in_process_server(tmp_path, database_url=database_url)
        return srv, FlowdeckClient(srv.address, timeout=20)

    srv, c = start()
    try:
        block = c.create_storage_block(s3_block(), is_default=True)
        _, sha = c.upload_flow_data(b"print('persisted')\n")
    finally:
        c.close()
        srv.stop()
    srv, c = start()
    try:
        assert c.get_default_storage_block().id == block.id
        assert c.get_storage_block(block.id).config["aws_secret_access_key"] == "********"
        assert c.download_flow_data(sha) == b"print('persisted')\n"
        assert c.create_storage_block(s3_block()).id == block.id
    finally:
        c.close()
        srv.stop()


# -- CLI ---------------------------------------------------------------------------

def test_storage_cli(server, flowdeck_home):
    env = {"FLOWDECK_API_URL": server.address, "FLOWDECK_HOME": str(flowdeck_home),
           "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    outputs = []

    def cli(*args, ok=True):
        r = run_cli(*args, env=env)
        outputs.append(r.stdout + r.stderr)
        assert (r.returncode == 0) == ok, r.stdout + r.stderr
        return r

    made = json.loads(cli("storage", "create", "s3", "--bucket", "flows", "--prefix", "p",
                          "--endpoint-url", "http://127.0.0.1:1", "--json").stdout)
    assert made["type"] == "s3" and made["config"]["aws_secret_access_key"] == "********"
    again = cli("storage", "create", "s3", "--bucket", "flows", "--prefix", "p/",
                "--endpoint-url", "http://127.0.0.1:1").stdout
    assert made["id"] in again and "S3 Storage" in again
    local = json.loads(cli("storage", "create", "local", "--path", "rel/dir", "--json").stdout)
    assert os.path.isabs(local["config"]["path"])
    srv = json.loads(cli("storage", "create", "server", "--set-default", "--json").stdout)
    assert srv["is_default"]
    listed = json.loads(cli("storage", "ls", "--json").stdout)
    assert {b["id"] for b in listed} == {made["id"], local["id"], srv["id"]}
    assert "flows" in cli("storage", "ls").stdout
    shown = json.loads(cli("storage", "inspect", made["id"], "--json").stdout)
    assert shown["config"]["bucket"] == "flows"
    cli("storage", "inspect", made["id"])
    assert "now the default" in cli("storage", "set-default", made["id"]).stdout
    assert "Deleted" in cli("storage", "delete", local["id"]).stdout
    r = cli("storage", "inspect", local["id"], ok=False)
    assert "not found" in r.stderr and "Traceback" not in r.stderr
    r = cli("storage", "create", "s3", "--bucket", "flows", "--aws-access-key-id", "only-id", ok=False)
    assert "Traceback" not in r.stderr
    r = cli("storage", "create", "s3", "--bucket", "Flows_2024", ok=False)
    assert r.stderr.strip() == ("Error: S3StorageBlock: bucket: 'Flows_2024' is not a valid S3 bucket name: must "
                                "be lowercase letters, digits, dots and hyphens, beginning and ending with a letter "
                                "or digit")
    assert {b["id"] for b in json.loads(cli("storage", "ls", "--json").stdout)} == {made["id"], srv["id"]}
    for text in outputs:
        assert SECRET not in text and KEY_ID not in text
