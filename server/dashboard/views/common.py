"""What every view uses: the caller, the template context, redirects."""
from __future__ import annotations

import datetime as dt
import uuid

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from flowdeck.server.dashboard import render
from flowdeck.server.dashboard.api import Caller
from flowdeck.server.dashboard.security import session_of
from flowdeck.server.dashboard.state import Dashboard

# What a write button needs, said on the disabled button.
NEEDS = {"write": "needs an API key with scope write", "admin": "needs an API key with scope admin"}


def dash(request: Request) -> Dashboard:
    return request.app.state.dashboard


def caller(request: Request) -> Caller:
    return Caller(dash(request).api, session_of(request).key)


def context(request: Request, nav: str, **values) -> dict:
    session = session_of(request)
    values.update(request=request, nav=nav, session=session, csrf=session.csrf, auth=dash(request).auth,
                  may=session.may, needs=NEEDS, now=dt.datetime.now(dt.timezone.utc))
    return values


def page(request: Request, name: str, nav: str, status_code: int = 200, **values) -> Response:
    return render.page(name, context(request, nav, **values), status_code=status_code)


def back(url: str) -> RedirectResponse:
    """After a write: see the result (303: the browser GETs it)."""
    return RedirectResponse(url, status_code=303)


def request_id() -> str:
    """Each write is sent once with its own id (the API replays a repeat)."""
    return str(uuid.uuid4())


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
