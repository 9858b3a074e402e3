"""Assemble and run the gRPC server (grpc.aio)."""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import disable_created_metrics

from flowdeck.core import logs
from flowdeck.server import loops, metrics
from flowdeck.server.api.agent_servicer import AgentServicer
from flowdeck.server.api.api_key_servicer import ApiKeyServicer
from flowdeck.server.api.auth import AuthInterceptor
from flowdeck.server import start_errors
from flowdeck.server.api.tls import server_credentials
from flowdeck.server.api.base import AppContext
from flowdeck.server.api.deployment_servicer import DeploymentServicer
from flowdeck.server.api.flow_run_servicer import FlowRunServicer
from flowdeck.server.api.flow_servicer import FlowServicer
from flowdeck.server.api.flow_data_servicer import FlowDataServicer
from flowdeck.server.api.storage_servicer import StorageServicer
from flowdeck.server.api.interceptors import ErrorInterceptor
from flowdeck.server.api.log_servicer import LogServicer
from flowdeck.server.api.metrics_http import metrics_app
from flowdeck.server.api.observe import MetricsInterceptor, tracing_interceptors
from flowdeck.server.api.schedule_servicer import ScheduleServicer
from flowdeck.server.api.work_queue_servicer import WorkQueueServicer
from flowdeck.server.db import Database
from flowdeck.server.events import Events
from flowdeck.server.settings import Settings
from flowdeck.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    agent_service_pb2,
    agent_service_pb2_grpc,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    flow_data_service_pb2,
    flow_data_service_pb2_grpc,
    flow_run_service_pb2,
    flow_run_service_pb2_grpc,
    flow_service_pb2,
    flow_service_pb2_grpc,
    log_service_pb2,
    log_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    storage_service_pb2,
    storage_service_pb2_grpc,
    work_queue_service_pb2,
    work_queue_service_pb2_grpc,
)

log = logging.getLogger("flowdeck.server")

# (pb2 module, grpc module, service name, servicer class)
SERVICES = [
    (flow_service_pb2, flow_service_pb2_grpc, "FlowService", FlowServicer),
    (deployment_service_pb2, deployment_service_pb2_grpc, "DeploymentService", DeploymentServicer),
    (flow_run_service_pb2, flow_run_service_pb2_grpc, "FlowRunService", FlowRunServicer),
    (log_service_pb2, log_service_pb2_grpc, "LogService", LogServicer),
    (schedule_service_pb2, schedule_service_pb2_grpc, "ScheduleService", ScheduleServicer),
    (work_queue_service_pb2, work_queue_service_pb2_grpc, "WorkQueueService", WorkQueueServicer),
    (agent_service_pb2, agent_service_pb2_grpc, "AgentService", AgentServicer),
    (flow_data_service_pb2, flow_data_service_pb2_grpc, "FlowDataService", FlowDataServicer),
    (storage_service_pb2, storage_service_pb2_grpc, "StorageService", StorageServicer),
    (api_key_service_pb2, api_key_service_pb2_grpc, "ApiKeyService", ApiKeyServicer),
]
MAX_MESSAGE = 64 * 1024 * 1024


class FlowdeckServer:
    """A running server: `await start()`, then `port`, then `await stop()`."""

    def __init__(self, settings: Settings | None = None, *, background: bool = True, local_address: str = ""):
        self.settings = settings or Settings.from_env()
        self.background = background
        # A private listener beside the public port (the dashboard's way in).
        self.local_address = local_address
        self.port = 0
        self.db: Database | None = None
        self.grpc: grpc.aio.Server | None = None
        self.tasks: list[asyncio.Task] = []
        self.app: AppContext | None = None
        self.started_at = 0.0

    async def start(self) -> int:
        t0 = time.monotonic()
        s = self.settings
        # TLS files are read first: a bad one fails the start before anything opens.
        creds = server_credentials(s)
        self.db = Database(s.resolved_database_url(), threads=s.db_threads)
        try:
            # A database that cannot be used fails the start before the port opens.
            await self.db.run(self.db.probe)
            await self._serve(creds)
        except BaseException:
            await self._abandon()
            raise
        self.started_at = time.monotonic() - t0
        log.info("flowdeck server SERVING on %s:%d (%s) in %.2fs", s.host, self.port,
                 "sqlite" if self.db.is_sqlite else "postgres", self.started_at)
        return self.port

    async def _serve(self, creds) -> None:
        s = self.settings
        events = Events()
        events.loop = asyncio.get_running_loop()
        self.app = AppContext(db=self.db, settings=s, events=events)
        if s.metrics:
            metrics.watch_database(self.db)
        observed = [MetricsInterceptor()] if s.metrics else []
        self.grpc = grpc.aio.server(
            interceptors=[*observed, AuthInterceptor(self.app.security), *tracing_interceptors(), ErrorInterceptor()],
            options=[
                ("grpc.max_receive_message_length", s.max_request_bytes),
                # Find dead peers (agents gone without closing their streams).
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.keepalive_timeout_ms", 20_000),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ],
        )
        names = [reflection.SERVICE_NAME, health.SERVICE_NAME]
        for pb2, rpc, name, servicer_class in SERVICES:
            getattr(rpc, f"add_{name}Servicer_to_server")(servicer_class(self.app), self.grpc)
            names.append(pb2.DESCRIPTOR.services_by_name[name].full_name)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        reflection.enable_server_reflection(names, self.grpc)
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        try:
            if creds is None:
                self.port = self.grpc.add_insecure_port(f"{s.host}:{s.port}")
            else:
                self.port = self.grpc.add_secure_port(f"{s.host}:{s.port}", creds)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise start_errors.bind_error(s.host, s.port)
        if self.local_address:
            self.grpc.add_insecure_port(self.local_address)
        await self.grpc.start()
        # Migrations after binding: health answers NOT_SERVING until they are done.
        await self.db.run(self.db.migrate)
        if self.background:
            self.tasks.extend(loops.start_all(self.app))
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def _abandon(self) -> None:
        """Undo a start that failed part way, quietly."""
        if self.grpc is not None:
            await self.grpc.stop(None)
        self.db.close()

    async def stop(self, grace: float | None = None) -> None:
        # Python 3.11's asyncio.wait_for can lose a cancel when what it waits
        # for completes at the same moment (busy event subscriptions): ask again
        # until every loop is gone, so shutdown never hangs on one.
        pending = set(self.tasks)
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            for t in pending:
                t.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        if pending:
            log.warning("%d background tasks ignored cancellation", len(pending))
        for t in self.tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                log.debug("background task ended with %r", t.exception())
        if self.grpc is not None:
            await self.health.enter_graceful_shutdown()
            await self.grpc.stop(self.settings.shutdown_grace if grace is None else grace)
        if self.db is not None:
            # Called directly: at interpreter exit no new executor work is allowed.
            self.db.close()
        log.info("flowdeck server stopped")


# Libraries whose DEBUG lines carry a storage block's credentials (request
# headers, signing details) when the server writes into a bucket.
QUIET_LIBRARIES = ("boto3", "botocore", "s3transfer", "urllib3")


def configure_logging(level: str, fmt: str = "text") -> None:
    logs.configure(level, fmt)
    if level.upper() != "DEBUG":
        # Alembic announces every plugin and migration step at INFO.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def client_hint(settings: Settings, port: int) -> list[str]:
    """What `flowdeck server start` prints under its listening line: how to point a client at it."""
    lines = ["Point clients (the CLI, agents, get_client()) at it with:",
             f"    export FLOWDECK_API_URL={settings.host}:{port}"]
    if settings.tls_cert:
        lines.append("    export FLOWDECK_API_TLS_CA=<the PEM file of the CA that signed --tls-cert>")
    if settings.tls_client_ca:
        lines.append("    export FLOWDECK_API_TLS_CERT=<client certificate> FLOWDECK_API_TLS_KEY=<its key>")
    if settings.auth:
        lines.append("    export FLOWDECK_API_KEY=<a key from `flowdeck server create-admin-key NAME`>")
    return lines


def serve_forever(settings: Settings) -> None:
    """`flowdeck server start`: run until SIGTERM/SIGINT, then shut down gracefully;
    a second signal cuts the grace short."""

    # No `_created` series beside each counter and histogram (half the series,
    # and unused); a process-wide switch, so thrown here and not on import.
    disable_created_metrics()

    async def main():
        # Handlers first: a SIGTERM right after the "listening" line must shut
        # down gracefully, not kill the process.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        http = None
        server = None

        def on_signal():
            if not stop.is_set():
                log.info("shutting down: in-flight calls get up to %gs to finish (Ctrl-C again to force)",
                         settings.shutdown_grace)
                stop.set()
            elif server is not None and server.grpc is not None:
                log.warning("forcing shutdown: cancelling in-flight calls now")
                loop.create_task(server.grpc.stop(None))

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        if settings.ui or settings.metrics:
            from flowdeck.server.dashboard.serve import DashboardServer

            http = DashboardServer(settings)  # binds now: a busy port fails before the API starts
        server = FlowdeckServer(settings, local_address=http.api_address if http and settings.ui else "")
        await server.start()
        print(f"flowdeck server listening on {settings.host}:{server.port}", flush=True)
        if http:
            http.start(metrics=metrics_app(server.app.security, loop, public=settings.metrics_public)
                       if settings.metrics else None)
            if settings.ui:
                print(f"dashboard: {http.url}", flush=True)
            if settings.metrics:
                print(f"metrics: {http.url}metrics", flush=True)
        print("\n".join(client_hint(settings, server.port)), flush=True)
        await stop.wait()
        if http:
            await asyncio.to_thread(http.stop)
        await server.stop()

    asyncio.run(main())


class ThreadedServer:
    """A server on its own event loop in a daemon thread (the embedded default,
    and tests that need a server beside synchronous code)."""

    def __init__(self, settings: Settings, *, background: bool = True):
        self.settings = settings
        self.background = background
        self.loop = asyncio.new_event_loop()
        self.server: FlowdeckServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="flowdeck-server", daemon=True)

    def start(self) -> str:
        self._thread.start()
        self.server = FlowdeckServer(self.settings, background=self.background)
        fut = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop)
        port = fut.result(timeout=120)
        return f"{self.settings.host}:{port}"

    def stop(self, grace: float = 1.0) -> None:
        if self.server is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop)
        try:
            fut.result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.server = None
