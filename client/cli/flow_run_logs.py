"""`flowdeck flow-run logs`: a run's log lines, the first or last N, from a
level up, and followed while the run goes on."""
from __future__ import annotations

import collections
import logging
import time

from flowdeck.cli import output
from flowdeck.cli.flow_run_cmd import find_run

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# How often --follow asks for new lines and the run's state.
POLL_SECONDS = 1.0


def level_number(text: str | None) -> int:
    from flowdeck.exceptions import InvalidArgumentError

    if text is None:
        return 0
    if text.strip().upper() in LEVELS:
        return logging.getLevelName(text.strip().upper())
    if text.strip().isdigit():
        return int(text)
    raise InvalidArgumentError(f"invalid --level {text!r}: must be one of {', '.join(LEVELS)} (or a number)",
                               field="level")


def _check(args) -> None:
    from flowdeck.exceptions import InvalidArgumentError

    for flag in ("head", "tail"):
        n = getattr(args, flag)
        if n is not None and n < 1:
            raise InvalidArgumentError(f"--{flag} must be at least 1, not {n}", field=flag)
    if args.follow and args.head is not None:
        raise InvalidArgumentError("--head and --follow do not go together (--tail N --follow does)")


def logs(args) -> int:
    from flowdeck.client import get_client
    from flowdeck.core.states import TERMINAL

    _check(args)
    client = get_client()
    run = find_run(client, args.run)
    min_level = level_number(args.level)
    records = client.list_logs(run.id, min_level=min_level, limit=args.head)
    seen = collections.Counter(_key(r) for r in records)
    if args.tail is not None:
        records = records[-args.tail:]
    if args.json and not args.follow:
        output.print_json(records)
        return 0
    show = LinePrinter(json_lines=args.json)
    for r in records:
        show(r)
    if not records and not args.json:
        _say_empty(run, following=args.follow)
    if not args.follow or run.state.type in TERMINAL:
        return 0
    run = follow(client, run, min_level, seen, show)
    output.console(stderr=True).print(f"Flow run {run.name!r} ended {output.state_text(run.state).markup}.")
    return 0


def follow(client, run, min_level: int, seen: collections.Counter, show) -> object:
    """Print each new line until the run is in a final state; return the run as it ended."""
    from flowdeck.core.states import TERMINAL

    while True:
        time.sleep(POLL_SECONDS)
        run = client.get_flow_run(run.id)
        # Lines shipped before the final state are stored by the time it is reported.
        for r in _fresh(client.list_logs(run.id, min_level=min_level, limit=None), seen):
            show(r)
        if run.state.type in TERMINAL:
            return run


def _key(record) -> tuple:
    return (record.timestamp, record.level, record.logger_name, record.message)


def _fresh(records, seen: collections.Counter):
    """The records not printed yet (a line may repeat: each copy counts)."""
    count: collections.Counter = collections.Counter()
    for r in records:
        k = _key(r)
        count[k] += 1
        if count[k] > seen[k]:
            seen[k] += 1
            yield r


class LinePrinter:
    """`2030-01-01 09:00:00.123 | INFO     | logger - message`, the level coloured
    on a terminal; or one JSON object per line."""

    def __init__(self, *, json_lines: bool = False):
        self.json_lines = json_lines
        self.console = output.console()

    def __call__(self, record) -> None:
        if self.json_lines:
            import json

            print(json.dumps(output.to_json(record)), flush=True)
            return
        from rich.text import Text

        stamp = record.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        name = logging.getLevelName(record.level)
        line = Text.assemble(f"{stamp} | ", output.level_text(str(name)), f" | {record.logger_name} - ",
                             record.message)
        self.console.print(line, soft_wrap=True)


def _say_empty(run, *, following: bool) -> None:
    from flowdeck.core.states import TERMINAL

    if run.state.type in TERMINAL:
        print(f"Flow run {run.name!r} has no logs (it ended {run.state.type}).")
    else:
        waiting = "; waiting for its first lines" if following else ""
        print(f"No logs yet: flow run {run.name!r} is {run.state.type}{waiting}.", flush=True)
