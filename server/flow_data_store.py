"""Flow code kept by the server: blobs in the database, content-addressed by SHA-256.

Uploading the same bytes twice stores them once. An upload is written in one
transaction only when complete (its size limit is checked while it streams in,
by the request limits of flowdeck.server.api.limits), so a refused or broken
upload leaves nothing behind. Downloads are
checked against their hash before a byte is sent.
"""
from __future__ import annotations

import hashlib
import json
import re

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flowdeck.core.errors import DataLossError, NotFoundError, invalid_field
from flowdeck.server import storage_blocks
from flowdeck.server.models import FlowDataBlobRow, utcnow

CHUNK = 1024 * 1024
SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def check_sha(value: str, path: str = "sha256") -> str:
    value = (value or "").lower()
    if not SHA_RE.match(value):
        raise invalid_field(path, value, "must be a SHA-256 hex digest (64 hex characters)")
    return value


class Upload:
    """Collects one streamed upload: metadata first, then chunks."""

    def __init__(self):
        self.metadata = None
        self.buffer = bytearray()
        self.hasher = hashlib.sha256()

    def add(self, request) -> None:
        kind = request.WhichOneof("kind")
        if kind == "metadata":
            if self.metadata is not None or self.buffer:
                raise invalid_field("metadata", "", "must come once, in the first message",
                                    reason="UPLOAD_PROTOCOL_VIOLATION")
            meta = request.metadata
            if meta.size < 0:
                raise invalid_field("metadata.size", meta.size, "must not be negative")
            for field in ("flow_name", "filename"):
                value = getattr(meta, field)
                if len(value) > 500 or any(ord(ch) < 32 for ch in value):
                    raise invalid_field(f"metadata.{field}", value, "must be at most 500 printable characters")
            self.metadata = meta
        elif kind == "chunk":
            if self.metadata is None:
                raise invalid_field("metadata", "", "must come first, before any chunk",
                                    reason="UPLOAD_PROTOCOL_VIOLATION")
            self.buffer += request.chunk
            self.hasher.update(request.chunk)
        else:
            raise invalid_field("kind", "", "each message must carry metadata or a chunk",
                                reason="UPLOAD_PROTOCOL_VIOLATION")

    def finish(self) -> tuple[bytes, str]:
        if self.metadata is None:
            raise invalid_field("metadata", "", "is required (the upload was empty)",
                                reason="UPLOAD_PROTOCOL_VIOLATION")
        if self.metadata.size and self.metadata.size != len(self.buffer):
            raise invalid_field(
                "metadata.size", self.metadata.size, f"does not match the {len(self.buffer)} bytes received",
                reason="UPLOAD_SIZE_MISMATCH",
            )
        return bytes(self.buffer), self.hasher.hexdigest()


def store(s: Session, data: bytes, sha256: str) -> bool:
    """Keep `data` under its hash; False when it was there already."""
    if s.scalar(select(FlowDataBlobRow.sha256).where(FlowDataBlobRow.sha256 == sha256)) is not None:
        return False
    insert = pg_insert if s.bind.dialect.name == "postgresql" else sqlite_insert
    result = s.execute(
        insert(FlowDataBlobRow)
        .values(sha256=sha256, size=len(data), data=data, created=utcnow())
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    return bool(result.rowcount)


def store_in_server_block(s: Session, data: bytes, sha256: str, block_id: str = "") -> tuple[bool, str | None]:
    """Keep `data` (False: kept already) for the server block `block_id`,
    else the registered server block, if any: (created, that block's id)."""
    created = store(s, data, sha256)
    if not block_id:
        server_block = storage_blocks.find(s, "server", {})
        block_id = server_block.id if server_block is not None else None
    return created, block_id or None


def load(s: Session, sha256: str) -> bytes:
    row = s.execute(select(FlowDataBlobRow.data, FlowDataBlobRow.size).where(FlowDataBlobRow.sha256 == sha256)).first()
    if row is None:
        raise NotFoundError(f"flow data {sha256} not found", reason="FLOW_DATA_NOT_FOUND")
    data = bytes(row.data)
    if len(data) != row.size or hashlib.sha256(data).hexdigest() != sha256:
        raise DataLossError(f"flow data {sha256} is corrupt (its content no longer matches its hash)",
                       reason="FLOW_DATA_CORRUPT")
    return data


def exists(s: Session, sha256: str) -> bool:
    return s.scalar(select(FlowDataBlobRow.sha256).where(FlowDataBlobRow.sha256 == sha256)) is not None


def flow_data_blob(block_id: str | None, sha256: str, flow_name: str, filename: str, *,
                   block_type: str = "server", block_config: dict | None = None) -> str:
    """The blob of a "blockstorage" FlowData pointing at a block (default: server storage)."""
    return json.dumps({
        "block_id": block_id,
        "block_type": block_type,
        "block_config": block_config or {},
        "key": sha256,
        "flow_name": flow_name,
        "filename": filename,
    })


def chunks(data: bytes, size: int = CHUNK):
    for i in range(0, len(data), size):
        yield data[i:i + size]
    if not data:
        yield b""
