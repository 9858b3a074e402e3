"""Storage blocks: where flow code is kept, persisted with type and config.

- One block per (type, config): `config_hash` is the SHA-256 of the type and the
  canonical JSON of the config (secrets included), unique in the table, so
  creating an equal block again returns the existing one, even under races.
- Secrets are stored as given (the database is the trust boundary) and leave the
  server only through `lease_configs`, read when a run whose flow code needs
  them is leased to an agent. Everything else (`public`, hence
  Get/List/replayed responses) shows them masked as "********".
- A block is not deleted while a deployment references it (FAILED_PRECONDITION;
  the RESTRICT foreign key is the backstop under races).
- At most one block is the default; setting one clears the others in a single
  UPDATE, so racing SetDefault calls leave exactly one.
"""
from __future__ import annotations

import hashlib
import json
import re

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flowdeck.server import pagination
from flowdeck.core.errors import FailedPreconditionError, NotFoundError, invalid_field
from flowdeck.core.s3 import bucket_name_problem, clean_prefix
from flowdeck.server.models import DeploymentRow, FlowRow, StorageBlockRow, new_id, utcnow
from flowdeck.server.views import StorageBlockView

MASK = "********"
# Field names whose values are secrets (masked everywhere but in a lease).
SECRET_NAME = re.compile(r"secret|token|password|passwd|credential|private_key|access_key_id", re.I)

# The settings each block type accepts (all optional strings unless required).
SCHEMAS: dict[str, dict[str, bool]] = {
    "local": {"path": False},
    "s3": {
        "bucket": True,
        "prefix": False,
        "aws_access_key_id": False,
        "aws_secret_access_key": False,
        "aws_session_token": False,
        "region_name": False,
        "endpoint_url": False,
    },
    "server": {},
}
MAX_VALUE = 2048


def is_secret(field: str) -> bool:
    return bool(SECRET_NAME.search(field))


def normalize(block_type: str, config: dict, path: str = "storage_block") -> dict:
    """Validate a config for its type and return it canonical: unset (None or
    empty) settings are dropped, so `S3(bucket="b")` and `S3(bucket="b", prefix="")`
    are one block. Error messages never echo a secret's value."""
    if block_type not in SCHEMAS:
        raise invalid_field(f"{path}.type", block_type, f"must be one of {', '.join(SCHEMAS)}")
    schema = SCHEMAS[block_type]
    out = {}
    for key, value in (config or {}).items():
        field = f"{path}.config.{key}"
        shown = MASK if is_secret(key) else value
        if key not in schema:
            allowed = ", ".join(schema) or "none"
            raise invalid_field(field, shown, f"is not a setting of {block_type!r} storage (allowed: {allowed})")
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise invalid_field(field, shown, "must be a string")
        if len(value) > MAX_VALUE or any(ord(ch) < 32 for ch in value):
            raise invalid_field(field, shown, f"must be at most {MAX_VALUE} printable characters")
        out[key] = value
    for key, required in schema.items():
        if required and key not in out:
            raise invalid_field(f"{path}.config.{key}", "", f"is required for {block_type!r} storage")
    if block_type == "s3" and bucket_name_problem(out["bucket"]):
        raise invalid_field(f"{path}.config.bucket", out["bucket"], bucket_name_problem(out["bucket"]))
    if block_type == "s3" and ("aws_access_key_id" in out) != ("aws_secret_access_key" in out):
        raise invalid_field(
            f"{path}.config", MASK, "aws_access_key_id and aws_secret_access_key go together"
        )
    if "prefix" in out:
        out["prefix"] = clean_prefix(out["prefix"])
        if not out["prefix"]:
            del out["prefix"]
    return out


def config_hash(block_type: str, config: dict) -> str:
    canonical = json.dumps({"type": block_type, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def masked(config: dict) -> dict:
    return {k: (MASK if is_secret(k) and v not in (None, "") else v) for k, v in (config or {}).items()}


def public(row: StorageBlockRow) -> StorageBlockView:
    """The block with its secrets masked: what the API returns."""
    return StorageBlockView(id=row.id, type=row.type, config=masked(row.config), is_default=bool(row.is_default),
                            created=row.created, updated=row.updated)


def _one(s: Session, *where) -> StorageBlockRow | None:
    """The block matching `where` (the newest default when several were)."""
    return s.scalar(select(StorageBlockRow).where(*where).order_by(StorageBlockRow.updated.desc()).limit(1))


def create(s: Session, block_type: str, config: dict, *, make_default: bool = False) -> StorageBlockRow:
    """Get-or-create the block with this type and config."""
    cfg = normalize(block_type, config)
    digest = config_hash(block_type, cfg)
    row = _one(s, StorageBlockRow.config_hash == digest)
    if row is None:
        # ON CONFLICT DO NOTHING: two callers creating one block both get it.
        insert = pg_insert if s.bind.dialect.name == "postgresql" else sqlite_insert
        now = utcnow()
        s.execute(
            insert(StorageBlockRow)
            .values(id=new_id(), type=block_type, config=cfg, config_hash=digest, is_default=False,
                    created=now, updated=now)
            .on_conflict_do_nothing(index_elements=["config_hash"])
        )
        row = _one(s, StorageBlockRow.config_hash == digest)
    if make_default and not row.is_default:
        row = set_default(s, row.id)
    return row


def get(s: Session, block_id: str, hint: str = "") -> StorageBlockRow:
    row = s.get(StorageBlockRow, block_id)
    if row is None:
        raise NotFoundError(f"storage block {block_id!r} not found{hint}", reason="STORAGE_BLOCK_NOT_FOUND",
                            block_id=block_id)
    return row


def check_exists(s: Session, block_id: str | None) -> None:
    """For deployments naming a block: an unknown id is a clear error."""
    if block_id:
        get(s, block_id, " (create it with `flowdeck storage create`)")


_OLDEST_FIRST = pagination.Order(pagination.Key(StorageBlockRow.created, "created"),
                                 pagination.Key(StorageBlockRow.id, "id"))


def list_(s: Session, page_size: int, page_token: str) -> tuple[list[StorageBlockRow], str]:
    return pagination.paginate(s, select(StorageBlockRow), _OLDEST_FIRST, page_size, page_token,
                               listing="storage_blocks", scalars=True)


def delete_(s: Session, block_id: str) -> None:
    get(s, block_id)
    users = s.execute(
        select(FlowRow.name, DeploymentRow.name)
        .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
        .where(DeploymentRow.storage_block_id == block_id)
        .order_by(FlowRow.name, DeploymentRow.name)
        .limit(3)
    ).all()
    if users:
        count = s.scalar(select(func.count()).where(DeploymentRow.storage_block_id == block_id))
        names = ", ".join(f"{f}/{d}" for f, d in users) + (", ..." if count > len(users) else "")
        raise FailedPreconditionError(
            f"storage block {block_id} is used by {count} deployment(s) ({names}); "
            "delete them or move their flow code first",
            reason="STORAGE_BLOCK_IN_USE", block_id=block_id, deployments=str(count),
        )
    s.delete(s.get(StorageBlockRow, block_id))
    s.flush()


def set_default(s: Session, block_id: str) -> StorageBlockRow:
    get(s, block_id)
    # One statement over every row (no WHERE, so Postgres re-checks each row a
    # racing SetDefault changed): whichever commits last wins, alone.
    target = StorageBlockRow.id == block_id
    s.execute(
        update(StorageBlockRow)
        .values(
            is_default=case((target, True), else_=False),
            updated=case((target, literal(utcnow(), StorageBlockRow.updated.type)), else_=StorageBlockRow.updated),
        )
        .execution_options(synchronize_session=False)
    )
    s.expire_all()
    return get(s, block_id)


def get_default(s: Session) -> StorageBlockRow:
    row = _one(s, StorageBlockRow.is_default.is_(True))
    if row is None:
        raise NotFoundError("no default storage block is set (see `flowdeck storage set-default`)",
                       reason="NO_DEFAULT_STORAGE_BLOCK")
    return row


def find(s: Session, block_type: str, config: dict) -> StorageBlockRow | None:
    """The block with exactly this type and config, if registered."""
    digest = config_hash(block_type, normalize(block_type, config))
    return _one(s, StorageBlockRow.config_hash == digest)


def lease_configs(s: Session, block_ids) -> dict[str, tuple[str, dict]]:
    """Block id -> (type, config with secrets in clear) of the blocks that
    exist: only for runs' leases. Never log them."""
    rows = s.execute(select(StorageBlockRow.id, StorageBlockRow.type, StorageBlockRow.config)
                     .where(StorageBlockRow.id.in_(list(block_ids)))).all()
    return {block_id: (block_type, dict(config or {})) for block_id, block_type, config in rows}
