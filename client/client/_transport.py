"""The wire under the typed client: one channel, deadlines, retries, request ids
and paging. Nothing here knows a resource; `FlowdeckClient` says which RPC to
call with which message.

Retries: UNAVAILABLE and DEADLINE_EXCEEDED are retried, with backoff, for
idempotent calls only. Reads are idempotent; mutations are made so by a
request_id (AIP-155) set once and reused by every retry, so a retry never
applies twice; a Delete carries no request_id and is never retried.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterator

import grpc

from flowdeck import exceptions as exc
from flowdeck.channels import make_channel, normalize_address, tls_settings

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# The largest page the server hands out (pagination.MAX_PAGE_SIZE there).
MAX_PAGE_SIZE = 1000
FIRST_BACKOFF = 0.1
BACKOFF_FACTOR = 3

# rpc(request, timeout=...) -> response: a stub method, or a function around a stream.
Rpc = Callable[..., Any]


def translate(err: grpc.RpcError, call) -> exc.FlowdeckError:
    """The flowdeck exception for a failed call (the one place a status becomes
    one); `call` is a `_status.Call` or the address."""
    from flowdeck.client._status import error_from_rpc_error

    return error_from_rpc_error(err, call)


def check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise exc.InvalidArgumentError(f"invalid limit {limit!r}: must be at least 1, or None for all",
                                       field="limit")


def _lost_connection(err: grpc.RpcError) -> grpc.RpcError | None:
    from flowdeck.client._status import connection_failure_reason

    return err if connection_failure_reason(err.code(), err.details() or "") == "CONNECTION_LOST" else None


class Transport:
    """One channel to a server and the calling conventions above."""

    def __init__(self, address: str, *, timeout: float, retries: int, channel: grpc.Channel | None = None,
                 api_key: str | None = None):
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise exc.InvalidArgumentError(f"invalid retries {retries!r}: must be 0 or more", field="retries")
        self.address = normalize_address(address)
        self.timeout = timeout
        self.retries = retries
        # What error messages say to check; unknown for a channel the caller made.
        self.tls = tls_settings(self.address) if channel is None else None
        # TLS (FLOWDECK_API_TLS_*) and the API key (`api_key`, else FLOWDECK_API_KEY).
        self.channel = channel or make_channel(
            self.address, api_key=api_key,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.enable_retries", 0)],
        )
        self._stubs: dict[type, Any] = {}

    def close(self) -> None:
        self.channel.close()

    def stub(self, stub_class: type):
        """The generated stub of one service on this channel (made once)."""
        stub = self._stubs.get(stub_class)
        if stub is None:
            stub = self._stubs[stub_class] = stub_class(self.channel)
        return stub

    def call(self, rpc: Rpc, request, *, idempotent: bool = True, timeout: float | None = None):
        """Call, retrying UNAVAILABLE/DEADLINE_EXCEEDED up to `retries` times
        when the call is idempotent."""
        from flowdeck.client._status import Call

        attempts = 1 + (self.retries if idempotent else 0)
        delay = FIRST_BACKOFF
        lost = None
        for attempt in range(attempts):
            try:
                return rpc(request, timeout=timeout or self.timeout)
            except grpc.RpcError as err:
                if err.code() in RETRYABLE and attempt + 1 < attempts:
                    lost = lost or _lost_connection(err)
                    time.sleep(delay)
                    delay *= BACKOFF_FACTOR
                    continue
                error = translate(err, Call(self.address, self.tls, timeout or self.timeout, attempt + 1))
                if lost is not None and error.reason == "SERVER_UNREACHABLE":
                    # The retries found nothing listening: the first failure says what happened.
                    lost = translate(lost, Call(self.address, self.tls))
                    error = type(lost)(f"{lost.message}, and nothing answers there now: the server stopped",
                                       reason=lost.reason)
                raise error from None

    def mutate(self, rpc: Rpc, request):
        """A mutation: it gets a request_id once; retries reuse it, so it applies once."""
        if not request.request_id:
            request.request_id = str(uuid.uuid4())
        return self.call(rpc, request)

    def pages(self, rpc: Rpc, request, field: str, limit: int | None,
              on_first: Callable[[Any], None] | None = None) -> Iterator:
        """The items of a List, page after page, up to `limit` (None: all);
        `on_first` sees the first response."""
        check_limit(limit)
        got = 0
        while True:
            request.page_size = MAX_PAGE_SIZE if limit is None else min(MAX_PAGE_SIZE, limit - got)
            response = self.call(rpc, request)
            if on_first is not None:
                on_first(response)
                on_first = None
            for item in getattr(response, field):
                yield item
                got += 1
                if limit is not None and got >= limit:
                    return
            token = getattr(response, "next_page_token", "")
            if not token:
                return
            request.page_token = token

    def counted_pages(self, rpc: Rpc, request, field: str, limit: int | None, convert: Callable) -> "Page":
        """`pages`, converted, as a Page holding the server's total_size."""
        page = Page()

        def first(response) -> None:
            page.total_size = response.total_size

        page.extend(convert(m) for m in self.pages(rpc, request, field, limit, on_first=first))
        return page


class Page(list):
    """What a list_* method that counts returns: the items, and `total_size`,
    how many match in all pages (None when the server did not say)."""

    total_size: int | None = None
