"""Serve the dashboard (and /metrics) from `flowdeck server start`: uvicorn on its own port,
in its own thread and event loop, so rendering pages never runs on the gRPC
server's loop. The dashboard reaches the API through a private Unix socket the
gRPC server also listens on (same interceptors: keys, scopes, limits), which
works whatever TLS the public port has."""
from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import ssl
import tempfile
import threading

from flowdeck.core.errors import FailedPreconditionError

METRICS_PATH = "/metrics"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say
    # so, and without it small responses wait ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise FailedPreconditionError(f"dashboard port {port} is already in use") from None
        raise FailedPreconditionError(f"cannot serve the dashboard on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def with_metrics(app, metrics):
    """`app` with /metrics answered by `metrics` (everything else, lifespan included, goes to `app`)."""

    async def routed(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == METRICS_PATH:
            return await metrics(scope, receive, send)
        return await app(scope, receive, send)

    return routed


class DashboardServer:
    """Bound at construction (a busy port fails before anything starts);
    serving after start()."""

    def __init__(self, settings):
        self.settings = settings
        self._dir = tempfile.mkdtemp(prefix="flowdeck-dashboard-")
        os.chmod(self._dir, 0o700)
        self.api_address = f"unix:{os.path.join(self._dir, 'api.sock')}"
        self.sock = bind(settings.host, settings.ui_port)
        self.port = self.sock.getsockname()[1]
        self._server = None
        self._app = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}/"

    def start(self, metrics=None) -> None:
        """Serve the dashboard (unless settings.ui is off) and, given `metrics`
        (an ASGI app), /metrics beside it."""
        import uvicorn
        from starlette.applications import Starlette

        from flowdeck.server.dashboard.app import create_app

        s = self.settings
        tls = {}
        if s.tls_cert:
            tls = dict(ssl_certfile=s.tls_cert, ssl_keyfile=s.tls_key)
            if s.tls_client_ca:
                tls.update(ssl_ca_certs=s.tls_client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
        self._app = create_app(self.api_address, auth=s.auth, secure=bool(s.tls_cert)) if s.ui else Starlette()
        app = self._app if metrics is None else with_metrics(self._app, metrics)
        # log_config=None: uvicorn's loggers go to the process's handler (text or JSON lines).
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, loop="asyncio",
                                log_config=None, http="h11", timeout_graceful_shutdown=3, **tls)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="flowdeck-dashboard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self.sock])

    def stop(self) -> None:
        """End the live streams (else shutdown would wait for them), then the server."""
        if self._loop is not None and not self._loop.is_closed() and self.settings.ui:
            self._loop.call_soon_threadsafe(self._app.state.dashboard.hub.close)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
