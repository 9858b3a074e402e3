"""Settings from the environment: the helpers the server's and the agent's settings share."""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel


def flowdeck_home() -> Path:
    return Path(os.environ.get("FLOWDECK_HOME") or Path.home() / ".flowdeck").expanduser()


def env_values(model: type[BaseModel], prefix: str) -> dict[str, str]:
    """The fields of `model` set (non-empty) in the environment as PREFIX + NAME."""
    values = {}
    for name in model.model_fields:
        env = os.environ.get(f"{prefix}{name.upper()}")
        if env:
            values[name] = env
    return values
