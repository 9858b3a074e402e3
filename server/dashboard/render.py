"""Templates: one autoescaping Jinja environment and the filters pages share.
A page includes its live parts from `_partial.html` templates, which htmx
requests and server-sent events render alone."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import lru_cache
from importlib import resources

import jinja2
from starlette.responses import HTMLResponse

from flowdeck.core.structs import struct_dict
from flowdeck.server.dashboard import words

PACKAGE = "flowdeck.server.dashboard"
STATIC = resources.files(PACKAGE) / "static"

# StateType enum number -> its name; the badge says the state's own name ("Late").
STATE_TYPES = {0: "UNSPECIFIED", 1: "SCHEDULED", 2: "PENDING", 3: "RUNNING", 4: "COMPLETED",
               5: "FAILED", 6: "CANCELLED", 7: "CRASHED"}
TERMINAL = {4, 5, 6, 7}
LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def when(value) -> dt.datetime | None:
    """A Timestamp (or datetime) as an aware datetime; None when unset."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if not (value.seconds or value.nanos):
        return None
    return value.ToDatetime(tzinfo=dt.timezone.utc)


def ts(value) -> str:
    """Every time shown with its UTC offset: 2026-11-30 09:05:00 +00:00."""
    d = when(value)
    if d is None:
        return "—"
    offset = d.strftime("%z")
    return f"{d:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def local_ts(text: str) -> str:
    """An ISO time in its own zone (as PreviewSchedule's local_times are), shown like ts()."""
    try:
        return ts(dt.datetime.fromisoformat(text))
    except ValueError:
        return text


def iso(value) -> str:
    d = when(value)
    return d.isoformat() if d else ""


def duration(run) -> str:
    """Run time: measured when it ended, so far while it runs."""
    if run.state.type in TERMINAL:
        secs = run.total_run_time.seconds + run.total_run_time.nanos / 1e9
        if not secs and not when(run.start_time):
            return "—"
    else:
        start = when(run.start_time)
        if start is None:
            return "—"
        secs = (dt.datetime.now(dt.timezone.utc) - start).total_seconds()
    return words.seconds(secs)


def state_key(state) -> str:
    """The badge's CSS class: the type, or `late` for a Late scheduled run."""
    if state.type == 1 and state.name.lower() == "late":
        return "late"
    return STATE_TYPES.get(state.type, "UNSPECIFIED").lower()


def state_label(state) -> str:
    return state.name or STATE_TYPES.get(state.type, "UNSPECIFIED").title()


def pretty(msg_or_value) -> str:
    """A Struct (or plain value) as indented JSON text, integral numbers as ints."""
    if hasattr(msg_or_value, "DESCRIPTOR"):
        msg_or_value = struct_dict(msg_or_value)
    return json.dumps(msg_or_value, indent=2, sort_keys=True, ensure_ascii=False)


@lru_cache(maxsize=None)
def static_url(path: str) -> str:
    """/static/PATH?v=HASH: files change only with a new release, so browsers may keep them."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]
    return f"/static/{path}?v={digest}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ts=ts, local_ts=local_ts, iso=iso, duration=duration, state_key=state_key, state_label=state_label,
                       pretty=pretty, schedule_words=words.schedule, level_name=lambda n: LEVELS.get(n, str(n)))
    env.globals.update(static=static_url, TERMINAL=TERMINAL, LEVELS=LEVELS)
    return env


ENV = _environment()


def page(name: str, context: dict, status_code: int = 200, headers: dict | None = None) -> HTMLResponse:
    return HTMLResponse(ENV.get_template(name).render(context), status_code=status_code, headers=headers)


def fragment(name: str, context: dict) -> str:
    """A partial template alone (for htmx swaps and server-sent events)."""
    return ENV.get_template(name).render(context)
