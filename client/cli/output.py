"""Printing for the CLI: rich tables for people, plain JSON for scripts."""
from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, Iterable


def to_json(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_json(value), indent=2) + "\n")


def when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def console():
    from rich.console import Console

    # Piped or captured output has no terminal width; 80 columns would fold
    # ids and names mid-word, so tables get room to stay one line per row.
    width = None if sys.stdout.isatty() else 200
    return Console(soft_wrap=False, width=width)


def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[("" if v is None else str(v)) for v in row])
    console().print(t)


def pretty(value: Any) -> None:
    from rich.pretty import Pretty

    console().print(Pretty(to_json(value), expand_all=True))


def limit_of(args) -> int | None:
    if getattr(args, "all", False):
        return None
    if args.limit is not None and args.limit < 1:
        from flowdeck.exceptions import InvalidArgumentError

        raise InvalidArgumentError(f"--limit must be at least 1, not {args.limit}")
    return args.limit
