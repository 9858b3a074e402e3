"""Postgres LISTEN/NOTIFY: every replica on one database hears of new runs,
state changes and cancellations, so whichever replica holds an agent's stream
can push to it at once.

`app.events.publish(topic)` (called by the servicers after commits) also
queues a NOTIFY on channel `flowdeck_events` with payload "<replica>:<topic>";
a listener on each replica wakes its local waiters for notifications from
other replicas. Both connections are psycopg async connections on the
server's event loop (no thread is pinned). SQLite has one process and needs
none of this.
"""
from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy.engine import make_url

from flowdeck.server.events import call_in_loop

log = logging.getLogger("flowdeck.server.notify")

CHANNEL = "flowdeck_events"
TOPICS = ("runs", "cancel")


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Notifier:
    def __init__(self, app) -> None:
        self.app = app
        self.replica = uuid.uuid4().hex[:12]
        self.pending: set[str] = set()
        self.wake = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.conninfo = _conninfo(app.db.url)

    def remote(self, topic: str) -> None:
        """Events.remote: queue a NOTIFY (safe from any thread)."""
        if topic in TOPICS:
            call_in_loop(self.loop, self._queue, topic)

    def _queue(self, topic: str) -> None:
        self.pending.add(topic)
        self.wake.set()

    def start(self) -> list[asyncio.Task]:
        self.app.events.remote = self.remote
        return [asyncio.ensure_future(self._sender()), asyncio.ensure_future(self._listener())]

    async def _sender(self) -> None:
        import psycopg  # only Postgres servers need it

        conn = None
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                topics, self.pending = self.pending, set()
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                    for t in sorted(topics):
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{self.replica}:{t}"))
                except Exception as e:  # noqa: BLE001 - the safety tick covers a lost notification
                    log.warning("NOTIFY failed (%s); other replicas will notice on their next tick", type(e).__name__)
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(1.0)
        finally:
            self.app.events.remote = None
            if conn is not None:
                await conn.close()

    async def _listener(self) -> None:
        import psycopg  # only Postgres servers need it

        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    # We may have missed notifications while (re)connecting.
                    for t in TOPICS:
                        self.app.events.publish_local(t)
                    async for n in conn.notifies():
                        replica, _, topic = n.payload.partition(":")
                        if replica != self.replica and topic in TOPICS:
                            self.app.events.publish_local(topic)
                finally:
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", type(e).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def start(app) -> list[asyncio.Task]:
    if app.db.is_sqlite or not app.settings.pg_notify:
        return []
    return Notifier(app).start()
