"""Settings from the environment: the helpers the server's and the agent's settings share."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from flowdeck.core.errors import InvalidArgumentError, show_value

M = TypeVar("M", bound=BaseModel)


def flowdeck_home() -> Path:
    return Path(os.environ.get("FLOWDECK_HOME") or Path.home() / ".flowdeck").expanduser()


def _from_env(model: type[BaseModel], prefix: str, fallbacks: dict[str, str]) -> dict[str, tuple[str, str]]:
    found = {}
    for name in model.model_fields:
        for var in (f"{prefix}{name.upper()}", fallbacks.get(name)):
            if var and os.environ.get(var):
                found[name] = (os.environ[var], var)
                break
    return found


def load_settings(model: type[M], prefix: str, overrides: dict, *, fallbacks: dict[str, str] | None = None) -> M:
    """`model` from PREFIX + NAME environment variables (or a `fallbacks`
    variable for a field), then `overrides` (the command line's flags; None
    means not given). A bad value is one InvalidArgumentError naming the
    setting and where it came from: `invalid port 'abc' from FLOWDECK_PORT: ...`."""
    found = _from_env(model, prefix, fallbacks or {})
    values = {name: value for name, (value, _var) in found.items()}
    sources = {name: var for name, (_value, var) in found.items()}
    for name, value in overrides.items():
        if value is not None:
            values[name], sources[name] = value, "--" + name.replace("_", "-")
    try:
        return model(**values)
    except ValidationError as e:
        raise setting_error(e, values, sources) from None


def setting_error(e: ValidationError, values: dict, sources: dict[str, str]) -> InvalidArgumentError:
    err = e.errors()[0]
    name = str(err["loc"][0]) if err.get("loc") else ""
    problem = err.get("msg", "invalid").removeprefix("Value error, ")
    problem = problem[:1].lower() + problem[1:]
    where = f" from {sources[name]}" if name in sources else ""
    value = f" {show_value(values[name])}" if name in values else ""
    return InvalidArgumentError(f"invalid {name}{value}{where}: {problem}", field=name)
