"""`flowdeck api-key ...` (only stdlib at import time). Needs an admin key."""
from __future__ import annotations

SCOPES = ("read", "write", "agent", "admin")


from flowdeck.cli.main import add_list_flags


def register(subparsers) -> None:
    ak = subparsers.add_parser("api-key", help="create, list and revoke API keys (needs an admin key)")
    sub = ak.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("create", help="create a key and print it once")
    p.add_argument("name", metavar="NAME", help="the key's name (shown in logs and `api-key ls`)")
    p.add_argument("--scope", "-s", required=True, choices=SCOPES,
                   help="read (Get/List, logs), write (read + changes, runs), agent (read + lease stream and "
                        "reports for the runs it holds), admin (write + key management)")
    p.set_defaults(func="flowdeck.cli.api_key_cmd:create")

    p = sub.add_parser("ls", help="list keys (never the keys themselves)")
    add_list_flags(p)
    p.add_argument("--revoked", action="store_true", help="include revoked keys")
    p.set_defaults(func="flowdeck.cli.api_key_cmd:ls")

    p = sub.add_parser("revoke", help="revoke a key: refused from its next call on")
    p.add_argument("name", metavar="NAME", help="the key's name")
    p.add_argument("--force", action="store_true",
                   help="revoke it even when it is the last active admin key (nobody can manage keys then)")
    p.set_defaults(func="flowdeck.cli.api_key_cmd:revoke")


def create(args) -> int:
    import sys

    from flowdeck.client import get_client

    info, key = get_client().create_api_key(args.name, scope=args.scope)
    print(f"Created API key {info.name!r} (scope {info.scope}, id {info.id}). It is shown only this once; "
          "give it to clients as FLOWDECK_API_KEY:", file=sys.stderr)
    print(key, flush=True)
    return 0


def ls(args) -> int:
    from flowdeck.cli import output
    from flowdeck.cli.output import Column
    from flowdeck.client import get_client

    client = get_client()
    keys, footer = output.listed(lambda limit: client.list_api_keys(limit=limit, show_revoked=args.revoked), args)
    if args.json:
        output.print_json(keys)
        return 0
    output.table(
        "API keys",
        [Column("name", "key"), Column("scope", "fixed"), Column("id", "id"), Column("created", "fixed", drop=2),
         Column("created by", "text", drop=1), Column("revoked", "fixed", drop=3)],
        [[k.name, k.scope, k.id, output.stamp(k.created), k.created_by, output.stamp(k.revoked)] for k in keys],
        wide=args.wide, footer=footer)
    return 0


def revoke(args) -> int:
    from flowdeck.client import get_client

    info = get_client().revoke_api_key(args.name, force=args.force)
    print(f"Revoked API key {info.name!r} (id {info.id}).")
    return 0
