"""`flowdeck deployment ...`."""
from flowdeck.cli import output
from flowdeck.cli.output import Column


def _schedule_text(schedule: dict | None) -> str:
    if not schedule:
        return ""
    if "interval" in schedule:
        secs = schedule["interval"]
        text = f"every {secs:g}s"
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if secs >= size and secs % size == 0:
                text = f"every {secs // size:g}{unit}"
                break
    elif "cron" in schedule:
        text = f"cron {schedule['cron']}"
    else:
        text = f"rrule {schedule['rrule']}"
    tz = schedule.get("timezone")
    return f"{text} ({tz})" if tz else text


PARAMETER_COLUMNS = [Column("name", "key"), Column("type", "fixed"), Column("default", "text", drop=2),
                     Column("required", "fixed"), Column("description", "text", drop=1)]
COLUMNS = [Column("flow/deployment", "key"), Column("id", "id"), Column("schedule", "text", drop=3),
           Column("next run", "fixed", drop=2), Column("tags", "text", drop=1)]


def schedule_cell(d) -> str:
    """The schedule, marked when paused; empty without a schedule."""
    text = _schedule_text(d.schedule)
    return f"{text} (paused)" if text and not d.is_schedule_active else text


def ls(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    deps, footer = output.listed(
        lambda limit: client.list_deployments(flow_name=args.flow_name, tags=args.tag, limit=limit), args)
    if args.json:
        output.print_json(deps)
        return 0
    output.table("Deployments", COLUMNS,
                 [(d.full_name, d.id, schedule_cell(d), output.stamp(d.next_run_time), ", ".join(d.tags))
                  for d in deps], wide=args.wide, footer=footer)
    return 0


def inspect(args) -> int:
    """Every property, the parameter schema as a table (in --json as it is
    stored), and the runs agents hold. Loads no flow code."""
    from flowdeck.client import get_client

    client = get_client()
    dep = client.get_deployment_by_name(args.name)
    if args.json:
        output.print_json(dep)
        return 0
    shown = output.to_json(dep)
    del shown["parameter_schema"]
    output.pretty(shown)
    print_parameters(dep)
    from flowdeck.cli.lease_info import print_deployment_leases

    print_deployment_leases(client, dep)
    return 0


def print_parameters(dep) -> None:
    """The parameter schema as a table: a run's value is the deployment's
    default, else the flow's own."""
    import json

    from flowdeck.core.schema_values import properties, resolve, type_text

    schema = dep.parameter_schema
    if not schema:
        output.console().print("Parameters: not checked by the server (the deployment has no parameter schema).",
                               highlight=False)
        return
    required = set(schema.get("required") or ())
    rows = []
    for name, prop in properties(schema):
        resolved = resolve(prop, schema)
        default = dep.parameters[name] if name in dep.parameters else resolved.get("default", ...)
        rows.append((name, type_text(prop, schema), "" if default is ... else json.dumps(default),
                     "yes" if name in required else "", resolved.get("description", "")))
    if not rows:
        rows.append(("(none)", "", "", "", "the flow takes no parameters"))
    title = "Parameters" + (" (others allowed)" if schema.get("additionalProperties") is not False else "")
    output.table(title, PARAMETER_COLUMNS, rows)


def delete(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    dep = client.get_deployment_by_name(args.name)
    client.delete_deployment(dep.id)
    print(f"Deleted deployment '{args.name}'.")
    return 0


def set_schedule_active(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    dep = client.get_deployment_by_name(args.name)
    client.update_deployment(dep.id, is_schedule_active=args.active)
    print(f"{'Resumed' if args.active else 'Paused'} the schedule of deployment '{args.name}'.")
    return 0
