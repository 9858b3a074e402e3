"""AgentService: the bidirectional lease stream.

The agent's first message is a hello (anything else ends the stream with
INVALID_ARGUMENT; unknown queues with NOT_FOUND). The server answers with a
welcome carrying the agent's id (kept across reconnects when the agent sends
it back) and the lease TTL, then pushes LeasedRun and CancelRun messages. The
agent sends heartbeats (extending its leases), acks (harmless twice) and
releases. Each stream is a coroutine on the grpc.aio loop: no thread is
pinned per agent.
"""
from __future__ import annotations

import asyncio
import logging

from flowdeck.server import dispatcher as dispatch
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.core.errors import InvalidArgumentError, invalid_field
from flowdeck.v1 import agent_service_pb2 as pb
from flowdeck.v1 import agent_service_pb2_grpc as rpc

log = logging.getLogger("flowdeck.server.agents")

MAX_CAPACITY = 10_000
MAX_QUEUES = 100


def _hello(msg: pb.AgentHello) -> dict:
    agent_id = convert.uuid_str(msg.agent_id, "hello.agent_id", required=False)
    name = msg.agent_name
    if name:
        convert.name(name, "hello.agent_name")
    if not msg.work_queues:
        raise invalid_field("hello.work_queues", [], "must name at least one work queue")
    if len(msg.work_queues) > MAX_QUEUES:
        raise invalid_field("hello.work_queues", len(msg.work_queues), f"must name at most {MAX_QUEUES} queues")
    queues = []
    for i, q in enumerate(msg.work_queues):
        convert.name(q, f"hello.work_queues[{i}]")
        if q not in queues:
            queues.append(q)
    if not 0 <= msg.capacity <= MAX_CAPACITY:
        raise invalid_field("hello.capacity", msg.capacity, f"must be between 0 and {MAX_CAPACITY}")
    ttl = 0.0
    if msg.HasField("lease_ttl"):
        ttl = msg.lease_ttl.seconds + msg.lease_ttl.nanos / 1e9
        if ttl < 0:
            raise invalid_field("hello.lease_ttl", ttl, "must not be negative (0: the server's TTL)")
    return dict(agent_id=agent_id, agent_name=name, queue_names=queues, capacity=msg.capacity, requested_ttl=ttl)


class AgentServicer(Servicer, rpc.AgentServiceServicer):
    def __init__(self, app):
        super().__init__(app)
        self.dispatcher = dispatch.get(app)

    async def Lease(self, request_iterator, context):
        requests = request_iterator.__aiter__()
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            raise invalid_field("hello", "", "the stream ended before the agent sent a hello",
                                reason="LEASE_PROTOCOL_VIOLATION") from None
        kind = first.WhichOneof("kind")
        if kind != "hello":
            raise invalid_field("kind", kind or "", "the first message on a lease stream must be a hello",
                            reason="LEASE_PROTOCOL_VIOLATION")
        conn = await self.dispatcher.connect(**_hello(first.hello))
        reader = None
        try:
            welcome = pb.AgentWelcome(agent_id=conn.agent_id)
            welcome.lease_ttl.FromNanoseconds(int(conn.ttl * 1e9))
            yield pb.LeaseResponse(welcome=welcome)
            reader = asyncio.ensure_future(self._read(requests, conn))
            while True:
                item = await conn.outbox.get()
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            if reader is not None:
                reader.cancel()
            self.dispatcher.disconnect(conn)

    async def _read(self, requests, conn) -> None:
        """Consume the agent's messages until it closes its side."""
        try:
            async for msg in requests:
                kind = msg.WhichOneof("kind")
                if kind == "heartbeat":
                    ids = []
                    for i, rid in enumerate(msg.heartbeat.flow_run_ids):
                        ids.append(convert.uuid_str(rid, f"heartbeat.flow_run_ids[{i}]"))
                    await self.dispatcher.heartbeat(conn, ids)
                elif kind == "ack":
                    for i, lid in enumerate(msg.ack.lease_ids):
                        convert.uuid_str(lid, f"ack.lease_ids[{i}]")
                    self.dispatcher.ack(conn, msg.ack.lease_ids)
                elif kind == "release":
                    lid = convert.uuid_str(msg.release.lease_id, "release.lease_id")
                    await self.dispatcher.release(conn, lid)
                elif kind == "hello":
                    raise invalid_field("hello", conn.agent_id, "a lease stream takes one hello, first",
                                        reason="LEASE_PROTOCOL_VIOLATION")
                else:
                    raise invalid_field("kind", "", "an empty message is not a heartbeat, ack or release",
                                        reason="LEASE_PROTOCOL_VIOLATION")
            conn.close()
        except asyncio.CancelledError:
            raise
        except InvalidArgumentError as e:
            conn.close(e)
        except Exception as e:  # noqa: BLE001 - the stream ends; the agent reconnects
            if type(e).__name__ not in ("AbortError", "UsageError", "ExecuteBatchError"):
                log.warning("lease stream of agent %s failed: %s", conn.agent_name, e)
            from flowdeck.core.errors import UnavailableError

            conn.close(UnavailableError("the lease stream failed on the server; reconnect",
                                        reason="LEASE_STREAM_FAILED"))
