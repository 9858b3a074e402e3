"""What every response and every write goes through.

`Guard` (ASGI middleware) attaches the browser's server-side session (making
one, for its CSRF token, when there is none), sends the login page to anyone
without an API key when auth is on, and sets the security headers. `checked_form`
is the CSRF gate every POST handler reads its form through.
"""
from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from flowdeck.server.dashboard.sessions import Session, Sessions

# No inline code: scripts, styles and connections from this origin only.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
STATIC_PREFIX = "/static/"
OPEN_PATHS = {"/login"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Refused(Exception):
    """A request the dashboard itself turns down (before any API call)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def cookie_name(secure: bool) -> str:
    # __Host-: the browser keeps it only when Secure, Path=/ and no Domain.
    return "__Host-flowdeck_session" if secure else "flowdeck_session"


def cookie_header(value: str, secure: bool, *, expire: bool = False) -> str:
    parts = [f"{cookie_name(secure)}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    if expire:
        parts.append("Max-Age=0")
    return "; ".join(parts)


def session_of(request: Request) -> Session:
    return request.scope["flowdeck.session"]


def to_login(request: Request) -> Response:
    """Where a request without a valid key goes: the login page (HX-Redirect for htmx)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/login" if target == "/" else f"/login?next={quote(target, safe='')}"
    if request.url.path.startswith("/live/"):
        return PlainTextResponse("log in again", status_code=401)
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


class Guard:
    def __init__(self, app, *, sessions: Sessions, auth: bool, secure: bool):
        self.app = app
        self.sessions = sessions
        self.auth = auth
        self.secure = secure

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        static = path.startswith(STATIC_PREFIX)
        new_cookie = None
        target = self.app
        if not static:
            request = Request(scope)
            session = self.sessions.get(request.cookies.get(cookie_name(self.secure)))
            if session is None:
                session = self.sessions.new(scope="" if self.auth else "admin")
                new_cookie = cookie_header(session.id, self.secure)
            scope["flowdeck.session"] = session
            if self.auth and session.key is None and path not in OPEN_PATHS:
                target = to_login(request)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in HEADERS.items():
                    headers.setdefault(k, v)
                # Pages are per user and live: never cached. Static files carry
                # a content hash in their URL, so they may be kept.
                headers.setdefault("cache-control", "public, max-age=31536000, immutable" if static else "no-store")
                if new_cookie:
                    headers.append("set-cookie", new_cookie)
            await send(message)

        await target(scope, receive, send_with_headers)


async def checked_form(request: Request):
    """The form of a POST, once it has shown it comes from this dashboard's own
    pages: same-origin per Sec-Fetch-Site (when the browser sends it) and the
    session's CSRF token (form field `csrf` or header X-CSRF-Token)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        raise Refused(403, f"refused a {site} request: writes come from the dashboard's own pages only")
    form = await request.form()
    token = request.headers.get("x-csrf-token") or form.get("csrf")
    if not session_of(request).csrf_ok(token if isinstance(token, str) else None):
        raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and try again")
    return form
