"""Key verification: who the caller is, whether the scope table lets it call
an RPC, and the long-lived streams open under each key.

* With auth on, the API key comes in `authorization: Bearer KEY`: missing,
  unknown, wrong or revoked keys are UNAUTHENTICATED; a key whose scope the
  table (flowdeck.server.api.scopes) does not allow is PERMISSION_DENIED
  naming the scope needed.
* A key verified once skips scrypt while its row is unchanged.
* Long-lived streams (the lease stream) are counted per key, and end at once
  when their key is revoked: on this server when RevokeApiKey is called here,
  within auth_recheck_seconds when it is revoked elsewhere.
"""
from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import hmac
import logging
import secrets

from flowdeck.core.errors import PermissionDeniedError, ResourceExhaustedError, UnauthenticatedError
from flowdeck.server import api_keys
from flowdeck.server.api.scopes import ALLOWED, OPEN, SCOPE_FOR, needed_text
from flowdeck.server.db import Database
from flowdeck.server.settings import Settings

log = logging.getLogger("flowdeck.server.auth")


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller: a verified, unrevoked key (never the key itself)."""

    key_id: str
    name: str
    scope: str


# The caller of the RPC being handled (None with auth off), for servicers.
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "flowdeck_principal", default=None)


def _bearer(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthenticatedError("the authorization header must read 'Bearer KEY'",
                                           reason="BAD_AUTHORIZATION_HEADER")
            return token.strip()
    return ""


class KeyStreams:
    """The long-lived streams open under one key. Each runs inside an
    asyncio.Timeout that revocation moves to now, which ends the stream."""

    def __init__(self) -> None:
        self.count = 0
        self.revoked = False
        self.watcher: asyncio.Task | None = None
        self._timeouts: set[asyncio.Timeout] = set()

    def end_when_revoked(self, timeout: asyncio.Timeout) -> None:
        self._timeouts.add(timeout)
        if self.revoked:
            timeout.reschedule(asyncio.get_running_loop().time())

    def forget(self, timeout: asyncio.Timeout) -> None:
        self._timeouts.discard(timeout)

    def revoke(self) -> None:
        self.revoked = True
        now = asyncio.get_running_loop().time()
        for timeout in self._timeouts:
            timeout.reschedule(now)


class Security:
    """The per-server state behind the auth interceptor."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        # key id -> (stored hash, HMAC of the key under a per-process secret).
        self._mac_secret = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._streams: dict[str, KeyStreams] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.settings.auth)

    def _mac(self, key: str) -> bytes:
        return hmac.new(self._mac_secret, key.encode(), hashlib.sha256).digest()

    def _verify(self, key: str) -> Principal:
        """Runs on the database pool: one primary-key read, scrypt only the first time."""
        parsed = api_keys.parse(key)
        if parsed is None:
            raise UnauthenticatedError("invalid API key", reason="INVALID_API_KEY")
        key_id = parsed[0]
        with self.db.read() as s:
            info = api_keys.lookup(s, key_id)
        if info is None:
            raise UnauthenticatedError("invalid API key", reason="INVALID_API_KEY")
        mac = self._mac(key)
        cached = self._verified.get(key_id)
        if not (cached and cached[0] == info.secret_hash and hmac.compare_digest(cached[1], mac)):
            if not api_keys.verify_secret(key, info.secret_hash):
                raise UnauthenticatedError("invalid API key", reason="INVALID_API_KEY")
            self._verified[key_id] = (info.secret_hash, mac)
        if info.revoked:
            raise UnauthenticatedError(f"the API key {info.name!r} was revoked", reason="API_KEY_REVOKED")
        return Principal(key_id=info.id, name=info.name, scope=info.scope)

    async def authenticate(self, metadata) -> Principal:
        key = _bearer(metadata)
        if not key:
            raise UnauthenticatedError("this server requires an API key: send 'authorization: Bearer KEY' "
                                       "(FLOWDECK_API_KEY)", reason="API_KEY_REQUIRED")
        return await self.db.run(self._verify, key)

    async def admit(self, method: str, metadata) -> Principal | None:
        """The caller, checked against SCOPE_FOR; None with auth off or for open RPCs."""
        if not self.enabled:
            return None
        need = SCOPE_FOR.get(method)
        if need == OPEN:
            return None
        principal = await self.authenticate(metadata)
        if need is None:
            raise PermissionDeniedError(f"{method} has no scope in the server's table; refused",
                                        reason="SCOPE_REQUIRED", scope="unknown")
        if principal.scope not in ALLOWED[need]:
            wanted = needed_text(need)
            log.warning("refused %s to key %r (scope %s): needs %s", method, principal.name, principal.scope, wanted)
            raise PermissionDeniedError(
                f"{method.rsplit('/', 1)[-1]} needs an API key with scope {wanted} "
                f"(key {principal.name!r} has scope {principal.scope})",
                reason="SCOPE_REQUIRED", scope=wanted,
            )
        return principal

    # -- long-lived streams --

    def open_stream(self, principal: Principal) -> KeyStreams:
        entry = self._streams.get(principal.key_id)
        if entry is None:
            entry = self._streams[principal.key_id] = KeyStreams()
        limit = self.settings.max_lease_streams_per_key
        if entry.count >= limit:
            raise ResourceExhaustedError(
                f"API key {principal.name!r} has {entry.count} lease streams open, the server's limit "
                f"(FLOWDECK_MAX_LEASE_STREAMS_PER_KEY={limit})",
                reason="TOO_MANY_LEASE_STREAMS", limit=str(limit), setting="FLOWDECK_MAX_LEASE_STREAMS_PER_KEY",
            )
        entry.count += 1
        if entry.watcher is None:
            entry.watcher = asyncio.ensure_future(self._watch(principal, entry))
        return entry

    def close_stream(self, principal: Principal, entry: KeyStreams) -> None:
        entry.count -= 1
        if entry.count <= 0 and self._streams.get(principal.key_id) is entry:
            del self._streams[principal.key_id]
            if entry.watcher is not None:
                entry.watcher.cancel()

    async def _watch(self, principal: Principal, entry: KeyStreams) -> None:
        """Re-check a key with open streams now and then: revoked by another
        replica or straight in the database, its streams end too."""
        interval = max(0.05, float(self.settings.auth_recheck_seconds))
        while not entry.revoked:
            await asyncio.sleep(interval)
            try:
                still = await self.db.run_read(lambda s: api_keys.lookup(s, principal.key_id))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a database hiccup keeps the stream; try again
                log.warning("could not re-check API key %r: %s", principal.name, type(e).__name__)
                continue
            if still is None or still.revoked:
                entry.revoke()

    def revoked(self, key_id: str) -> None:
        """A key was revoked on this server: end its streams now."""
        self._verified.pop(key_id, None)
        entry = self._streams.get(key_id)
        if entry is not None:
            entry.revoke()
