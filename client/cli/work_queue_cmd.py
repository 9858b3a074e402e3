"""`flowdeck work-queue ...` (only stdlib at import time)."""
from __future__ import annotations

import argparse


from flowdeck.cli.main import add_json_flag, add_list_flags, add_wide_flag

QUEUE_HELP = "the work queue's name or id"


def register(subparsers) -> None:
    wq = subparsers.add_parser("work-queue", help="create and manage the work queues agents lease from")
    sub = wq.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("create", help="create a work queue")
    p.add_argument("name", metavar="NAME", help="the queue's name (agents serve it by name)")
    p.add_argument("--tag", "-t", action="append", default=[], help="runs must carry this tag (repeatable)")
    p.add_argument("--deployment", "-d", action="append", default=[], metavar="FLOW/DEPLOYMENT",
                   help="only runs of this deployment (repeatable)")
    p.add_argument("--flow-runner-type", action="append", default=[], metavar="TYPE",
                   help="only runs with this flow runner type (repeatable)")
    p.add_argument("--limit", "-l", type=int, default=None, help="at most N runs PENDING or RUNNING at once")
    p.add_argument("--description", default="", help="what the queue is for")
    p.add_argument("--paused", action="store_true", help="create it paused")
    p.set_defaults(func="flowdeck.cli.work_queue_cmd:create")

    p = sub.add_parser("ls", help="list work queues")
    add_list_flags(p)
    p.set_defaults(func="flowdeck.cli.work_queue_cmd:ls")

    p = sub.add_parser("inspect", help="show a work queue")
    p.add_argument("queue", metavar="NAME_OR_ID", help=QUEUE_HELP)
    add_json_flag(p)
    p.set_defaults(func="flowdeck.cli.work_queue_cmd:inspect")

    for verb, text in (("pause", "stop leasing runs from a queue"), ("resume", "lease runs from a queue again"),
                       ("delete", "delete a work queue")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("queue", metavar="NAME_OR_ID", help=QUEUE_HELP)
        p.set_defaults(func=f"flowdeck.cli.work_queue_cmd:{verb}")

    p = sub.add_parser("set-limit", help="set (or with 'none' remove) a queue's concurrency limit")
    p.add_argument("queue", metavar="NAME_OR_ID", help=QUEUE_HELP)
    p.add_argument("limit", metavar="N|none", type=_limit, help="at most N runs PENDING or RUNNING; none: no limit")
    p.set_defaults(func="flowdeck.cli.work_queue_cmd:set_limit")

    p = sub.add_parser("preview", help="the runs the queue would lease in the next hours")
    p.add_argument("queue", metavar="NAME_OR_ID", help=QUEUE_HELP)
    p.add_argument("--hours", type=float, default=1.0, help="look this far ahead (default 1)")
    add_json_flag(p)
    add_wide_flag(p)
    p.set_defaults(func="flowdeck.cli.work_queue_cmd:preview")


def _limit(text: str):
    if text.lower() in ("none", "off", "unlimited"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number or 'none', not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def _queue(client, ref: str):
    import uuid

    from flowdeck.exceptions import NotFoundError

    try:
        uuid.UUID(ref)
    except ValueError:
        return client.get_work_queue_by_name(ref)
    try:
        return client.get_work_queue(ref)
    except NotFoundError:
        return client.get_work_queue_by_name(ref)


def _limit_text(q) -> str:
    return "none" if q.concurrency_limit is None else str(q.concurrency_limit)


def create(args) -> int:
    from flowdeck.client import get_client
    from flowdeck.exceptions import InvalidArgumentError

    if args.limit is not None and args.limit < 0:
        raise InvalidArgumentError(f"--limit must not be negative, not {args.limit}")
    client = get_client()
    dep_ids = [client.get_deployment_by_name(d).id for d in args.deployment]
    q = client.create_work_queue(args.name, description=args.description, tags=args.tag, deployment_ids=dep_ids,
                                 flow_runner_types=args.flow_runner_type, concurrency_limit=args.limit,
                                 is_paused=args.paused)
    print(f"Created work queue '{q.name}' ({q.id}).")
    print(f"Start an agent for it with:\n\n    flowdeck agent start --work-queue '{q.name}'\n")
    return 0


def _dep_names(client, ids: list[str]) -> list[str]:
    from flowdeck.exceptions import NotFoundError

    out = []
    for d in ids:
        try:
            out.append(client.get_deployment(d).full_name)
        except NotFoundError:
            out.append(f"{d} (deleted)")
    return out


def ls(args) -> int:
    from flowdeck.cli import output
    from flowdeck.cli.output import Column
    from flowdeck.client import get_client

    client = get_client()
    queues, footer = output.listed(lambda limit: client.list_work_queues(limit=limit), args)
    if args.json:
        output.print_json(queues)
        return 0
    columns = [Column("name", "key"), Column("id", "id"), Column("late", "fixed", justify="right"),
               Column("running", "fixed", justify="right"), Column("limit", "fixed", drop=4, justify="right"),
               Column("paused", "fixed", drop=5), Column("tags", "text", drop=3),
               Column("deployments", "fixed", drop=2, justify="right"), Column("runner types", "text", drop=1)]
    output.table(
        "Work queues", columns,
        [(q.name, q.id, _late_cell(q.late_runs), q.running_runs, _limit_text(q), "paused" if q.is_paused else "",
          ", ".join(q.filter.tags), len(q.filter.deployment_ids) or "", ", ".join(q.filter.flow_runner_types))
         for q in queues], wide=args.wide, footer=footer)
    return 0


def _late_cell(n: int):
    from rich.text import Text

    from flowdeck.cli.output import STATE_STYLES

    return Text(str(n), style=STATE_STYLES["Late"] if n else "")


def inspect(args) -> int:
    from flowdeck.cli import output
    from flowdeck.client import get_client

    client = get_client()
    q = _queue(client, args.queue)
    if args.json:
        output.print_json(q)
        return 0
    data = q.model_dump(mode="json")
    data["filter"]["deployments"] = _dep_names(client, q.filter.deployment_ids)
    output.pretty(data)
    return 0


def _set(args, message: str, **fields) -> int:
    from flowdeck.client import get_client

    client = get_client()
    q = _queue(client, args.queue)
    q = client.update_work_queue(q.id, **fields)
    print(message.format(name=q.name, limit=_limit_text(q)))
    return 0


def pause(args) -> int:
    return _set(args, "Paused work queue '{name}': it leases nothing until resumed.", is_paused=True)


def resume(args) -> int:
    return _set(args, "Resumed work queue '{name}'.", is_paused=False)


def set_limit(args) -> int:
    return _set(args, "Work queue '{name}' concurrency limit: {limit}.", concurrency_limit=args.limit)


def delete(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    q = _queue(client, args.queue)
    client.delete_work_queue(q.id)
    print(f"Deleted work queue '{q.name}'.")
    return 0


def preview(args) -> int:
    from flowdeck.cli import output
    from flowdeck.client import get_client
    from flowdeck.exceptions import InvalidArgumentError

    if args.hours < 0:
        raise InvalidArgumentError(f"--hours must not be negative, not {args.hours:g}")
    client = get_client()
    q = _queue(client, args.queue)
    runs = client.preview_work_queue(q.id, within_seconds=max(1, int(args.hours * 3600)))
    if args.json:
        output.print_json(runs)
        return 0
    note = " (paused: nothing is leased until it is resumed)" if q.is_paused else ""
    from flowdeck.cli.flow_run_cmd import RUN_COLUMNS, run_row
    from flowdeck.cli.output import Column

    output.table(f"Runs work queue '{q.name}' would lease in the next {args.hours:g}h{note}",
                 [*RUN_COLUMNS, Column("tags", "text", drop=0)],
                 [(*run_row(r), ", ".join(r.tags)) for r in runs], wide=args.wide)
    return 0
