"""The typed client keeps up with the contract: every RPC of every service in
proto/flowdeck/v1 (read from the generated descriptors) has a FlowdeckClient
method, named after it in snake_case and calling it, or is listed in UNWRAPPED
with the reason. A new RPC fails this test until it is wrapped or listed."""
from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import re
import types

import flowdeck.v1
from flowdeck.client import FlowdeckClient

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The one list of RPCs the client leaves alone on purpose, and why.
UNWRAPPED = {
    "flowdeck.v1.AgentService/Lease": "the agent's bidirectional lease stream: flowdeck.agent holds it open "
                                      "itself, with its own reconnects, heartbeats and acks",
}

# Public attributes of the client that are not RPCs.
NOT_RPCS = {"address", "timeout", "close"}


def proto_files():
    """The generated descriptor of every proto file in flowdeck.v1."""
    for info in pkgutil.iter_modules(flowdeck.v1.__path__):
        if info.name.endswith("_pb2"):
            yield importlib.import_module(f"flowdeck.v1.{info.name}").DESCRIPTOR


def proto_services():
    for file in proto_files():
        yield from file.services_by_name.values()


def method_name(rpc: str) -> str:
    """CreateFlowRunFromDeployment -> create_flow_run_from_deployment."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", rpc).lower()


def _names_used(code: types.CodeType):
    """The attribute and global names a function's code (nested functions included) uses."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names_used(const)


def wraps(client_cls, rpc) -> bool:
    """The client has the method named after `rpc`, and it calls `rpc` (`stub.Rpc`)."""
    method = getattr(client_cls, method_name(rpc.name), None)
    return inspect.isfunction(method) and rpc.name in set(_names_used(method.__code__))


def unwrapped(services, client_cls, table) -> list[str]:
    """RPCs with neither a client method nor an entry in `table`."""
    return [f"{s.full_name}/{rpc.name}" for s in services for rpc in s.methods
            if f"{s.full_name}/{rpc.name}" not in table and not wraps(client_cls, rpc)]


def test_the_descriptors_cover_every_proto_file():
    on_disk = {p.relative_to(ROOT / "proto").as_posix() for p in (ROOT / "proto" / "flowdeck" / "v1").glob("*.proto")}
    assert {f.name for f in proto_files()} == on_disk


def test_every_rpc_has_a_client_method():
    assert unwrapped(list(proto_services()), FlowdeckClient, UNWRAPPED) == []


def test_the_unwrapped_table_names_rpcs_that_exist_and_are_unwrapped():
    rpcs = {f"{s.full_name}/{rpc.name}": rpc for s in proto_services() for rpc in s.methods}
    for name, reason in UNWRAPPED.items():
        assert name in rpcs, f"{name} is listed as unwrapped but no such RPC exists"
        assert not wraps(FlowdeckClient, rpcs[name]), f"{name} has a client method: drop it from UNWRAPPED"
        assert reason.strip()


def test_every_public_method_is_an_rpc():
    """Nothing else is public: no stubs, no call/mutate, no message builders."""
    rpc_methods = {method_name(rpc.name) for s in proto_services() for rpc in s.methods}
    public = {n for n in dir(FlowdeckClient) if not n.startswith("_")}
    assert public - rpc_methods == NOT_RPCS


def test_a_new_rpc_without_a_method_fails():
    """The check can fail: a service with one more RPC, built as protoc would."""
    from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2

    pool = descriptor_pool.DescriptorPool()
    empty = descriptor_pb2.FileDescriptorProto()
    empty_pb2.DESCRIPTOR.CopyToProto(empty)
    pool.AddSerializedFile(empty.SerializeToString())
    file = descriptor_pb2.FileDescriptorProto(name="flowdeck/v1/archive_service.proto", package="flowdeck.v1",
                                              dependency=["google/protobuf/empty.proto"])
    service = file.service.add(name="FlowService")
    service.method.add(name="GetFlow", input_type=".google.protobuf.Empty", output_type=".google.protobuf.Empty")
    service.method.add(name="ArchiveFlow", input_type=".google.protobuf.Empty",
                       output_type=".google.protobuf.Empty")
    pool.AddSerializedFile(file.SerializeToString())
    new = pool.FindServiceByName("flowdeck.v1.FlowService")
    assert unwrapped([*proto_services(), new], FlowdeckClient, UNWRAPPED) == ["flowdeck.v1.FlowService/ArchiveFlow"]
