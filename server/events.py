"""In-process wake-ups: who is waiting for new runs or state changes."""
from __future__ import annotations

import asyncio


def call_in_loop(loop: asyncio.AbstractEventLoop, fn, *args) -> None:
    """Call `fn(*args)` on `loop`: directly from the loop's own thread, else
    handed over thread-safely (database work runs in a thread pool)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args)


class Events:
    """Level-triggered wake-ups for loops in the server (scheduler, dispatcher)."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        # Set by flowdeck.server.notify on Postgres: tells other replicas too.
        self.remote = None

    def subscribe(self, topic: str) -> asyncio.Event:
        ev = asyncio.Event()
        self._waiters.setdefault(topic, set()).add(ev)
        return ev

    def publish(self, topic: str) -> None:
        """Wake every waiter of `topic`; safe from any thread."""
        if self.remote is not None:
            self.remote(topic)
        self.publish_local(topic)

    def publish_local(self, topic: str) -> None:
        """Wake this process's waiters only (what a remote notification does)."""
        if self.loop is not None:
            call_in_loop(self.loop, self._set, topic)

    def _set(self, topic: str) -> None:
        for ev in self._waiters.get(topic, ()):
            ev.set()
