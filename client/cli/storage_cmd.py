"""`flowdeck storage ...`: storage blocks for flow code.

Only the standard library is imported at module level (`flowdeck --help` builds
every parser); each command imports what it needs when it runs. Secrets are
never printed: the server returns them masked and this module prints nothing else.
"""
from __future__ import annotations

import argparse
import os

from flowdeck.cli.main import add_list_flags


BLOCK_HELP = "the block's id, or the start of it that `storage ls` shows"


def register(top) -> None:
    st = top.add_parser("storage", help="storage blocks that keep flow code (local, S3, the server)")
    sub = st.add_subparsers(dest="command", metavar="COMMAND", required=True)

    create = sub.add_parser("create", help="register a storage block (an equal one is reused)")
    csub = create.add_subparsers(dest="block_type", metavar="TYPE", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set-default", action="store_true", help="also make it the default block")
        p.add_argument("--json", action="store_true", help="print plain JSON for scripts")
        p.set_defaults(func="flowdeck.cli.storage_cmd:create")

    p = csub.add_parser("local", help="a folder (default $FLOWDECK_HOME/storage on the machine using it)")
    p.add_argument("--path", default=None, help="the folder (made absolute)")
    common(p)

    p = csub.add_parser("s3", help="an S3 bucket or S3-compatible endpoint")
    p.add_argument("--bucket", required=True, help="the S3 bucket")
    p.add_argument("--prefix", default="", help="key prefix inside the bucket")
    p.add_argument("--endpoint-url", default=None, help="e.g. http://127.0.0.1:9000 for MinIO/moto")
    p.add_argument("--region", default=None, help="AWS region name")
    p.add_argument("--aws-access-key-id", default=None,
                   help="default: $AWS_ACCESS_KEY_ID; with no keys agents use boto3's credential chain")
    p.add_argument("--aws-secret-access-key", default=None, help="default: $AWS_SECRET_ACCESS_KEY")
    common(p)

    p = csub.add_parser("server", help="the flowdeck server keeps the flow code (no bucket needed)")
    common(p)

    p = sub.add_parser("ls", help="list storage blocks")
    add_list_flags(p)
    p.set_defaults(func="flowdeck.cli.storage_cmd:ls")

    p = sub.add_parser("inspect", help="show a storage block (secrets masked)")
    p.add_argument("id", metavar="ID", help=BLOCK_HELP)
    p.add_argument("--json", action="store_true", help="print plain JSON for scripts")
    p.set_defaults(func="flowdeck.cli.storage_cmd:inspect")

    p = sub.add_parser("set-default", help="make a block the default for new deployments")
    p.add_argument("id", metavar="ID", help=BLOCK_HELP)
    p.set_defaults(func="flowdeck.cli.storage_cmd:set_default")

    p = sub.add_parser("delete", help="delete a block no deployment uses")
    p.add_argument("id", metavar="ID", help=BLOCK_HELP)
    p.set_defaults(func="flowdeck.cli.storage_cmd:delete")


def display_name(block_type: str) -> str:
    """"S3 Storage" for "s3": the block class's display name."""
    from flowdeck.blocks.storage import BLOCK_TYPES

    cls = BLOCK_TYPES.get(block_type)
    return cls.display_name if cls is not None else block_type


def describe(block) -> str:
    """One line about a block (config already masked by the server)."""
    cfg = block.config
    if block.type == "s3":
        where = f"s3://{cfg.get('bucket', '')}/{cfg.get('prefix', '')}".rstrip("/")
        extra = [f"endpoint {cfg['endpoint_url']}"] if cfg.get("endpoint_url") else []
        extra += [f"region {cfg['region_name']}"] if cfg.get("region_name") else []
        extra += ["keys ********"] if cfg.get("aws_secret_access_key") else ["keys from the environment"]
        return f"{where} ({', '.join(extra)})"
    if block.type == "local":
        return cfg.get("path") or "$FLOWDECK_HOME/storage"
    if block.type == "server":
        return "kept by the flowdeck server"
    return ", ".join(f"{k}={v}" for k, v in sorted(cfg.items()))


def _block_from_args(args):
    from flowdeck.blocks import storage

    if args.block_type == "local":
        path = os.path.abspath(os.path.expanduser(args.path)) if args.path else None
        return storage.LocalStorageBlock(path=path)
    if args.block_type == "s3":
        # Flags as a pair, else the environment as a pair (never one of each).
        from_flags = bool(args.aws_access_key_id or args.aws_secret_access_key)
        if from_flags:
            key_id, secret, token = args.aws_access_key_id, args.aws_secret_access_key, None
        else:
            key_id = os.environ.get("AWS_ACCESS_KEY_ID") or None
            secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or None
            token = (os.environ.get("AWS_SESSION_TOKEN") or None) if key_id else None
        if bool(key_id) != bool(secret):
            from flowdeck.exceptions import InvalidArgumentError

            raise InvalidArgumentError(
                "give both an access key id and a secret access key (flags or AWS_* environment), or neither"
            )
        return storage.S3StorageBlock(
            bucket=args.bucket, prefix=args.prefix, endpoint_url=args.endpoint_url, region_name=args.region,
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            aws_session_token=token,
        )
    return storage.ServerStorageBlock()


def create(args) -> int:
    from flowdeck.cli import output
    from flowdeck.client import get_client

    block = _block_from_args(args)
    got = get_client().create_storage_block(block, is_default=args.set_default)
    if args.json:
        output.print_json(got)
        return 0
    print(f"Storage block {got.id} ({display_name(got.type)}: {describe(got)})"
          + (" is the default." if got.is_default else "."))
    print("Use it in a DeploymentSpec with flow_storage=" + repr(got.id)
          + (" or make it the default with:\n\n    flowdeck storage set-default " + got.id if not got.is_default else ""))
    return 0


def block_id(client, ref: str) -> str:
    """The id of the block `ref` names: a whole id, or a prefix only one block's id has."""
    import uuid

    from flowdeck.exceptions import InvalidArgumentError, NotFoundError

    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    found = [b.id for b in client.list_storage_blocks(limit=None) if b.id.startswith(ref.lower())]
    if not found:
        raise NotFoundError(f"no storage block with an id starting {ref!r}")
    if len(found) > 1:
        raise InvalidArgumentError(f"{len(found)} storage blocks have ids starting {ref!r}: give more of the id")
    return found[0]


def ls(args) -> int:
    from flowdeck.cli import output
    from flowdeck.cli.output import Column
    from flowdeck.client import get_client

    client = get_client()
    blocks, footer = output.listed(lambda limit: client.list_storage_blocks(limit=limit), args)
    if args.json:
        output.print_json(blocks)
        return 0
    output.table(
        "Storage blocks",
        [Column("id", "id"), Column("type", "fixed"), Column("where", "text", drop=2),
         Column("default", "fixed", drop=3), Column("created", "fixed", drop=1)],
        [(b.id, display_name(b.type), describe(b), "yes" if b.is_default else "", output.stamp(b.created))
         for b in blocks], wide=args.wide, footer=footer)
    return 0


def inspect(args) -> int:
    from flowdeck.cli import output
    from flowdeck.client import get_client

    client = get_client()
    block = client.get_storage_block(block_id(client, args.id))
    if args.json:
        output.print_json(block)
    else:
        output.pretty(block)
    return 0


def set_default(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    block = client.set_default_storage_block(block_id(client, args.id))
    print(f"Storage block {block.id} ({display_name(block.type)}) is now the default.")
    return 0


def delete(args) -> int:
    from flowdeck.client import get_client

    client = get_client()
    ref = block_id(client, args.id)
    client.delete_storage_block(ref)
    print(f"Deleted storage block {ref}.")
    return 0
