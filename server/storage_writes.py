"""Flow code written into a registered storage block by the server, with the
block's stored credentials: a caller deploying to an S3 block whose keys the
server keeps needs no keys of its own (UploadFlowData with a storage_block_id).

The keys are used here and never leave the server; an error message never
holds them.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from flowdeck.core.errors import FailedPreconditionError, invalid_field
from flowdeck.core.s3 import object_key, put_content
from flowdeck.server import storage_blocks

# Block types the server writes into itself ("server": its own table; "s3": the bucket).
WRITABLE = ("server", "s3")
# An unreachable endpoint fails the upload in seconds, not after boto3's default retries.
S3_CLIENT_SETTINGS = {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}


def target(s: Session, block_id: str, path: str = "metadata.storage_block_id") -> tuple[str, dict]:
    """(type, config with secrets) of the block an upload goes to."""
    row = storage_blocks.get(s, block_id)
    if row.type not in WRITABLE:
        raise invalid_field(path, block_id, f"is a {row.type!r} block: only the machine using it can write to it "
                                            f"(the server writes to {' and '.join(WRITABLE)} blocks)")
    return row.type, dict(row.config or {})


def public_config(config: dict) -> dict:
    """A block's config without its secrets: what a FlowData may hold."""
    return {k: v for k, v in config.items() if not storage_blocks.is_secret(k)}


def write_s3(config: dict, data: bytes, sha256: str) -> bool:
    """Store `data` under its hash in the S3 block `config`; False when it was there."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    key = object_key(config.get("prefix"), sha256)
    try:
        s3 = boto3.session.Session().client(
            "s3", region_name=config.get("region_name"), endpoint_url=config.get("endpoint_url"),
            aws_access_key_id=config.get("aws_access_key_id"),
            aws_secret_access_key=config.get("aws_secret_access_key"),
            aws_session_token=config.get("aws_session_token"), config=Config(**S3_CLIENT_SETTINGS))
        return put_content(s3, config["bucket"], key, data)
    except (ClientError, BotoCoreError, ValueError) as e:
        raise FailedPreconditionError(
            f"cannot write flow code to s3://{config['bucket']}/{key}: {_scrubbed(str(e), config)}",
            reason="STORAGE_WRITE_FAILED") from None


def _scrubbed(text: str, config: dict) -> str:
    for name, value in config.items():
        if storage_blocks.is_secret(name) and value:
            text = text.replace(str(value), storage_blocks.MASK)
    return text
