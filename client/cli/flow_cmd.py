"""`flowdeck flow ...`."""
from flowdeck.cli import output
from flowdeck.cli.output import Column


def ls(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    flows, footer = output.listed(lambda limit: client.list_flows(name_prefix=args.name_prefix, limit=limit), args)
    if args.json:
        output.print_json(flows)
        return 0
    output.table("Flows", [Column("name", "key"), Column("id", "id"), Column("created", "fixed", drop=1)],
                 [(f.name, f.id, output.stamp(f.created)) for f in flows], wide=args.wide, footer=footer)
    return 0
