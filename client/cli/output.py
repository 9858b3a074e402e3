"""Printing for the CLI: tables that fit the terminal for people, plain JSON for scripts.

Tables never wrap an id or a name (copy-paste must work): ids are cut to
their first 8 characters (whole with --wide or --json), key columns keep
their full width, and the descriptive columns shrink with an ellipsis or
are left out, the least important first, when the terminal is narrow.
Colour only on a terminal, and never with NO_COLOR set (rich checks both).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
from typing import Any, Iterable

SHORT_ID = 8
# A descriptive column narrower than this is left out rather than cut.
MIN_SHRUNK = 8
# Between two columns: padding, the (blank) rule, padding.
GAP = 3
WIDE = 10_000

STATE_STYLES = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "red", "RUNNING": "blue",
                "PENDING": "cyan", "CANCELLED": "magenta", "Late": "yellow", "Expired": "magenta"}
LEVEL_STYLES = {"DEBUG": "dim", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column. `kind`: "id" (cut to 8 characters unless wide), "key"
    (a name: always whole), "fixed" (whole or left out) or "text" (may shrink
    with an ellipsis, or be left out). Columns that are not kept go in the
    order of `drop` (lower first; None: never)."""

    header: str
    kind: str = "text"
    drop: int | None = None
    justify: str = "left"


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
    """A time with its zone, for sentences and `inspect`."""
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def stamp(value: dt.datetime | None) -> str:
    """A local time for a table cell."""
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def console(*, stderr: bool = False, width: int | None = None):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if width is None and not (stream.isatty() or os.environ.get("COLUMNS")):
        # Piped output has no terminal width: give tables room (COLUMNS still
        # wins) so rows stay one line each for grep and friends.
        width = 200
    # NO_COLOR: no colour, and (unlike rich's own reading of it) no bold either.
    colours = None if os.environ.get("NO_COLOR") else "auto"
    return Console(file=stream, soft_wrap=False, width=width, highlight=False, color_system=colours)


def state_text(state) -> Any:
    """A run's state, coloured: the type, and its name when that says more (`SCHEDULED (Late)`)."""
    from rich.text import Text

    label = state.type if state.name.upper() == state.type else f"{state.type} ({state.name})"
    return Text(label, style=STATE_STYLES.get(state.name, STATE_STYLES.get(state.type, "")))


def level_text(name: str) -> Any:
    from rich.text import Text

    return Text(f"{name:<8}", style=LEVEL_STYLES.get(name, ""))


def short_id(value: str, wide: bool) -> str:
    return value if wide else value[:SHORT_ID]


def table(title: str, columns: list[Column], rows: Iterable[Iterable[Any]], *, wide: bool = False,
          footer: str = "") -> None:
    """Print a table that fits the terminal (see the module docstring)."""
    from rich import box
    from rich.table import Table

    cells = [[_cell(v, col, wide) for v, col in zip(row, columns)] for row in rows]
    out = console(width=WIDE if wide else None)
    if not cells:
        out.print(f"No {title[:1].lower()}{title[1:]}." if title else "Nothing to show.")
        if footer:
            out.print(footer)
        return
    widths = [max([len(c.header)] + [c_.cell_len for c_ in (r[i] for r in cells)]) for i, c in enumerate(columns)]
    kept = list(range(len(columns))) if wide else _fit(columns, widths, out.width)
    budget = _shrunk(columns, widths, kept, out.width) if not wide else {}
    least = sum(budget.get(i, widths[i]) for i in kept) + GAP * (len(kept) - 1)
    if least > out.width:
        # Even the ids and names alone are wider than the terminal: let the
        # lines run long (the terminal folds them) rather than cut a name.
        out = console(width=least)
    t = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              header_style="bold", title_style="bold")
    for i in kept:
        col = columns[i]
        t.add_column(col.header, justify=col.justify, no_wrap=True,
                     overflow={"text": "ellipsis", "fixed": "crop"}.get(col.kind, "ignore"),
                     min_width=None if col.kind == "text" else widths[i], max_width=budget.get(i))
    for row in cells:
        t.add_row(*[row[i] for i in kept])
    out.print(t)
    if footer:
        out.print(footer)


def _cell(value: Any, col: Column, wide: bool):
    from rich.text import Text

    if isinstance(value, Text):
        return value
    text = "" if value is None else str(value)
    if col.kind == "id":
        text = short_id(text, wide)
    return Text(text)


def _fit(columns: list[Column], widths: list[int], room: int) -> list[int]:
    """The columns to show: drop the droppable ones, lowest `drop` first, until
    the whole columns and a minimum for each text column fit in `room`."""
    kept = list(range(len(columns)))

    def need(ix: list[int]) -> int:
        least = [min(widths[i], MIN_SHRUNK) if columns[i].kind == "text" else widths[i] for i in ix]
        return sum(least) + GAP * (len(ix) - 1)

    droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop is not None)
    for _, i in droppable:
        if need(kept) <= room:
            break
        kept.remove(i)
    return kept


def _shrunk(columns: list[Column], widths: list[int], kept: list[int], room: int) -> dict[int, int]:
    """Widths for the text columns so the row fits: each gets its share of what
    the other columns leave, and no more than it needs."""
    texts = [i for i in kept if columns[i].kind == "text"]
    left = room - sum(widths[i] for i in kept if columns[i].kind != "text") - GAP * (len(kept) - 1)
    out: dict[int, int] = {}
    for n, i in enumerate(sorted(texts, key=lambda i: widths[i])):
        share = max(MIN_SHRUNK, left // (len(texts) - n))
        out[i] = min(widths[i], share)
        left -= out[i]
    return out


def more_footer(shown: int, total: int | None, more: bool = False) -> str:
    """`showing 50 of 1,203; --limit N or --all` when rows were left out, else ""."""
    if total is not None and total > shown:
        return f"showing {shown:,} of {total:,}; --limit N or --all"
    if more:
        return f"showing the first {shown:,}; --limit N or --all"
    return ""


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


def listed(fetch, args) -> tuple[list, str]:
    """Call `fetch(limit=...)` for an `ls` and return (items, footer): one more
    than --limit is asked for, to know whether some were left out."""
    limit = limit_of(args)
    items = fetch(limit=None if limit is None else limit + 1)
    if limit is not None and len(items) > limit:
        return list(items[:limit]), more_footer(limit, None, more=True)
    return list(items), ""
