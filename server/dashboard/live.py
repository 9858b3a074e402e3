"""Live updates: one upstream watch per topic, fanned out to every open page.

A topic is one thing pages watch (a run, a filtered list) as seen by one caller
(API key). While at least one page listens, one task polls the public API for
it and, when the answer's fingerprint changes, hands the new snapshot to each
listener. A listener keeps only the newest snapshot (a queue bounded to one,
newest wins), so a slow browser tab never holds up the poll, and nothing here
ever waits on the gRPC server's own handlers: it is an ordinary API client.
The API has no push stream to subscribe to; the poll is the one place to swap
for one when it has.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Awaitable, Callable, Hashable

log = logging.getLogger("flowdeck.server.dashboard")

# fetch() -> (fingerprint, snapshot); a raised exception is delivered as the snapshot.
Fetch = Callable[[], Awaitable[tuple[Hashable, Any]]]


class Listener:
    """One page's view of a topic."""

    def __init__(self) -> None:
        self._latest: Any = None
        self._ready = asyncio.Event()
        self.closed = False

    def offer(self, snapshot: Any) -> None:
        self._latest = snapshot
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def next(self, timeout: float | None = None) -> Any:
        """The newest snapshot not yet taken; None on timeout or when the hub closes."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        self._ready.clear()
        if self.closed:
            return None
        snapshot, self._latest = self._latest, None
        return snapshot


class Topic:
    def __init__(self, fetch: Fetch, interval: float):
        self.fetch = fetch
        self.interval = interval
        self.listeners: set[Listener] = set()
        self.fingerprint: Hashable = object()
        self.latest: Any = None
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        while self.listeners:
            try:
                fingerprint, snapshot = await self.fetch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the pages show it (an ApiError, mostly)
                fingerprint, snapshot = ("error", str(exc)), exc
            if fingerprint != self.fingerprint:
                self.fingerprint, self.latest = fingerprint, snapshot
                for listener in self.listeners:
                    listener.offer(snapshot)
            await asyncio.sleep(self.interval)


class Hub:
    def __init__(self) -> None:
        self.topics: dict[Hashable, Topic] = {}
        self.closing = False

    @contextlib.asynccontextmanager
    async def listen(self, key: Hashable, fetch: Fetch, interval: float):
        """Listen to topic `key` (polled with `fetch` every `interval` seconds
        while anyone listens); the first snapshot comes at once when known."""
        listener = Listener()
        if self.closing:
            listener.close()
            yield listener
            return
        topic = self.topics.get(key)
        if topic is None:
            topic = self.topics[key] = Topic(fetch, interval)
        topic.listeners.add(listener)
        if topic.latest is not None:
            listener.offer(topic.latest)
        if topic.task is None or topic.task.done():
            topic.task = asyncio.ensure_future(topic.run())
        try:
            yield listener
        finally:
            topic.listeners.discard(listener)
            if not topic.listeners:
                if topic.task is not None:
                    topic.task.cancel()
                if self.topics.get(key) is topic:
                    del self.topics[key]

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closing = True
        for topic in list(self.topics.values()):
            for listener in topic.listeners:
                listener.close()
            if topic.task is not None:
                topic.task.cancel()
