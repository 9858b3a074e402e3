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

from flowdeck.core.errors import InvalidArgumentError, UnavailableError, invalid_field
from flowdeck.server.api import convert
from flowdeck.server.api.base import Servicer
from flowdeck.v1 import agent_service_pb2 as pb
from flowdeck.v1 import agent_service_pb2_grpc as rpc

log = logging.getLogger("flowdeck.server.agents")

class AgentServicer(Servicer, rpc.AgentServiceServicer):
    def __init__(self, app):
        super().__init__(app)
        self.dispatcher = app.dispatcher

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
        conn = await self.dispatcher.connect(**convert.agent_hello_in(first.hello))
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
                yield convert.lease_response_out(item)
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
                    # Checked, and nothing more: the lease was recorded when it was sent.
                    for i, lid in enumerate(msg.ack.lease_ids):
                        convert.uuid_str(lid, f"ack.lease_ids[{i}]")
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
            conn.close(UnavailableError("the lease stream failed on the server; reconnect",
                                        reason="LEASE_STREAM_FAILED"))
