"""What every servicer shares: the app's parts, the database and the request-id replay."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable, TypeVar

from sqlalchemy.exc import IntegrityError

from flowdeck.core import logs
from flowdeck.core.errors import AbortedError
from flowdeck.server import requests
from flowdeck.server.api.security import Security
from flowdeck.server.db import Database
from flowdeck.server.dispatcher import Dispatcher
from flowdeck.server.events import Events
from flowdeck.server.models import utcnow
from flowdeck.server.settings import Settings

M = TypeVar("M")


@dataclasses.dataclass
class AppContext:
    """One running server's parts, shared by its servicers and loops."""

    db: Database
    settings: Settings
    events: Events
    # What "now" is for the background loops (tests inject their own).
    clock: Callable[[], dt.datetime] = utcnow
    # Made from the parts above.
    security: Security = dataclasses.field(init=False)
    dispatcher: Dispatcher = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.security = Security(self.db, self.settings)
        self.dispatcher = Dispatcher(self.db, self.settings, self.events)


class Servicer:
    def __init__(self, app: AppContext):
        self.app = app
        self.db = app.db

    async def read(self, work: Callable):
        return await self.db.run_read(work)

    async def mutate(self, method: str, request_id: str, response_type: type[M], work: Callable) -> M:
        """Run `work(session)` in one write transaction. With a request_id, the
        first response is stored in the same transaction and replayed on repeats."""
        request_id = requests.check_request_id(request_id)
        logs.bind(request_id=request_id)

        def tx():
            with self.db.write() as s:
                if request_id:
                    stored = requests.find(s, method, request_id)
                    if stored is not None:
                        return response_type.FromString(stored)
                response = work(s)
                if request_id:
                    requests.save(s, method, request_id, response.SerializeToString())
                return response

        def with_retry():
            # A unique constraint hit by a racing writer: the retry sees the
            # winner's row (get-or-create, upsert, idempotency keys).
            for attempt in range(3):
                try:
                    return tx()
                except IntegrityError:
                    if attempt == 2:
                        raise AbortedError("a concurrent change conflicted with this request; retry") from None

        return await self.db.run(with_retry)
