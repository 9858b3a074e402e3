"""Which work queues a run matches: the rule in Python (the server's SQL,
`flowdeck.server.work_queues.matches`, says the same).

A run matches a queue when it belongs to a deployment, carries every one of
the queue's tags, its deployment is among the queue's deployment_ids (when
any are set) and its runner type among the queue's flow_runner_types (when
any are set; a run without one runs on "universal").
"""
from __future__ import annotations

from typing import Iterable

DEFAULT_RUNNER = "universal"


def run_matches(*, filter_tags: Iterable[str], filter_deployment_ids: Iterable[str],
                filter_runner_types: Iterable[str], deployment_id: str | None, tags: Iterable[str],
                runner_type: str) -> bool:
    if not deployment_id:
        return False
    if not set(filter_tags) <= set(tags):
        return False
    deployment_ids = list(filter_deployment_ids)
    if deployment_ids and deployment_id not in deployment_ids:
        return False
    runner_types = list(filter_runner_types)
    return not runner_types or (runner_type or DEFAULT_RUNNER) in runner_types
