"""Storage blocks: where flow code is kept, found by id.

Every block stores bytes under content-addressed keys (the SHA-256 of the data),
so writing the same script twice stores it once and a key can never point
outside the block.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, PrivateAttr, SecretStr

KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    if not KEY_RE.match(key or ""):
        raise ValueError(f"invalid storage key {key!r}: must be a SHA-256 hex digest")
    return key


class StorageBlock(BaseModel):
    """Base of the storage blocks. `block_type` and `config()` identify a block:
    two instances with equal type and config are the same block."""

    block_type: ClassVar[str] = ""
    # What the CLI calls it ("using S3 Storage").
    display_name: ClassVar[str] = "Storage"
    # Fields holding credentials: never in `config()`, flow data, logs or output.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def config(self, include_secrets: bool = False) -> dict[str, Any]:
        """The block's settings. Without `include_secrets` (the default) secret
        fields are left out: this is what may go into a deployment's flow data.
        Registering a block (CreateStorageBlock) sends them all."""
        out = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in self.secret_fields:
                if not include_secrets:
                    continue
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
            out[name] = value
        return out

    def public_config(self) -> dict[str, Any]:
        return self.config(include_secrets=False)

    def write(self, data: bytes, *, flow_name: str = "", filename: str = "") -> str:
        """Store `data`; returns its key. `flow_name` and `filename` describe it
        (blocks that keep metadata use them)."""
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError


class LocalStorageBlock(StorageBlock):
    """A folder; default $FLOWDECK_HOME/storage."""

    block_type: ClassVar[str] = "local"
    display_name: ClassVar[str] = "File Storage"
    path: str | None = None

    def folder(self) -> Path:
        if self.path:
            return Path(self.path).expanduser()
        home = Path(os.environ.get("FLOWDECK_HOME") or Path.home() / ".flowdeck").expanduser()
        return home / "storage"

    def write(self, data: bytes, *, flow_name: str = "", filename: str = "") -> str:
        key = content_key(data)
        folder = self.folder()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / key
        if not target.exists():
            tmp = folder / f".{key}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return key

    def read(self, key: str) -> bytes:
        path = self.folder() / check_key(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"flow code {key} is not in local storage at {self.folder()}") from None
        if content_key(data) != key:
            raise ValueError(f"flow code {key} in {self.folder()} is corrupt (hash mismatch)")
        return data


class StorageError(Exception):
    """Flow code could not be written to or read from a storage block."""


def _s3_prefix(value: str | None) -> str:
    return (value or "").strip("/")


class S3StorageBlock(StorageBlock):
    """An S3 bucket (or any S3-compatible endpoint), through boto3.

    With no keys, boto3's usual credential chain applies (environment variables,
    ~/.aws, instance roles), or the credentials an agent received in a run's lease
    (see `block_from_document`). Keys are `SecretStr`: repr() and str() hide them.
    """

    block_type: ClassVar[str] = "s3"
    display_name: ClassVar[str] = "S3 Storage"
    secret_fields: ClassVar[tuple[str, ...]] = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")

    bucket: str
    prefix: str = ""
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    region_name: str | None = None
    endpoint_url: str | None = None

    _s3: Any = PrivateAttr(default=None)
    # Keys this instance wrote or found: content-addressed, so they stay valid.
    _known: set = PrivateAttr(default_factory=set)

    def __init__(self, bucket: str | None = None, **data: Any):
        if bucket is not None:
            data["bucket"] = bucket
        super().__init__(**data)

    def object_key(self, key: str) -> str:
        prefix = _s3_prefix(self.prefix)
        return f"{prefix}/{check_key(key)}" if prefix else check_key(key)

    def _client(self):
        if self._s3 is None:
            import boto3

            def secret(v):
                return v.get_secret_value() if v is not None else None

            self._s3 = boto3.session.Session().client(
                "s3",
                region_name=self.region_name or None,
                endpoint_url=self.endpoint_url or None,
                aws_access_key_id=secret(self.aws_access_key_id),
                aws_secret_access_key=secret(self.aws_secret_access_key),
                aws_session_token=secret(self.aws_session_token),
            )
        return self._s3

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def write(self, data: bytes, *, flow_name: str = "", filename: str = "") -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = content_key(data)
        if key in self._known:
            return key
        s3 = self._client()
        try:
            try:
                s3.head_object(Bucket=self.bucket, Key=self.object_key(key))
                self._known.add(key)
                return key  # content-addressed: already there
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            s3.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot write flow code to {self._where(key)}: {e}") from None
        self._known.add(key)
        return key

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            data = self._client().get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"flow code {key} is not in {self._where(key)}") from None
            raise StorageError(f"cannot read flow code from {self._where(key)}: {e}") from None
        except BotoCoreError as e:
            raise StorageError(f"cannot read flow code from {self._where(key)}: {e}") from None
        if content_key(data) != key:
            raise StorageError(f"flow code at {self._where(key)} is corrupt (hash mismatch)")
        return data


class ServerStorageBlock(StorageBlock):
    """The flowdeck server keeps the flow code itself (FlowDataService): the
    easiest choice when agents run elsewhere and there is no bucket. Uses the
    client from `flowdeck.client.get_client()` unless one is given."""

    block_type: ClassVar[str] = "server"
    display_name: ClassVar[str] = "Server Storage"

    _client: Any = PrivateAttr(default=None)

    def __init__(self, client: Any = None, **data: Any):
        super().__init__(**data)
        self._client = client

    def client(self):
        if self._client is None:
            from flowdeck.client import get_client

            self._client = get_client()
        return self._client

    def write(self, data: bytes, *, flow_name: str = "", filename: str = "") -> str:
        _, sha256 = self.client().upload_flow_data(data, flow_name=flow_name, filename=filename)
        return sha256

    def read(self, key: str) -> bytes:
        from flowdeck.exceptions import NotFoundError

        try:
            return self.client().download_flow_data(check_key(key))
        except NotFoundError:
            raise FileNotFoundError(f"flow code {key} is not stored on the flowdeck server") from None


BLOCK_TYPES: dict[str, type[StorageBlock]] = {
    "local": LocalStorageBlock,
    "s3": S3StorageBlock,
    "server": ServerStorageBlock,
}
MASK = "********"
# How an agent hands a run process the storage config of the run's lease (with
# secrets): JSON {"type": "s3", "config": {...}}. Read by `block_from_document`.
LEASED_CONFIG_ENV = "FLOWDECK_STORAGE_CONFIG_JSON"


def _norm(config: dict) -> dict:
    out = {k: v for k, v in (config or {}).items() if v not in (None, "", MASK)}
    if "prefix" in out:
        out["prefix"] = _s3_prefix(out["prefix"])
        if not out["prefix"]:
            del out["prefix"]
    return out


def _leased_config(block_type: str, config: dict) -> dict:
    """The config handed over by the agent (FLOWDECK_STORAGE_CONFIG_JSON), if it
    is for this very block: same type and no public setting that differs."""
    import json

    raw = os.environ.get(LEASED_CONFIG_ENV)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    if isinstance(doc.get("config"), dict):
        if doc.get("type") not in (None, "", block_type):
            return {}
        leased = _norm(doc["config"])
    else:
        leased = _norm(doc)
    secrets = BLOCK_TYPES[block_type].secret_fields
    for k, v in config.items():
        if k not in secrets and k in leased and leased[k] != v:
            return {}
    return leased


def block_from_config(block_type: str, config: dict | None = None) -> StorageBlock:
    """A block instance from its type and settings (masked values are ignored)."""
    cls = BLOCK_TYPES.get(block_type)
    if cls is None:
        raise ValueError(f"unknown storage block type {block_type!r} (known: {', '.join(BLOCK_TYPES)})")
    fields = cls.model_fields
    return cls(**{k: v for k, v in _norm(config or {}).items() if k in fields})


def block_from_document(block_type: str, block_config: dict | None = None, client: Any = None) -> StorageBlock:
    """The block a "blockstorage" FlowData names, ready to `read(key)`.

    `block_config` is the public config kept in the flow data (no secrets).
    Missing settings (an S3 block's keys) come from the environment variable
    FLOWDECK_STORAGE_CONFIG_JSON, which an agent sets for the run process from
    the run's lease as JSON {"type": ..., "config": {...}}; it is used only when
    its type and public settings match. Otherwise boto3's credential chain applies.
    A server block reads through `client` (default: `flowdeck.client.get_client()`).
    """
    if block_type not in BLOCK_TYPES:
        raise ValueError(f"unknown storage block type {block_type!r} (known: {', '.join(BLOCK_TYPES)})")
    config = _norm(block_config or {})
    merged = {**_leased_config(block_type, config), **config}
    return bind_client(block_from_config(block_type, merged), client)


def bind_client(block: StorageBlock, client: Any) -> StorageBlock:
    """A server block that has no client yet reads and writes through `client`."""
    if client is not None and isinstance(block, ServerStorageBlock) and block._client is None:
        block._client = client
    return block


def default_block(client: Any) -> tuple[StorageBlock, str | None]:
    """The block new deployments use when their spec names none: the server's
    default block and its id, else local file storage ($FLOWDECK_HOME/storage)
    with id None."""
    from flowdeck.exceptions import NotFoundError

    try:
        registered = client.get_default_storage_block()
    except NotFoundError:
        return LocalStorageBlock(), None
    return block_from_document(registered.type, registered.config, client), registered.id
