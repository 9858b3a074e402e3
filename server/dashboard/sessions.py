"""Server-side sessions: the browser holds an opaque id, never the API key.

A session record holds the API key (with --auth), the key's scope as found at
login, the CSRF token of its forms and when it ends. Without --auth every
browser still gets a session, for the CSRF token.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import secrets
import time

from flowdeck.server.dashboard.api import Api, Caller
from flowdeck.v1 import api_key_service_pb2 as kpb

LIFETIME = 12 * 3600.0
MAX_SESSIONS = 10_000
# What each action needs; a scope -> the actions it allows.
WRITE, ADMIN = "write", "admin"
ALLOWS = {"admin": {WRITE, ADMIN}, "write": {WRITE}, "read": set(), "agent": set()}


@dataclasses.dataclass
class Session:
    id: str
    csrf: str
    expires: float
    key: str | None = None
    scope: str = "admin"  # with auth off the API lets everyone do everything

    def may(self, action: str) -> bool:
        return action in ALLOWS.get(self.scope, set())

    @property
    def key_id(self) -> str:
        """Who this session calls the API as, without the key (live topics are per caller)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16] if self.key else ""

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    """Session records in memory, oldest dropped past MAX_SESSIONS."""

    def __init__(self, clock=time.monotonic):
        self._by_id: collections.OrderedDict[str, Session] = collections.OrderedDict()
        self._clock = clock

    def new(self, *, key: str | None = None, scope: str = "admin") -> Session:
        s = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
                    expires=self._clock() + LIFETIME, key=key, scope=scope)
        self._by_id[s.id] = s
        while len(self._by_id) > MAX_SESSIONS:
            self._by_id.popitem(last=False)
        return s

    def get(self, session_id: str | None) -> Session | None:
        s = self._by_id.get(session_id or "")
        if s is None:
            return None
        if s.expires < self._clock():
            del self._by_id[s.id]
            return None
        return s

    def drop(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)


async def scope_of(api: Api, key: str) -> str:
    """The key's scope, as the API tells its caller (UNAUTHENTICATED: not a key it accepts)."""
    me = await Caller(api, key)(api.api_keys.GetCurrentApiKey, kpb.GetCurrentApiKeyRequest())
    return kpb.ApiKeyScope.Name(me.scope).removeprefix("API_KEY_SCOPE_").lower()
