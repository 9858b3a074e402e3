"""flowdeck: deploy, schedule and run Python flows.

`from flowdeck import flow, get_run_logger, get_client` imports what they need
on first use, so `import flowdeck` stays light (no grpc, sqlalchemy or pydantic).
"""

_LAZY = {
    "flow": ("flowdeck.flows", "flow"),
    "Flow": ("flowdeck.flows", "Flow"),
    "get_run_logger": ("flowdeck.run_logging", "get_run_logger"),
    "get_client": ("flowdeck.client", "get_client"),
}
__all__ = list(_LAZY)


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'flowdeck' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
