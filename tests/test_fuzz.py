"""Random but well-typed requests at every RPC, streaming ones included (the
agents' lease stream, flow data upload and download): the server may refuse
them, but never with UNKNOWN or INTERNAL, never with UNIMPLEMENTED (every RPC
in the contract is served), and never with an exception's repr as the message.

The RPCs come from the proto descriptors, so a new RPC is covered as soon as it
exists. A stream of requests is a short list of random messages, often behind a
well-formed first one (a hello, upload metadata) so the rest gets past it.
"""
from __future__ import annotations

import base64
import importlib
import json
import pkgutil
import re
import uuid

import os

import grpc
import pytest
from google.protobuf import descriptor as _d
from google.protobuf import message_factory, struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowdeck.v1

# Per RPC and backend; raise it for a deeper local run: FLOWDECK_FUZZ_EXAMPLES=500 scripts/test -k fuzz
MAX_EXAMPLES = int(os.environ.get("FLOWDECK_FUZZ_EXAMPLES", "40"))
# A crash (UNKNOWN, INTERNAL) or a hole in the served API (UNIMPLEMENTED).
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED}
# What a leaked Python exception looks like in a status message.
LEAK = re.compile(r"Traceback|^\w+(Error|Exception)\(|<class '|sqlalchemy|psycopg|sqlite3\.|\(Background on this error")

INT_RANGES = {
    _d.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    _d.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _d.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _d.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    _d.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _d.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _d.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    _d.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    _d.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    _d.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def all_rpcs() -> list[tuple[str, str]]:
    """(service full name, method name) for every RPC in flowdeck.v1."""
    out = []
    for mod in sorted(m.name for m in pkgutil.iter_modules(flowdeck.v1.__path__)):
        if not mod.endswith("_pb2"):
            continue
        module = importlib.import_module(f"flowdeck.v1.{mod}")
        for service in module.DESCRIPTOR.services_by_name.values():
            out.extend((service.full_name, method.name) for method in service.methods)
    return out


def method_descriptor(service: str, method: str):
    from google.protobuf import descriptor_pool

    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]


def rpc_id(value: str) -> str:
    return value.rsplit(".", 1)[-1]


class Caller:
    """Calls any RPC by its descriptor over a plain channel: a request message,
    or a list of them for a client stream. With auth on it sends the admin
    key, or the agent key on the lease stream (which is for agents only).
    Streamed answers are read to the end; a refusal raises grpc.RpcError."""

    def __init__(self, channel: grpc.Channel, keys: dict[str, str] | None):
        self.channel = channel
        self.keys = keys

    def metadata(self, md) -> tuple:
        if not self.keys:
            return ()
        key = self.keys["agent" if md.containing_service.full_name == "flowdeck.v1.AgentService" else "admin"]
        return (("authorization", f"Bearer {key}"),)

    def __call__(self, md, request) -> None:
        response_cls = message_factory.GetMessageClass(md.output_type)
        kind = {(False, False): "unary_unary", (False, True): "unary_stream",
                (True, False): "stream_unary", (True, True): "stream_stream"}[
            (md.client_streaming, md.server_streaming)]
        call = getattr(self.channel, kind)(f"/{md.containing_service.full_name}/{md.name}",
                                           request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=response_cls.FromString)
        answer = call(iter(request) if md.client_streaming else request, timeout=30, metadata=self.metadata(md))
        if md.server_streaming:
            for _ in answer:
                pass

    @staticmethod
    def empty_request(md):
        message = message_factory.GetMessageClass(md.input_type)()
        return [message] if md.client_streaming else message


# -- strategies ------------------------------------------------------------------

def long_strings():
    return st.builds(lambda ch, n: ch * n, st.sampled_from(["x", "é", "🙂", "/", " ", "\x00"]),
                     st.sampled_from([31, 32, 33, 64, 65, 200, 201, 300, 301, 5_000, 100_000]))


def text_values(pool: list[str]):
    return st.one_of(
        st.sampled_from(pool),  # real values get requests past the first checks
        long_strings(),
        st.just(""),
        st.text(max_size=24),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12).map(lambda s: s + "\x00"),
        st.sampled_from(["\x00", "\x01", "\n", "/", "//", "a/b", "a/b/c", " ", "null", "%", "_", "'", "\"",
                         "NaN", "-1", "ß", "🙂", "\u202e", "\ufeff"]),
        uuid_values(),
    )


def uuid_values():
    return st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.uuids().map(lambda u: "{" + str(u) + "}"),
        st.uuids().map(lambda u: str(u)[:-1]),
        st.just("00000000-0000-0000-0000-000000000000"),
    )


def page_tokens():
    def enc(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return st.one_of(
        st.just(""),
        st.text(max_size=30),
        st.integers(min_value=-(2**70), max_value=2**70).map(lambda o: enc({"o": o})),
        st.sampled_from([0, 1, 49, 50, 10**6, 2**31, 2**63, 2**64, 10**30]).map(lambda o: enc({"o": o})),
        st.sampled_from([enc({}), enc([]), enc({"o": "1"}), enc({"o": 1.5}), enc(None), enc({"o": True}), "====",
                         "e30", base64.urlsafe_b64encode(b"\xff\xfe").decode()]),
    )


def json_values():
    leaves = st.one_of(
        st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**60), max_value=2**60), st.text(max_size=12), st.just("\x00"),
    )
    return st.recursive(leaves, lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=8), kids, max_size=3)), max_leaves=8)


def structs():
    def make(d):
        s = struct_pb2.Struct()
        s.update(d)
        return s

    return st.dictionaries(st.text(max_size=10), json_values(), max_size=4).map(make)


def timestamp_parts():
    """(seconds, nanos) for Timestamps: valid ones, the edges, and beyond."""
    return st.tuples(
        st.one_of(
            st.integers(min_value=-62135596800, max_value=253402300799),
            st.integers(min_value=1_500_000_000, max_value=2_000_000_000),
            st.sampled_from([-62135596801, -62135596800, 0, 253402300799, 253402300800, -(2**63), 2**63 - 1]),
        ),
        st.one_of(st.integers(min_value=0, max_value=999_999_999), st.sampled_from([-1, 10**9, 2**31 - 1])),
    )


def duration_parts():
    return st.tuples(
        st.one_of(st.integers(min_value=-10**6, max_value=10**8),
                  st.sampled_from([0, 1, -1, 315576000000, 315576000001, -315576000001, -(2**63), 2**63 - 1])),
        st.one_of(st.integers(min_value=-999_999_999, max_value=999_999_999), st.sampled_from([10**9, -(10**9)])),
    )


class Builder:
    """Builds hypothesis strategies for request messages from their descriptors."""

    def __init__(self, pool: dict[str, list[str]]):
        self.pool = pool

    def strings_for(self, field: _d.FieldDescriptor):
        name = field.name
        if name == "page_token":
            return page_tokens()
        if name == "paths":
            return st.one_of(st.sampled_from(self.pool["paths"]), text_values(self.pool["paths"]))
        if name.endswith("id") or name.endswith("_ids"):
            return st.one_of(st.sampled_from(self.pool["ids"]), uuid_values(), text_values(self.pool["ids"]))
        if name == "sha256":
            return st.one_of(st.sampled_from(self.pool["shas"]), text_values(self.pool["shas"]))
        if name in ("cron", "rrule", "timezone", "encoding", "blob", "type", "order_by"):
            return st.one_of(st.sampled_from(self.pool["specials"]), text_values(self.pool["specials"]))
        return text_values(self.pool["names"])

    def scalar(self, field: _d.FieldDescriptor):
        t = field.type
        if t == _d.FieldDescriptor.TYPE_STRING:
            return self.strings_for(field)
        if t == _d.FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=64)
        if t == _d.FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if t in (_d.FieldDescriptor.TYPE_DOUBLE, _d.FieldDescriptor.TYPE_FLOAT):
            return st.floats(allow_nan=True, allow_infinity=True, width=64 if t == _d.FieldDescriptor.TYPE_DOUBLE else 32)
        if t == _d.FieldDescriptor.TYPE_ENUM:
            known = [v.number for v in field.enum_type.values]
            return st.one_of(st.sampled_from(known), st.integers(min_value=-3, max_value=max(known) + 5),
                             st.sampled_from([-(2**31), 2**31 - 1]))
        lo, hi = INT_RANGES[t]
        return st.one_of(
            st.integers(min_value=max(lo, -5), max_value=min(hi, 2000)),
            st.sampled_from(sorted({lo, hi, 0, 1, max(lo, -1), min(hi, 1000), min(hi, 1001)})),
            st.integers(min_value=lo, max_value=hi),
        )

    def message(self, desc: _d.Descriptor, depth: int = 0):
        full = desc.full_name
        if full == "google.protobuf.Struct":
            return structs()
        if full == "google.protobuf.Timestamp" or full == "google.protobuf.Duration":
            parts = timestamp_parts() if full.endswith("Timestamp") else duration_parts()
            cls = message_factory.GetMessageClass(desc)
            return parts.map(lambda p: cls(seconds=p[0], nanos=p[1]))
        if full == "google.protobuf.Value":
            return json_values().map(_value)
        if full == "google.protobuf.ListValue":
            return st.lists(json_values(), max_size=3).map(_list_value)
        cls = message_factory.GetMessageClass(desc)
        if depth > 4:
            return st.just(cls())

        @st.composite
        def build(draw):
            msg = cls()
            chosen_oneof = {o.name: draw(st.sampled_from([None] + [f.name for f in o.fields]))
                            for o in desc.oneofs if not o.name.startswith("_")}
            for field in desc.fields:
                oneof = field.containing_oneof
                if oneof is not None and not oneof.name.startswith("_"):
                    if chosen_oneof[oneof.name] != field.name:
                        continue
                elif not draw(st.booleans()) and not field.name.endswith("id"):
                    continue  # leave unset
                self._fill(draw, msg, field, depth)
            return msg

        return build()

    def request(self, md):
        """Requests for this RPC: a message, or for a client stream a short list
        of them, often behind a well-formed first one."""
        one = self.message(md.input_type)
        if not md.client_streaming:
            return one
        many = st.lists(one, max_size=4)
        opening = OPENINGS.get(md.full_name)
        if opening is None:
            return many
        return st.one_of(many, st.tuples(opening(self.pool), st.lists(one, max_size=3)).map(lambda t: [t[0], *t[1]]))

    def _fill(self, draw, msg, field: _d.FieldDescriptor, depth: int):
        is_message = field.type == _d.FieldDescriptor.TYPE_MESSAGE
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f = field.message_type.fields_by_name["key"]
            val_f = field.message_type.fields_by_name["value"]
            for k, v in draw(st.dictionaries(self.scalar(key_f), self.scalar(val_f), max_size=3)).items():
                getattr(msg, field.name)[k] = v
            return
        repeated = field.is_repeated
        if is_message:
            strat = self.message(field.message_type, depth + 1)
            if repeated:
                for item in draw(st.lists(strat, max_size=3)):
                    getattr(msg, field.name).add().CopyFrom(item)
            else:
                getattr(msg, field.name).CopyFrom(draw(strat))
        elif repeated:
            getattr(msg, field.name).extend(draw(st.lists(self.scalar(field), max_size=4)))
        else:
            setattr(msg, field.name, draw(self.scalar(field)))


def _hello(pool):
    from flowdeck.v1 import agent_service_pb2 as apb

    return st.integers(min_value=0, max_value=3).map(lambda n: apb.LeaseRequest(hello=apb.AgentHello(
        agent_name="fuzz-agent", work_queues=[pool["queue"]], capacity=n)))


def _upload_metadata(pool):
    from flowdeck.v1 import flow_data_service_pb2 as fpb

    return st.integers(min_value=0, max_value=64).map(lambda n: fpb.UploadFlowDataRequest(
        metadata=fpb.FlowDataMetadata(flow_name="fuzz-flow", filename="flow.py", size=n)))


# Well-formed first messages of client streams, by method.
OPENINGS = {
    "flowdeck.v1.AgentService.Lease": _hello,
    "flowdeck.v1.FlowDataService.UploadFlowData": _upload_metadata,
}


def _value(v) -> struct_pb2.Value:
    s = struct_pb2.Struct()
    s.update({"v": v})
    return s.fields["v"]


def _list_value(vs) -> struct_pb2.ListValue:
    lv = struct_pb2.ListValue()
    lv.extend(vs)
    return lv


# -- the test --------------------------------------------------------------------


@pytest.fixture(scope="module", params=["open", "auth"])
def fuzz_server(request, database_url, tmp_path_factory):
    """Every test here runs against an open server and again with auth on (issue 8),
    calling with an admin key: the auth layer must not add UNKNOWN or INTERNAL
    either. Background loops on: the lease stream needs the dispatcher."""
    from conftest import in_process_server

    server = in_process_server(tmp_path_factory.mktemp(f"fuzz-{request.param}"), background=True,
                               database_url=database_url, auth=request.param == "auth", scheduler_enabled=False)
    yield server
    server.stop()


@pytest.fixture
def api_keys(fuzz_server, db, session_key_material) -> dict[str, str] | None:
    """On a clean database: a key per scope when auth is on."""
    from conftest import insert_test_keys

    return insert_test_keys(db, session_key_material) if fuzz_server.settings.auth else None


@pytest.fixture
def client(fuzz_server, api_keys):
    from flowdeck.client import FlowdeckClient

    with FlowdeckClient(fuzz_server.address, timeout=20, api_key=api_keys and api_keys["admin"]) as c:
        yield c


@pytest.fixture
def caller(fuzz_server, api_keys):
    with grpc.insecure_channel(fuzz_server.address) as channel:
        yield Caller(channel, api_keys)


def seed(client) -> dict:
    """Real objects, so random requests also reach code behind the lookups."""
    dep, _ = client.create_deployment("fuzz-dep", flow_name="fuzz-flow", tags=["t1", "t2"],
                                      parameters={"a": 1}, schedule={"interval": 3600})
    run = client.create_flow_run_from_deployment(deployment_id=dep.id, idempotency_key="fuzz-key")
    running = client.create_flow_run(flow_name="fuzz-flow", state="RUNNING")
    client.create_logs([{"flow_run_id": run.id, "timestamp": "2030-01-01T00:00:00Z", "message": "hi"}])
    queue = client.create_work_queue("fuzz-queue", tags=["t1"])
    _, sha = client.upload_flow_data(b"print('fuzz')\n", flow_name="fuzz-flow", filename="flow.py")
    from flowdeck.server import deployments

    return {
        "queue": queue.name,
        "ids": [dep.id, dep.flow_id, run.id, running.id, queue.id, str(uuid.uuid4())],
        "names": ["fuzz-flow", "fuzz-dep", "fuzz-flow/fuzz-dep", run.name, "fuzz-key", "t1", "t2",
                  "SCHEDULED", "Late", "universal", "subprocess", queue.name],
        "paths": list(deployments.MUTABLE) + ["id", "flow_id", "flow_name", "created", "tags.x", ""],
        "specials": ["* * * * *", "0 0 * * *", "*/5 * * * 1-5", "61 * * * *", "FREQ=DAILY", "FREQ=HOURLY;COUNT=3",
                     "DTSTART:20200101T000000\nRRULE:FREQ=MINUTELY", "UTC", "Europe/Berlin", "America/New_York",
                     "Not/AZone", "cloudpickle", "blockstorage", '{"block_id": "local"}',
                     '{"block_id": "' + str(uuid.uuid4()) + '"}', "universal", "subprocess", "in-process",
                     "expected_start_time", "expected_start_time desc", "name desc"],
        "shas": [sha, sha.upper(), sha[:-1], "0" * 64],
    }


@pytest.mark.parametrize("service,method", all_rpcs(), ids=rpc_id)
def test_random_requests_never_get_unknown_or_internal(client, caller, service, method):
    md = method_descriptor(service, method)
    try:
        caller(md, Caller.empty_request(md))
    except grpc.RpcError as e:
        assert e.code() not in FORBIDDEN, f"empty request: {e.code().name}: {e.details()}"

    strategy = Builder(seed(client)).request(md)
    seen: dict[str, int] = {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(request=strategy)
    def check(request):
        try:
            caller(md, request)
            seen["OK"] = seen.get("OK", 0) + 1
        except grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            seen[code.name] = seen.get(code.name, 0) + 1
            assert code not in FORBIDDEN, f"{method} answered {code.name}: {details}\nrequest: {request!r:.2000}"
            assert not LEAK.search(details), f"{method} leaked an exception: {details}"

    check()


def _ts(seconds, nanos=0):
    from google.protobuf import timestamp_pb2

    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def regression_requests():
    """Inputs that once came back INTERNAL, with the code they get now."""
    from google.protobuf import duration_pb2

    from flowdeck.v1 import common_pb2 as c
    from flowdeck.v1 import deployment_service_pb2 as d
    from flowdeck.v1 import flow_run_service_pb2 as r
    from flowdeck.v1 import flow_service_pb2 as f

    nan = struct_pb2.Struct()
    nan.update({"x": [float("nan")]})
    token = base64.urlsafe_b64encode(json.dumps({"o": 10**30}).encode()).decode()
    bad = grpc.StatusCode.INVALID_ARGUMENT
    return [
        # NUL cannot be stored in Postgres text or jsonb: refused on every backend.
        ("DeploymentService", "CreateDeployment", d.CreateDeploymentRequest(
            deployment=c.Deployment(name="d", flow_name="f", description="a\x00b")), bad),
        ("FlowService", "ListFlows", f.ListFlowsRequest(name_prefix="a\x00"), bad),
        ("DeploymentService", "ListDeployments", d.ListDeploymentsRequest(tags=["\x00"]), bad),
        ("FlowRunService", "CreateFlowRun",
         r.CreateFlowRunRequest(flow_run=c.FlowRun(flow_name="f", parameters=_struct({"k\x00": 1}))), bad),
        # Forged page tokens past any integer column.
        ("FlowService", "ListFlows", f.ListFlowsRequest(page_token=token), bad),
        ("FlowRunService", "ListFlowRuns", r.ListFlowRunsRequest(page_token=token), bad),
        # NaN in a Struct (json_format refuses to print it).
        ("FlowRunService", "CreateFlowRunFromDeployment",
         r.CreateFlowRunFromDeploymentRequest(deployment_name="f/d", parameters=nan), bad),
        # A request_id in one of uuid.UUID's other spellings is longer than the column.
        ("FlowService", "CreateFlow",
         f.CreateFlowRequest(flow=c.Flow(name="b"), request_id="{e3e70682-c209-4cac-629f-6fbed82c07cd}"), None),
        # Timestamps and Durations out of their ranges.
        ("DeploymentService", "CreateDeployment", d.CreateDeploymentRequest(deployment=c.Deployment(
            name="d", flow_name="f", schedule=c.Schedule(interval=c.IntervalSchedule(
                interval=duration_pb2.Duration(seconds=60), anchor_date=_ts(0, -1)))), ), bad),
        ("DeploymentService", "CreateDeployment", d.CreateDeploymentRequest(deployment=c.Deployment(
            name="d", flow_name="f", max_lateness=duration_pb2.Duration(seconds=2**63 - 1))), bad),
        # Longer than its column.
        ("FlowRunService", "CreateFlowRun", r.CreateFlowRunRequest(flow_run=c.FlowRun(
            flow_name="f", flow_runner=c.FlowRunnerSettings(type="x" * 100))), bad),
    ]


def _struct(d):
    s = struct_pb2.Struct()
    s.update(d)
    return s


@pytest.mark.parametrize("index", range(len(regression_requests())))
def test_regressions(caller, index):
    service, method, request, expected = regression_requests()[index]
    try:
        caller(method_descriptor(f"flowdeck.v1.{service}", method), request)
        code = None
    except grpc.RpcError as e:
        code = e.code()
        assert not LEAK.search(e.details() or "")
    assert code == expected, f"{method}: {code} {request!r}"
