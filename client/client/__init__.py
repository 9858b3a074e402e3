"""The typed flowdeck client: pydantic models in and out, one method per RPC.

    from flowdeck.client import get_client

    client = get_client()          # FLOWDECK_API_URL, else the embedded default
    dep, created = client.create_deployment("daily", flow_name="etl")
    run = client.create_flow_run_from_deployment(deployment_name="etl/daily")

Errors are `flowdeck.exceptions` classes, one per gRPC status. See
`FlowdeckClient` for the shapes every method shares.
"""
from __future__ import annotations

import os
from typing import Any

from flowdeck.client._client import FlowdeckClient

__all__ = ["FlowdeckClient", "get_client"]


DEFAULT_TIMEOUT = 30.0


def _timeout_from_env() -> float:
    """FLOWDECK_API_TIMEOUT: seconds each call may take (default 30)."""
    from flowdeck.exceptions import InvalidArgumentError

    raw = os.environ.get("FLOWDECK_API_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise InvalidArgumentError(f"invalid FLOWDECK_API_TIMEOUT {raw!r}: a number of seconds above 0",
                                   field="FLOWDECK_API_TIMEOUT")
    return value


def get_client(address: str | None = None, **kwargs: Any) -> FlowdeckClient:
    """A client for `address`, else FLOWDECK_API_URL, else the embedded default
    (an in-process server on SQLite under $FLOWDECK_HOME). `kwargs` go to
    `FlowdeckClient` (timeout, retries, api_key); `timeout` defaults to
    FLOWDECK_API_TIMEOUT, else 30 seconds."""
    address = address or os.environ.get("FLOWDECK_API_URL")
    kwargs.setdefault("timeout", _timeout_from_env())
    if not address:
        from flowdeck.client._embedded import embedded_address

        address = embedded_address()
    return FlowdeckClient(address, **kwargs)
