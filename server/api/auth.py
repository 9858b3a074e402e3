"""Who may call what, and what a call may cost.

`AuthInterceptor` sits in front of the error interceptor. For every call it

* with auth on: finds the API key in `authorization: Bearer KEY`, checks it
  (UNAUTHENTICATED when missing, unknown, wrong or revoked) and checks the
  key's scope against SCOPE_FOR, the one table of every RPC's scope
  (PERMISSION_DENIED naming the scope needed);
* refuses requests over the configured limits (tags, parameters, flow data)
  before any handler runs, so nothing is stored;
* bounds the server-side work of a call (rpc_deadline_seconds) and the lease
  streams open per key; ends a key's lease streams with UNAUTHENTICATED when
  the key is revoked (at once on this server, within auth_recheck_seconds
  when revoked elsewhere);
* logs every mutating call with the key's name (never the key).
"""
from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import hmac
import logging
import secrets

import grpc
from grpc_health.v1 import health as _health
from grpc_reflection.v1alpha import reflection as _reflection

from flowdeck.server import api_keys
from flowdeck.server.api.interceptors import status_for
from flowdeck.core.errors import DeadlineExceededError, InvalidArgumentError, PermissionDeniedError, ResourceExhaustedError, UnauthenticatedError, invalid_field

log = logging.getLogger("flowdeck.server.auth")

# What an RPC needs. Every scope that may call it:
OPEN = "open"  # no key needed (health checking)
READ = "read"  # any valid key
WRITE = "write"
REPORT = "report"  # state and log reports: write, or an agent
LEASE = "lease"  # the agent lease stream
ADMIN = "admin"
ALLOWED = {
    OPEN: frozenset(api_keys.SCOPES),
    READ: frozenset(api_keys.SCOPES),
    WRITE: frozenset({"write", "admin"}),
    REPORT: frozenset({"write", "agent", "admin"}),
    LEASE: frozenset({"agent"}),
    ADMIN: frozenset({"admin"}),
}
_F = "/flowdeck.v1."

# THE table: every RPC the server serves and what it needs. A method missing
# here is refused when auth is on (and tests/test_auth.py fails).
SCOPE_FOR: dict[str, str] = {
    f"/{_health.SERVICE_NAME}/Check": OPEN,
    f"/{_health.SERVICE_NAME}/Watch": OPEN,
    f"/{_health.SERVICE_NAME}/List": OPEN,
    f"/{_reflection.SERVICE_NAME}/ServerReflectionInfo": READ,
    # FlowService
    _F + "FlowService/CreateFlow": WRITE,
    _F + "FlowService/GetFlow": READ,
    _F + "FlowService/GetFlowByName": READ,
    _F + "FlowService/ListFlows": READ,
    _F + "FlowService/DeleteFlow": WRITE,
    # DeploymentService
    _F + "DeploymentService/CreateDeployment": WRITE,
    _F + "DeploymentService/GetDeployment": READ,
    _F + "DeploymentService/GetDeploymentByName": READ,
    _F + "DeploymentService/ListDeployments": READ,
    _F + "DeploymentService/UpdateDeployment": WRITE,
    _F + "DeploymentService/DeleteDeployment": WRITE,
    # FlowRunService
    _F + "FlowRunService/CreateFlowRun": WRITE,
    _F + "FlowRunService/CreateFlowRunFromDeployment": WRITE,
    _F + "FlowRunService/GetFlowRun": READ,
    _F + "FlowRunService/ListFlowRuns": READ,
    _F + "FlowRunService/SetFlowRunState": REPORT,
    _F + "FlowRunService/CancelFlowRun": WRITE,
    _F + "FlowRunService/DeleteFlowRun": WRITE,
    # LogService
    _F + "LogService/CreateLogs": REPORT,
    _F + "LogService/ListLogs": READ,
    # ScheduleService
    _F + "ScheduleService/PreviewSchedule": READ,
    _F + "ScheduleService/ListUpcomingRuns": READ,
    # WorkQueueService
    _F + "WorkQueueService/CreateWorkQueue": WRITE,
    _F + "WorkQueueService/GetWorkQueue": READ,
    _F + "WorkQueueService/GetWorkQueueByName": READ,
    _F + "WorkQueueService/ListWorkQueues": READ,
    _F + "WorkQueueService/UpdateWorkQueue": WRITE,
    _F + "WorkQueueService/DeleteWorkQueue": WRITE,
    _F + "WorkQueueService/PreviewWorkQueue": READ,
    # AgentService
    _F + "AgentService/Lease": LEASE,
    # FlowDataService
    _F + "FlowDataService/UploadFlowData": WRITE,
    _F + "FlowDataService/DownloadFlowData": READ,
    # StorageService
    _F + "StorageService/CreateStorageBlock": WRITE,
    _F + "StorageService/GetStorageBlock": READ,
    _F + "StorageService/ListStorageBlocks": READ,
    _F + "StorageService/DeleteStorageBlock": WRITE,
    _F + "StorageService/SetDefaultStorageBlock": WRITE,
    _F + "StorageService/GetDefaultStorageBlock": READ,
    # ApiKeyService
    _F + "ApiKeyService/CreateApiKey": ADMIN,
    _F + "ApiKeyService/ListApiKeys": ADMIN,
    _F + "ApiKeyService/RevokeApiKey": ADMIN,
}
MUTATING = (WRITE, REPORT, LEASE, ADMIN)


def scopes_allowed(method: str) -> frozenset[str] | None:
    """The key scopes that may call `method`; None when the table does not know it."""
    need = SCOPE_FOR.get(method)
    return None if need is None else ALLOWED[need]


def needed_text(need: str) -> str:
    """The scope(s) to name in a PERMISSION_DENIED: the smallest that will do."""
    return {READ: "read", WRITE: "write", REPORT: "write or agent", LEASE: "agent", ADMIN: "admin"}.get(need, need)


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


# -- limits ----------------------------------------------------------------------

_PLANS: dict[str, list] = {}


def _plan(desc, stack: tuple = ()) -> list:
    """The fields of `desc` (and below) that a limit applies to."""
    cached = _PLANS.get(desc.full_name)
    if cached is not None:
        return cached
    plan = []
    for field in desc.fields:
        mt = field.message_type
        if field.name == "tags" and mt is None and field.is_repeated:
            plan.append(("tags", field, None))
        elif mt is None or mt.GetOptions().map_entry:
            continue
        elif mt.full_name == "google.protobuf.Struct" and field.name == "parameters":
            plan.append(("parameters", field, None))
        elif mt.full_name == "flowdeck.v1.FlowData":
            plan.append(("flow_data", field, None))
        elif not mt.full_name.startswith("google.protobuf.") and mt.full_name not in stack:
            sub = _plan(mt, stack + (desc.full_name,))
            if sub:
                plan.append(("nested", field, sub))
    if not stack:
        _PLANS[desc.full_name] = plan
    return plan


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def check_limits(request, settings) -> None:
    """Refuse a request over the configured limits (before anything is stored)."""
    plan = _plan(request.DESCRIPTOR)
    if plan:
        _check(request, plan, "", settings)


def _check(msg, plan, path: str, settings) -> None:
    for kind, field, sub in plan:
        p = f"{path}.{field.name}" if path else field.name
        if kind == "tags":
            n = len(getattr(msg, field.name))
            if n > settings.max_tags:
                raise invalid_field(p, n, f"holds more than the server's limit of {settings.max_tags} tags "
                                            "(FLOWDECK_MAX_TAGS)")
        elif field.is_repeated:
            for i, item in enumerate(getattr(msg, field.name)):
                _check_one(kind, item, sub, f"{p}[{i}]", settings)
        elif msg.HasField(field.name):
            _check_one(kind, getattr(msg, field.name), sub, p, settings)


def _check_one(kind: str, value, sub, path: str, settings) -> None:
    if kind == "parameters":
        size, limit, env = value.ByteSize(), settings.max_parameters_bytes, "FLOWDECK_MAX_PARAMETERS_BYTES"
    elif kind == "flow_data":
        limit, env = settings.max_flow_data_bytes, "FLOWDECK_MAX_FLOW_DATA_BYTES"
        # Characters are at least one byte: encode only when it could matter.
        size = len(value.blob) if len(value.blob) * 4 <= limit else len(value.blob.encode("utf-8"))
        path = f"{path}.blob"
    else:
        _check(value, sub, path, settings)
        return
    if size > limit:
        raise ResourceExhaustedError(
            f"{path} is {_size(size)}, over the server's limit of {_size(limit)} ({env})",
            reason="REQUEST_LIMIT_EXCEEDED", field=path, limit=str(limit), setting=env,
        )


# -- agent keys: reports only for runs the agent holds -------------------------------

def _agent_set_state(request) -> None:
    if request.fencing_token <= 0 or request.force:
        raise PermissionDeniedError(
            "an API key with scope 'agent' reports states only for runs it holds: "
            "SetFlowRunState needs the lease's fencing_token and no force (or a key with scope 'write')",
            reason="SCOPE_REQUIRED", scope="write",
        )


AGENT_CHECKS = {_F + "FlowRunService/SetFlowRunState": _agent_set_state}


# -- keys, verification and lease streams -------------------------------------------------

class _KeyStreams:
    def __init__(self):
        self.count = 0
        self.revoked = asyncio.Event()
        self.watcher: asyncio.Task | None = None


class Security:
    """The per-server state behind the interceptor: verified keys and open lease streams."""

    def __init__(self, app):
        self.app = app
        self.settings = app.settings
        self.db = app.db
        # key id -> (stored hash, HMAC of the key under a per-process secret):
        # a key verified once skips scrypt while its row is unchanged.
        self._mac_secret = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._streams: dict[str, _KeyStreams] = {}

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

    # -- lease streams --

    def open_stream(self, principal: Principal) -> _KeyStreams:
        entry = self._streams.get(principal.key_id)
        if entry is None:
            entry = self._streams[principal.key_id] = _KeyStreams()
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

    def close_stream(self, principal: Principal, entry: _KeyStreams) -> None:
        entry.count -= 1
        if entry.count <= 0 and self._streams.get(principal.key_id) is entry:
            del self._streams[principal.key_id]
            if entry.watcher is not None:
                entry.watcher.cancel()

    async def _watch(self, principal: Principal, entry: _KeyStreams) -> None:
        """Re-check a key with open streams now and then: revoked by another
        replica or straight in the database, its streams end too."""
        interval = max(0.05, float(self.settings.auth_recheck_seconds))
        while not entry.revoked.is_set():
            await asyncio.sleep(interval)
            try:
                still = await self.db.run_read(lambda s: api_keys.lookup(s, principal.key_id))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a database hiccup keeps the stream; try again
                log.warning("could not re-check API key %r: %s", principal.name, type(e).__name__)
                continue
            if still is None or still.revoked:
                entry.revoked.set()

    def revoked(self, key_id: str) -> None:
        """A key was revoked on this server: end its lease streams now."""
        self._verified.pop(key_id, None)
        entry = self._streams.get(key_id)
        if entry is not None:
            entry.revoked.set()


# -- the interceptor ------------------------------------------------------------------

async def _abort(context, exc: BaseException):
    code, message, trailing = status_for(exc)
    if trailing:
        context.set_trailing_metadata(trailing)
    await context.abort(code, message)


def _budget(settings) -> float | None:
    """Seconds of server-side work a call gets; 0 or less: no limit."""
    return settings.rpc_deadline_seconds if settings.rpc_deadline_seconds > 0 else None


def _deadline_error(settings) -> DeadlineExceededError:
    return DeadlineExceededError(
        f"the server stopped working on this call after {settings.rpc_deadline_seconds:g}s "
        "(FLOWDECK_RPC_DEADLINE_SECONDS)",
        reason="SERVER_TIME_LIMIT_REACHED", setting="FLOWDECK_RPC_DEADLINE_SECONDS")


def _audit(principal: Principal | None, method: str, need: str | None, outcome: str) -> None:
    if principal is not None and need in MUTATING:
        log.info("%s by API key %r (scope %s): %s", method.lstrip("/"), principal.name, principal.scope, outcome)


def _outcome(context) -> str:
    try:
        code = context.code()
    except Exception:  # noqa: BLE001
        code = None
    if code is None:
        return "OK"
    return getattr(code, "name", str(code))


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, security: Security):
        self.security = security
        self.settings = security.settings

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        need = SCOPE_FOR.get(method)
        security, settings = self.security, self.settings
        if need == OPEN:
            return handler

        async def within_budget(principal, context, call):
            """Await `call()` under the server-side deadline, auditing the outcome."""
            try:
                async with asyncio.timeout(_budget(settings)):
                    response = await call()
            except TimeoutError:
                _audit(principal, method, need, "DEADLINE_EXCEEDED")
                await _abort(context, _deadline_error(settings))
            except BaseException:
                _audit(principal, method, need, _outcome(context))
                raise
            _audit(principal, method, need, "OK")
            return response

        if handler.unary_unary or handler.unary_stream:
            is_stream = handler.unary_stream is not None
            inner = handler.unary_stream if is_stream else handler.unary_unary

            async def admit_unary(request, context):
                principal = await security.admit(method, metadata)
                check_limits(request, settings)
                if principal is not None and principal.scope == "agent" and method in AGENT_CHECKS:
                    AGENT_CHECKS[method](request)
                if principal is not None:
                    current_principal.set(principal)
                return principal

            if not is_stream:
                async def unary_unary(request, context):
                    try:
                        principal = await admit_unary(request, context)
                    except Exception as exc:  # noqa: BLE001 - a domain error from the checks
                        await _abort(context, exc)
                    return await within_budget(principal, context, lambda: inner(request, context))

                return grpc.unary_unary_rpc_method_handler(
                    unary_unary, handler.request_deserializer, handler.response_serializer)

            async def unary_stream(request, context):
                try:
                    principal = await admit_unary(request, context)
                except Exception as exc:  # noqa: BLE001
                    await _abort(context, exc)
                budget = _budget(settings)
                end = None if budget is None else asyncio.get_running_loop().time() + budget
                agen = inner(request, context).__aiter__()
                try:
                    while True:
                        try:
                            async with asyncio.timeout_at(end):
                                item = await agen.__anext__()
                        except StopAsyncIteration:
                            return
                        except TimeoutError:
                            await _abort(context, _deadline_error(settings))
                        yield item
                finally:
                    await agen.aclose()

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer)

        if handler.stream_unary:
            inner_su = handler.stream_unary

            async def stream_unary(request_iterator, context):
                try:
                    principal = await security.admit(method, metadata)
                except Exception as exc:  # noqa: BLE001
                    await _abort(context, exc)
                if principal is not None:
                    current_principal.set(principal)
                return await within_budget(principal, context, lambda: inner_su(request_iterator, context))

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, handler.request_deserializer, handler.response_serializer)

        inner_ss = handler.stream_stream

        async def stream_stream(request_iterator, context):
            # Long-lived by design (the lease stream): no deadline, but a cap per
            # key, and the key's revocation ends it.
            try:
                principal = await security.admit(method, metadata)
                entry = security.open_stream(principal) if principal is not None else None
            except Exception as exc:  # noqa: BLE001
                await _abort(context, exc)
            if principal is None:
                async for item in inner_ss(request_iterator, context):
                    yield item
                return
            current_principal.set(principal)
            _audit(principal, method, need, "stream opened")
            agen = inner_ss(request_iterator, context).__aiter__()
            step = waiter = None
            try:
                while True:
                    step = asyncio.ensure_future(agen.__anext__())
                    waiter = asyncio.ensure_future(entry.revoked.wait())
                    await asyncio.wait((step, waiter), return_when=asyncio.FIRST_COMPLETED)
                    if not step.done():
                        step.cancel()
                        await asyncio.wait((step,))
                        log.info("ending the lease stream of revoked API key %r", principal.name)
                        await _abort(context, UnauthenticatedError(
                            f"the API key {principal.name!r} was revoked", reason="API_KEY_REVOKED"))
                    waiter.cancel()
                    try:
                        item = step.result()
                    except StopAsyncIteration:
                        return
                    yield item
            finally:
                pending = [t for t in (step, waiter) if t is not None and not t.done()]
                for t in pending:
                    t.cancel()
                security.close_stream(principal, entry)
                _audit(principal, method, need, "stream closed")
                if pending:
                    # The generator must stop running (in its task) before it is closed.
                    await asyncio.wait(pending)
                await agen.aclose()

        return grpc.stream_stream_rpc_method_handler(
            stream_stream, handler.request_deserializer, handler.response_serializer)
