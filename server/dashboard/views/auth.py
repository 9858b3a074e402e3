"""Log in with an API key (kept server-side), log out."""
from __future__ import annotations

import grpc
from starlette.requests import Request
from starlette.responses import RedirectResponse

from flowdeck.server.dashboard import sessions as sess
from flowdeck.server.dashboard.api import ApiError
from flowdeck.server.dashboard.security import checked_form, cookie_header, session_of
from flowdeck.server.dashboard.views.common import dash, page


def _next(value) -> str:
    """Only a path on this dashboard (never //host or a scheme)."""
    value = value if isinstance(value, str) else ""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


async def login_form(request: Request):
    if not dash(request).auth:
        return RedirectResponse("/", status_code=303)
    return page(request, "login.html", "", next=_next(request.query_params.get("next")), error="")


async def login(request: Request):
    d = dash(request)
    form = await checked_form(request)
    if not d.auth:
        return RedirectResponse("/", status_code=303)
    key = str(form.get("api_key", "")).strip()
    target = _next(form.get("next"))
    try:
        if not key:
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, "enter an API key")
        scope = await sess.scope_of(d.api, key)
    except ApiError as e:
        if e.code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
            raise
        return page(request, "login.html", "", status_code=401, next=target,
                    error=f"The server refused this key: {e.message}")
    # A new session id at login: an id handed out before it is worth nothing after.
    d.sessions.drop(session_of(request).id)
    new = d.sessions.new(key=key, scope=scope)
    response = RedirectResponse(target, status_code=303)
    response.headers.append("set-cookie", cookie_header(new.id, d.secure))
    return response


async def logout(request: Request):
    d = dash(request)
    await checked_form(request)
    d.sessions.drop(session_of(request).id)
    response = RedirectResponse("/login" if d.auth else "/", status_code=303)
    response.headers.append("set-cookie", cookie_header("", d.secure, expire=True))
    return response
