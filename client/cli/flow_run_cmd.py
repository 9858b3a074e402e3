"""`flowdeck flow-run ...`."""
from flowdeck.cli import output

STATE_STYLE = {"COMPLETED": "green", "FAILED": "red", "CRASHED": "red", "CANCELLED": "yellow",
               "RUNNING": "blue", "PENDING": "cyan", "SCHEDULED": ""}


def _run(client, ref: str):
    """A run by id, else the newest run with this readable name."""
    import uuid

    from flowdeck.exceptions import NotFoundError

    try:
        uuid.UUID(ref)
    except ValueError:
        runs = client.list_flow_runs(name=ref, limit=1)
        if not runs:
            raise NotFoundError(f"flow run {ref!r} not found") from None
        return client.get_flow_run(runs[0].id)
    return client.get_flow_run(ref)


def ls(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    deployment_id = ""
    if args.deployment:
        deployment_id = client.get_deployment_by_name(args.deployment).id
    runs = client.list_flow_runs(flow_name=args.flow_name, deployment_id=deployment_id,
                                 state_types=[s.upper() for s in args.state], tags=args.tag,
                                 limit=output.limit_of(args))
    if args.json:
        output.print_json(runs)
        return 0
    output.table(
        "Flow runs",
        ["id", "name", "flow", "state", "expected start", "run time (s)"],
        [(r.id, r.name, r.flow_name, f"{r.state.type} ({r.state.name})" if r.state.name.upper() != r.state.type else r.state.type,
          output.when(r.expected_start_time), f"{r.total_run_time:.2f}") for r in runs],
    )
    return 0


def inspect(args) -> int:
    from flowdeck.client import get_client

    run = _run(get_client(), args.run)
    if args.json:
        output.print_json(run)
    else:
        output.pretty(run)
        from flowdeck.cli.lease_info import print_run_lease

        print_run_lease(run)
    return 0


def logs(args) -> int:
    import logging

    from flowdeck.client import get_client

    client = get_client()
    run = _run(client, args.run)
    records = client.list_logs(run.id, limit=None)
    if args.json:
        output.print_json(records)
        return 0
    for r in records:
        level = logging.getLevelName(r.level)
        print(f"{r.timestamp.astimezone().strftime('%H:%M:%S.%f')[:-3]} | {level:<7} | {r.logger_name} - {r.message}")
    return 0


def cancel(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    run = client.cancel_flow_run(_run(client, args.run).id)
    if run.state.type == "CANCELLED":
        print(f"Cancelled flow run '{run.name}' ({run.id}).")
    else:
        print(f"Cancelling flow run '{run.name}' ({run.id}): its agent was told to stop it.")
    return 0


def delete(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    run = _run(client, args.run)
    client.delete_flow_run(run.id)
    print(f"Deleted flow run '{run.name}' ({run.id}).")
    return 0
