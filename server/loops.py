"""Background loops the server runs (scheduler, late marking, lease expiry)."""
from __future__ import annotations

import asyncio

from flowdeck.server.api.base import AppContext


def start_all(app: AppContext) -> list[asyncio.Task]:
    return []
