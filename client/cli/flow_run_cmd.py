"""`flowdeck flow-run ...`."""
from flowdeck.cli import output

from flowdeck.cli.output import Column

RUN_COLUMNS = [Column("id", "id"), Column("name", "key"), Column("flow", "fixed", drop=3),
               Column("state", "fixed", drop=4), Column("expected start", "fixed", drop=2),
               Column("run time", "fixed", drop=1, justify="right")]


def find_run(client, ref: str):
    """A run by id, else the newest run with this readable name."""
    import uuid

    from flowdeck.exceptions import NotFoundError

    try:
        uuid.UUID(ref)
    except ValueError:
        runs = client.list_flow_runs(name=ref, limit=1)
        if not runs:
            hint = (" (tables show ids cut to 8 characters: give the name, or the whole id from --wide)"
                    if len(ref) == output.SHORT_ID and all(ch in "0123456789abcdef" for ch in ref) else "")
            raise NotFoundError(f"flow run {ref!r} not found{hint}") from None
        return client.get_flow_run(runs[0].id)
    return client.get_flow_run(ref)


def state_filter(args) -> tuple[list[str], list[str]]:
    """(state types, state names) from --state and --late; an unknown state lists the known ones."""
    from flowdeck.cli.main import RUN_STATES
    from flowdeck.core.states import LATE_NAME
    from flowdeck.exceptions import InvalidArgumentError

    types, names = [], []
    for raw in [*args.state, *(["LATE"] if args.late else [])]:
        value = raw.strip().upper()
        if value not in RUN_STATES:
            raise InvalidArgumentError(f"invalid --state {raw!r}: must be one of {', '.join(RUN_STATES)}",
                                       field="state")
        if value == "LATE":
            names.append(LATE_NAME)
        else:
            types.append(value)
    return types, names


def run_row(r) -> tuple:
    ran = f"{r.total_run_time:.1f}s" if r.start_time is not None else ""
    return (r.id, r.name, r.flow_name, output.state_text(r.state), output.stamp(r.expected_start_time), ran)


def ls(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    types, names = state_filter(args)
    limit = output.limit_of(args)
    deployment_id = client.get_deployment_by_name(args.deployment).id if args.deployment else ""
    query = dict(flow_name=args.flow_name, deployment_id=deployment_id, state_types=types, state_names=names,
                 tags=args.tag)
    window = "upcoming" if args.upcoming else "started_or_due"
    runs = client.list_flow_runs(**query, window=window, newest_first=not args.upcoming, limit=limit)
    if args.json:
        output.print_json(list(runs))
        return 0
    notes = [output.more_footer(len(runs), runs.total_size)]
    if not args.upcoming:
        upcoming = client.list_flow_runs(**query, window="upcoming", limit=1).total_size
        if upcoming:
            notes.append(f"{upcoming:,} upcoming scheduled run{'s' if upcoming != 1 else ''} not shown: --upcoming")
    title = "Upcoming flow runs" if args.upcoming else "Flow runs"
    output.table(title, RUN_COLUMNS, [run_row(r) for r in runs], wide=args.wide,
                 footer="\n".join(n for n in notes if n))
    return 0


def inspect(args) -> int:
    from flowdeck.client import get_client

    run = find_run(get_client(), args.run)
    if args.json:
        output.print_json(run)
    else:
        output.pretty(run)
        from flowdeck.cli.lease_info import print_run_lease

        print_run_lease(run)
    return 0


def cancel(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    run = client.cancel_flow_run(find_run(client, args.run).id)
    if run.state.type == "CANCELLED":
        print(f"Cancelled flow run '{run.name}' ({run.id}).")
    else:
        print(f"Cancelling flow run '{run.name}' ({run.id}): its agent was told to stop it.")
    return 0


def delete(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    run = find_run(client, args.run)
    client.delete_flow_run(run.id)
    print(f"Deleted flow run '{run.name}' ({run.id}).")
    return 0
