"""What the dashboard app holds for its lifetime."""
from __future__ import annotations

import asyncio
import time

from flowdeck.server.dashboard.api import Api, Caller
from flowdeck.server.dashboard.live import Hub
from flowdeck.server.dashboard.sessions import Sessions
from flowdeck.v1 import deployment_service_pb2 as dpb


class DeploymentNames:
    """deployment id -> "flow/deployment" for run lists (runs carry only the
    id): looked up once per id and kept a while, so a page of runs costs one
    list call, not one call per row."""

    TTL = 60.0
    MAX = 20_000

    def __init__(self) -> None:
        self._names: dict[str, tuple[float, str]] = {}

    async def of(self, call: Caller, ids) -> dict[str, str]:
        now = time.monotonic()
        wanted = {i for i in ids if i}
        missing = [i for i in wanted if i not in self._names or self._names[i][0] < now]
        if missing:
            found = await asyncio.gather(*(self._lookup(call, i) for i in missing))
            if len(self._names) + len(missing) > self.MAX:
                self._names.clear()
            for i, name in zip(missing, found):
                self._names[i] = (now + self.TTL, name)
        return {i: self._names[i][1] for i in wanted if i in self._names}

    @staticmethod
    async def _lookup(call: Caller, dep_id: str) -> str:
        from flowdeck.server.dashboard.api import ApiError

        try:
            d = await call(call.api.deployments.GetDeployment, dpb.GetDeploymentRequest(id=dep_id))
        except ApiError:
            return ""  # deleted since (or not ours to see): the row shows the id
        return f"{d.flow_name}/{d.name}"


class Dashboard:
    def __init__(self, api_target: str, *, auth: bool, secure: bool, poll_seconds: float = 0.5):
        self.api_target = api_target
        self.auth = auth
        self.secure = secure
        self.poll_seconds = poll_seconds
        self.sessions = Sessions()
        self.hub = Hub()
        self.names = DeploymentNames()
        # caller -> (valid until, runs by state, when counted): the overview's counts
        self.counts: dict[str, tuple] = {}
        self._api: Api | None = None

    @property
    def api(self) -> Api:
        # Made on first use, on the event loop that serves the pages.
        if self._api is None:
            self._api = Api(self.api_target)
        return self._api

    async def close(self) -> None:
        self.hub.close()
        if self._api is not None:
            await self._api.close()
