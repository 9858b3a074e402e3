"""The web dashboard: deployments, runs, live logs and Quick Run in the browser.

A backend-for-frontend served by `flowdeck server start` (flowdeck.server.dashboard.serve):
server-rendered pages (Starlette, Jinja2, htmx with server-sent events) that read and
write only through the public flowdeck.v1 API (flowdeck.server.dashboard.api), so
auth, scopes, limits, validation and errors are the API's. No SQL here.
"""
