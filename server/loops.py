"""Background loops the server runs (scheduler, late marking, lease expiry)."""
from __future__ import annotations

import asyncio

from flowdeck.server.api.base import AppContext


def start_all(app: AppContext) -> list[asyncio.Task]:
    tasks: list[asyncio.Task] = []
    if app.settings.scheduler_enabled:
        tasks.append(asyncio.create_task(scheduler_loop(app), name="flowdeck-scheduler"))
    # Agents: dispatcher, lease expiry, cancel push; Postgres LISTEN/NOTIFY.
    from flowdeck.server import dispatcher, notify

    tasks.extend(dispatcher.get(app).start())
    tasks.extend(notify.start(app))
    return tasks


async def scheduler_loop(app: AppContext, *, clock=None, period: float | None = None) -> None:
    """Every `scheduler_loop_seconds`: top up schedules, expire runs past their
    max_lateness, mark late runs. `clock` (a callable returning an aware
    datetime; default: app.clock if set, else the wall clock) is injectable."""
    import logging
    import time

    from flowdeck.server import scheduler
    from flowdeck.server.models import utcnow

    log = logging.getLogger("flowdeck.server.scheduler")
    clock = clock or getattr(app, "clock", None) or utcnow
    period = app.settings.scheduler_loop_seconds if period is None else period
    while True:
        started = time.monotonic()
        try:
            result = await app.db.run(scheduler.scheduler_tick, app.db, app.settings, clock())
            if result.created or result.expired:
                app.events.publish("runs")
            if result.created or result.expired or result.late:
                log.debug("scheduler: %d runs created, %d expired, %d late",
                          result.created, result.expired, result.late)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep the loop alive; the next tick retries
            log.exception("scheduler pass failed")
        await asyncio.sleep(max(0.05, period - (time.monotonic() - started)))
