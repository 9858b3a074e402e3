"""The background loops a server runs: the scheduler, the request-log pruner,
the metrics' run counts, the dispatcher's (dispatch, lease expiry, cancel
push) and, on Postgres, LISTEN/NOTIFY. Each pass is a plain function that takes its `now`, so tests
drive them without sleeping."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Awaitable, Callable

from flowdeck.server import metrics, metrics_collector, notify, requests, run_counts, scheduler
from flowdeck.server.api.base import AppContext
from flowdeck.server.db import Database
from flowdeck.server.settings import Settings

log = logging.getLogger("flowdeck.server.loops")
# The request log is pruned this often at most (and at least every quarter retention).
PRUNE_EVERY_SECONDS = 3600.0


def start_all(app: AppContext) -> list[asyncio.Task]:
    tasks: list[asyncio.Task] = []
    if app.settings.scheduler_enabled:
        tasks.append(asyncio.create_task(scheduler_loop(app), name="flowdeck-scheduler"))
    tasks.append(asyncio.create_task(request_log_loop(app), name="flowdeck-request-log"))
    if app.settings.metrics:
        tasks.append(asyncio.create_task(metrics_loop(app), name="flowdeck-metrics"))
    tasks.extend(app.dispatcher.start())
    tasks.extend(notify.start(app))
    return tasks


async def _every(period: float, what: str, one_pass: Callable[[], Awaitable[None]]) -> None:
    """Run `one_pass` every `period` seconds; a failed pass is logged and the next one retries."""
    while True:
        started = time.monotonic()
        try:
            await one_pass()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep the loop alive
            log.exception("%s pass failed", what)
        await asyncio.sleep(max(0.05, period - (time.monotonic() - started)))


async def scheduler_loop(app: AppContext, *, clock: Callable[[], dt.datetime] | None = None,
                         period: float | None = None) -> None:
    """Every `scheduler_loop_seconds`: top up schedules, expire runs past their
    max_lateness, mark late runs. `clock` defaults to the app's."""
    clock = clock or app.clock

    async def one_pass() -> None:
        started = time.monotonic()
        result = await app.db.run(scheduler.scheduler_tick, app.db, app.settings, clock())
        metrics.scheduler_pass(time.monotonic() - started, result.created)
        if result.created or result.expired:
            app.events.publish("runs")
        if result.created or result.expired or result.late:
            log.debug("scheduler: %d runs created, %d expired, %d late",
                      result.created, result.expired, result.late)

    await _every(app.settings.scheduler_loop_seconds if period is None else period, "scheduler", one_pass)


def prune_request_log(db: Database, settings: Settings, now: dt.datetime) -> int:
    """One pass: forget request_id responses older than the retention window."""
    with db.write() as s:
        return requests.prune(s, settings.request_log_retention_seconds, now)


async def request_log_loop(app: AppContext) -> None:
    retention = float(app.settings.request_log_retention_seconds)

    async def one_pass() -> None:
        pruned = await app.db.run(prune_request_log, app.db, app.settings, app.clock())
        if pruned:
            log.debug("request log: %d entries past retention pruned", pruned)

    await _every(min(PRUNE_EVERY_SECONDS, max(1.0, retention / 4)), "request log", one_pass)


async def metrics_loop(app: AppContext) -> None:
    """Every `metrics_refresh_seconds`: count the runs behind the metrics' gauges."""
    watched = metrics_collector.COLLECTOR.watch(app)
    late_after = float(app.settings.late_after_seconds)

    async def one_pass() -> None:
        now = app.clock()
        metrics_collector.COLLECTOR.store(watched, await app.db.run_read(
            lambda s: run_counts.count(s, now, late_after)))

    try:
        await _every(float(app.settings.metrics_refresh_seconds), "metrics", one_pass)
    finally:
        metrics_collector.COLLECTOR.forget(watched)
