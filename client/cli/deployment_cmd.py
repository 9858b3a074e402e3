"""`flowdeck deployment ...`."""
from flowdeck.cli import output


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


def ls(args) -> int:
    from flowdeck.client import get_client

    deps = get_client().list_deployments(flow_name=args.flow_name, tags=args.tag, limit=output.limit_of(args))
    if args.json:
        output.print_json(deps)
        return 0
    output.table(
        "Deployments",
        ["flow/deployment", "id", "schedule", "tags", "schedule active", "next run"],
        [(d.full_name, d.id, _schedule_text(d.schedule), ", ".join(d.tags), d.is_schedule_active,
          output.when(d.next_run_time)) for d in deps],
    )
    return 0


def inspect(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    dep = client.get_deployment_by_name(args.name)
    if args.json:
        output.print_json(dep)
    else:
        output.pretty(dep)
        from flowdeck.cli.lease_info import print_deployment_leases

        print_deployment_leases(client, dep)
    return 0


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
