"""The request-id log (AIP-155 replays) is kept for a retention window and
pruned by a background loop, so the table does not grow forever. The pass
takes its `now`: nothing here sleeps for time to pass."""
from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from flowdeck.server.settings import Settings

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
AGES = {"a" * 32: 7200, "b" * 32: 3601, "c" * 32: 3599, "d" * 32: 10}  # request id -> seconds old at T0


def _log_entries(db, now: dt.datetime) -> None:
    from flowdeck.server.models import RequestLogRow

    with db.write() as s:
        for request_id, age in AGES.items():
            s.add(RequestLogRow(method="CreateFlow", request_id=request_id, response=b"kept",
                                created=now - dt.timedelta(seconds=age)))


def _kept(db) -> list[str]:
    from flowdeck.server.models import RequestLogRow

    with db.read() as s:
        return sorted(s.scalars(select(RequestLogRow.request_id)))


def test_old_entries_go_and_new_ones_stay(db):
    from flowdeck.server import loops, requests

    _log_entries(db, T0)
    settings = Settings(request_log_retention_seconds=3600)
    assert loops.prune_request_log(db, settings, T0) == 2
    assert _kept(db) == ["c" * 32, "d" * 32]
    with db.read() as s:  # what is kept still replays
        assert requests.find(s, "CreateFlow", "c" * 32) == b"kept"
    # An hour later the rest has aged out too; pruning again is harmless.
    assert loops.prune_request_log(db, settings, T0 + dt.timedelta(hours=1)) == 2
    assert loops.prune_request_log(db, settings, T0 + dt.timedelta(hours=1)) == 0
    assert _kept(db) == []


def test_the_retention_is_a_day_by_default_and_configurable(monkeypatch):
    assert Settings().request_log_retention_seconds == 86400
    monkeypatch.setenv("FLOWDECK_REQUEST_LOG_RETENTION_SECONDS", "600")
    assert Settings.from_env().request_log_retention_seconds == 600


def test_the_background_loop_prunes_with_the_app_clock(db):
    """The server's loop runs the pass at once, with the app's clock."""
    from flowdeck.server import loops
    from flowdeck.server.api.base import AppContext
    from flowdeck.server.events import Events

    _log_entries(db, T0)

    async def main():
        app = AppContext(db=db, settings=Settings(request_log_retention_seconds=3600), events=Events(),
                         clock=lambda: T0)
        task = asyncio.create_task(loops.request_log_loop(app))
        try:
            for _ in range(1000):  # until the first pass is done (it runs at once)
                if len(await db.run(_kept, db)) == 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
        return await db.run(_kept, db)

    assert asyncio.run(main()) == ["c" * 32, "d" * 32]
