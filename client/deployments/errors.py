"""`SpecError` and how a spec is named in one."""
from __future__ import annotations

from flowdeck.exceptions import InvalidArgumentError


class SpecError(InvalidArgumentError):
    """A deployment spec, or a spec file, is invalid."""


def spec_label(name: str | None, source: str) -> str:
    """"deployment spec 'NAME' (SOURCE)", as far as they are known."""
    what = f"deployment spec {name!r}" if name else "deployment spec"
    return f"{what} ({source})" if source else what
