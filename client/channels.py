"""Channels to a flowdeck server: TLS and the API key, from the environment.

    FLOWDECK_API_URL          host:port (https:// or grpcs:// asks for TLS)
    FLOWDECK_API_TLS_CA       PEM file of the CA that signed the server's certificate
    FLOWDECK_API_TLS_CERT     with FLOWDECK_API_TLS_KEY: the client certificate (mutual TLS)
    FLOWDECK_API_TLS_SERVER_NAME  the name to check the server's certificate against
                              (default: the host of the address)
    FLOWDECK_API_KEY          sent as "authorization: Bearer KEY" on every call
    OTEL_*                    tracing: a client span per call (flowdeck.core.telemetry)

Every part of flowdeck that talks to a server (client, CLI, agent, flow
processes) builds its channel here, so the same settings apply everywhere.
"""
from __future__ import annotations

import collections
import dataclasses
import os
from pathlib import Path

import grpc

from flowdeck import exceptions as exc

TLS_PREFIXES = ("https://", "grpcs://")


class _Details(collections.namedtuple(
        "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
        grpc.ClientCallDetails):
    pass


class ApiKeyInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                        grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer KEY` to every call, streams included."""

    def __init__(self, api_key: str):
        self._header = ("authorization", f"Bearer {api_key}")

    def __repr__(self) -> str:  # never show the key
        return "ApiKeyInterceptor(<key>)"

    def _details(self, d):
        metadata = [m for m in (d.metadata or ()) if m[0] != "authorization"]
        metadata.append(self._header)
        return _Details(d.method, d.timeout, metadata, d.credentials,
                        getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


def _read(path: str, env: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as e:
        raise exc.InvalidArgumentError(f"cannot read {env} file {path!r}: {e.strerror or e}") from None


def wants_tls(url: str) -> bool:
    return url.startswith(TLS_PREFIXES)


def normalize_address(url: str) -> str:
    """`host:port` from what a user may write (grpc://, http://, dns:///); a
    TLS scheme (https://, grpcs://) is kept: it asks `make_channel` for TLS."""
    for prefix in ("grpc://", "http://", "dns:///"):
        if url.startswith(prefix):
            return url[len(prefix):].rstrip("/")
    return url.rstrip("/")


def strip_scheme(url: str) -> str:
    for prefix in TLS_PREFIXES:
        if url.startswith(prefix):
            return url[len(prefix):].rstrip("/")
    return url


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    """How a channel speaks to its server; errors use it to say what to check."""

    enabled: bool = False
    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""


def tls_settings(address: str, *, tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None, server_name: str | None = None,
                 tls: bool | None = None) -> TlsSettings:
    """The arguments, or for those left None the FLOWDECK_API_TLS_* environment."""
    env = os.environ
    tls_ca = env.get("FLOWDECK_API_TLS_CA", "") if tls_ca is None else tls_ca
    tls_cert = env.get("FLOWDECK_API_TLS_CERT", "") if tls_cert is None else tls_cert
    tls_key = env.get("FLOWDECK_API_TLS_KEY", "") if tls_key is None else tls_key
    server_name = env.get("FLOWDECK_API_TLS_SERVER_NAME", "") if server_name is None else server_name
    if tls is None:
        tls = bool(tls_ca or tls_cert or wants_tls(address))
    return TlsSettings(tls, tls_ca, tls_cert, tls_key, server_name)


def make_channel(address: str, options: list | None = None, *, api_key: str | None = None,
                 tls_ca: str | None = None, tls_cert: str | None = None, tls_key: str | None = None,
                 server_name: str | None = None, tls: bool | None = None) -> grpc.Channel:
    """A channel to `address` with TLS and the API key from the arguments or,
    for those left None, from the FLOWDECK_API_* environment variables."""
    api_key = os.environ.get("FLOWDECK_API_KEY", "") if api_key is None else api_key
    t = tls_settings(address, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key, server_name=server_name, tls=tls)
    target = strip_scheme(address)
    options = list(options or [])
    if bool(t.cert) != bool(t.key):
        raise exc.InvalidArgumentError(
            "mutual TLS needs both FLOWDECK_API_TLS_CERT and FLOWDECK_API_TLS_KEY")
    if t.enabled:
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(t.ca, "FLOWDECK_API_TLS_CA") if t.ca else None,
            private_key=_read(t.key, "FLOWDECK_API_TLS_KEY") if t.key else None,
            certificate_chain=_read(t.cert, "FLOWDECK_API_TLS_CERT") if t.cert else None,
        )
        if t.server_name:
            options.append(("grpc.ssl_target_name_override", t.server_name))
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    api_key = (api_key or "").strip()
    if api_key:
        channel = grpc.intercept_channel(channel, ApiKeyInterceptor(api_key))
    return traced(channel)


def traced(channel: grpc.Channel) -> grpc.Channel:
    """`channel` with a client span per call when OTEL_* turns tracing on
    (flowdeck.core.telemetry); the same channel, untouched, when it is off."""
    from flowdeck.core import telemetry

    if not telemetry.ensure_tracing("flowdeck-client"):
        return channel
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    return intercept_channel(channel, client_interceptor())
