"""The flow runner types and the config keys each accepts: the server refuses a
deployment whose runner it does not know, or whose config has a key the runner
does not take, a wrong kind of value, or misses a required key.

The runner objects themselves (`flowdeck.flow_runners`) validate more closely
on the client and in the agent; tests/test_docker_runner.py checks this table
names exactly their fields.
"""
from __future__ import annotations

from typing import Any

from flowdeck.core.errors import invalid_field

# kind -> (JSON types a value may have, how the error names it); None is
# always allowed (the runner's default).
_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "a string"),
    "bool": ((bool,), "true or false"),
    "number": ((int, float), "a number"),
    "size": ((str, int, float), "a size such as 512m or a number of bytes"),
    "mapping": ((dict,), "a mapping"),
    "list": ((list,), "a list"),
}

_ENV = {"env": "mapping"}
RUNNER_CONFIG: dict[str, dict[str, str]] = {
    "universal": _ENV,
    "subprocess": {**_ENV, "stream_output": "bool", "python": "string", "virtualenv": "string",
                   "working_dir": "string"},
    "in-process": _ENV,
    "docker": {**_ENV, "image": "string", "volumes": "list", "network_mode": "string", "mem_limit": "size",
               "cpus": "number", "labels": "mapping", "auto_remove": "bool", "stream_output": "bool",
               "pull": "string"},
}
REQUIRED: dict[str, tuple[str, ...]] = {"docker": ("image",)}
# Keys whose value is one of a few words.
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {("docker", "pull"): ("never", "missing", "always")}
RUNNER_TYPES = tuple(RUNNER_CONFIG)


def check_runner(runner_type: str, config: dict[str, Any] | None, path: str = "deployment.flow_runner") -> None:
    """Raise InvalidArgumentError naming the first bad field of a runner's settings."""
    if runner_type not in RUNNER_CONFIG:
        raise invalid_field(f"{path}.type", runner_type, f"must be one of {', '.join(RUNNER_TYPES)}")
    known = RUNNER_CONFIG[runner_type]
    config = config or {}
    for key, value in config.items():
        field = f"{path}.config.{key}"
        if key == "type" and value == runner_type:
            continue  # some writers repeat the type inside the config
        if key not in known:
            raise invalid_field(field, value, f"the {runner_type} runner has no such setting; "
                                              f"it takes {', '.join(sorted(known))}")
        if value is None:
            continue
        types, what = _KINDS[known[key]]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise invalid_field(field, value, f"must be {what}")
        choices = CHOICES.get((runner_type, key))
        if choices and value not in choices:
            raise invalid_field(field, value, f"must be one of {', '.join(choices)}")
    for key in REQUIRED.get(runner_type, ()):
        if config.get(key) in (None, ""):
            raise invalid_field(f"{path}.config.{key}", config.get(key),
                                f"the {runner_type} runner needs it")
