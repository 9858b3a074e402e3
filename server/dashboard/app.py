"""The dashboard's ASGI app: the route table, the middleware, error pages."""
from __future__ import annotations

import contextlib

import grpc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from flowdeck.server.dashboard import render
from flowdeck.server.dashboard.api import ApiError
from flowdeck.server.dashboard.security import Guard, Refused, cookie_header, session_of, to_login
from flowdeck.server.dashboard.state import Dashboard
from flowdeck.server.dashboard.views import auth, blocks, deployments, overview, runs, streams, work_queues
from flowdeck.server.dashboard.views.common import context

POST = ["POST"]
ROUTES = [
    Route("/", overview.overview, name="overview"),
    Route("/overview/counts", overview.overview_counts),
    Route("/deployments", deployments.deployments_list),
    Route("/deployments/{dep_id}", deployments.deployment_detail),
    Route("/deployments/{dep_id}/schedule", deployments.set_schedule_active, methods=POST),
    Route("/deployments/{dep_id}/run", deployments.quick_run_form),
    Route("/deployments/{dep_id}/run", deployments.quick_run, methods=POST),
    Route("/runs", runs.runs_list),
    Route("/runs/{run_id}", runs.run_detail),
    Route("/runs/{run_id}/logs", runs.run_logs),
    Route("/runs/{run_id}/cancel", runs.cancel_run, methods=POST),
    Route("/work-queues", work_queues.work_queues),
    Route("/work-queues/{queue_id}/pause", work_queues.set_paused, methods=POST),
    Route("/storage", blocks.storage_blocks),
    Route("/api-keys", blocks.api_keys),
    Route("/api-keys", blocks.create_api_key, methods=POST),
    Route("/api-keys/{name}/revoke", blocks.revoke_api_key, methods=POST),
    Route("/login", auth.login_form),
    Route("/login", auth.login, methods=POST),
    Route("/logout", auth.logout, methods=POST),
    Route("/live/runs", streams.live_runs),
    Route("/live/deployments", streams.live_deployments),
    Route("/live/run/{run_id}", streams.live_run),
    # follow_symlink: an editable install links the files (paths are still kept inside static/).
    Mount("/static", StaticFiles(packages=[("flowdeck.server.dashboard", "static")], follow_symlink=True),
          name="static"),
]


def _error_page(request: Request, status: int, message: str):
    if "flowdeck.session" not in request.scope:  # static files have no session
        return PlainTextResponse(message, status_code=status)
    ctx = context(request, "", status=status, message=message)
    return render.page("error.html", ctx, status_code=status)


async def api_error(request: Request, exc: ApiError):
    if exc.code == grpc.StatusCode.UNAUTHENTICATED and request.app.state.dashboard.auth:
        # The key was revoked (or the server forgot it): this session is over.
        d = request.app.state.dashboard
        d.sessions.drop(session_of(request).id)
        response = to_login(request)
        response.headers.append("set-cookie", cookie_header("", d.secure, expire=True))
        return response
    return _error_page(request, exc.http_status, f"The API refused: {exc.message}")


async def refused(request: Request, exc: Refused):
    return _error_page(request, exc.status, exc.message)


async def not_found(request: Request, exc):
    return _error_page(request, getattr(exc, "status_code", 404), getattr(exc, "detail", "") or "not found")


def create_app(api_target: str, *, auth: bool = False, secure: bool = False, poll_seconds: float = 0.5) -> Starlette:
    """The dashboard for the flowdeck API at `api_target` (host:port or unix:PATH)."""
    dashboard = Dashboard(api_target, auth=auth, secure=secure, poll_seconds=poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await dashboard.close()

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(Guard, sessions=dashboard.sessions, auth=auth, secure=secure)],
        exception_handlers={ApiError: api_error, Refused: refused, 404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    return app
