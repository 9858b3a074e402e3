"""Schedules and durations in words, for people."""
from __future__ import annotations

UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def _plural(n: float, unit: str) -> str:
    n = int(n) if float(n).is_integer() else round(n, 2)
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def every(secs: float) -> str:
    """90 -> 'every 90 seconds', 86400 -> 'every day', 7200 -> 'every 2 hours'."""
    for unit, size in UNITS:
        if secs >= size and secs % size == 0:
            n = secs // size
            return f"every {unit}" if n == 1 else f"every {_plural(n, unit)}"
    return f"every {_plural(secs, 'second')}"


def seconds(secs: float) -> str:
    """A duration: 0.4s, 12s, 3m 05s, 2h 10m, 3d 4h."""
    if secs < 10:
        return f"{secs:.1f}s"
    secs = int(secs)
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m {secs % 60:02d}s"
    if secs < 86400:
        return f"{secs // 3600}h {secs % 3600 // 60:02d}m"
    return f"{secs // 86400}d {secs % 86400 // 3600}h"


def cron(expression: str) -> str:
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    options.throw_exception_on_parse_error = True
    try:
        return get_description(expression, options)
    except Exception:  # noqa: BLE001 - the server accepted it (croniter): show it as it is
        return f"cron {expression}"


def schedule(sched) -> str:
    """A Schedule message in words, with its timezone: 'every day (UTC)'."""
    kind = sched.WhichOneof("kind") if sched is not None else None
    if kind is None:
        return "no schedule"
    body = getattr(sched, kind)
    if kind == "interval":
        text = every(body.interval.seconds + body.interval.nanos / 1e9)
    elif kind == "cron":
        text = cron(body.cron)
    else:
        text = f"rrule {body.rrule}"
    return f"{text} ({body.timezone or 'UTC'})"
