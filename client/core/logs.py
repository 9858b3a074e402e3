"""Log output of the server and the agent: text lines for people, or one JSON
object per line (`--log-format json`) for log shippers.

A JSON line holds time (UTC, ISO 8601), level, logger and message, the fields
bound to the current call or run (`bind`: request_id, flow_run_id, ...), the
trace and span ids when a span is current, and the traceback when there is one.
Only what the code logs goes out: secrets are never logged in the first place.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Fields for every line logged in this context (an RPC's task, a run's thread).
_fields: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("flowdeck_log_fields", default={})


def bind(**fields: str) -> contextvars.Token:
    """Add `fields` to the lines logged from here on in this context (task or thread)."""
    return _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v}})


def _trace_ids() -> dict[str, str]:
    # Imported by whoever turned tracing on; never imported here just to look.
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields.get())
        line.update(_trace_ids())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def check_format(fmt: str) -> str:
    """`fmt` lower-cased, or ValueError naming the choices."""
    value = (fmt or "text").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"invalid log format {fmt!r}: must be one of {', '.join(FORMATS)}")
    return value


def configure(level: str, fmt: str = "text") -> None:
    """The process's root logging: `level` and the line format ("text" or "json") on stderr."""
    handler = logging.StreamHandler()
    if check_format(fmt) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
