"""Storage blocks: where flow code is kept, found by id.

Every block stores bytes under content-addressed keys (the SHA-256 of the data),
so writing the same script twice stores it once and a key can never point
outside the block. A block refuses settings it does not have (a typo such as
`endpont_url` is an error naming it, never silently dropped). A store that
cannot be reached, written or read, or holds corrupt code, is a `StorageError`
(a FlowdeckError: one line from the CLI); a key that is not there is a
FileNotFoundError.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, ValidationError, field_validator

from flowdeck.core.s3 import NOT_FOUND_CODES, bucket_name_problem, clean_prefix, error_code, object_key, put_content
from flowdeck.exceptions import FailedPreconditionError, InvalidArgumentError, NotFoundError

KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    if not KEY_RE.match(key or ""):
        raise ValueError(f"invalid storage key {key!r}: must be a SHA-256 hex digest")
    return key


class StorageError(FailedPreconditionError):
    """Flow code could not be written to or read from a storage block."""

    reason = "STORAGE_ACCESS_FAILED"


class StorageBlock(BaseModel):
    """Base of the storage blocks. `block_type` and `config()` identify a block:
    two instances with equal type and config are the same block."""

    model_config = ConfigDict(extra="forbid")

    block_type: ClassVar[str] = ""
    # What the CLI calls it ("using S3 Storage").
    display_name: ClassVar[str] = "Storage"
    # Fields holding credentials: never in `config()`, flow data, logs or output.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise InvalidArgumentError(f"{type(self).__name__}: {_problem(type(self), e)}") from None

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


def _problem(cls: type[StorageBlock], e: ValidationError) -> str:
    """The first problem of a block's settings, naming the setting (never its value: it may be a secret)."""
    err = e.errors()[0]
    name = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    if err.get("type") == "extra_forbidden":
        close = difflib.get_close_matches(name, list(cls.model_fields), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"settings: {', '.join(cls.model_fields) or 'none'}"
        return f"{name}: unknown setting ({hint})"
    if err.get("type") == "missing":
        return f"{name}: is required"
    return f"{name}: {err.get('msg', 'is invalid').removeprefix('Value error, ')}"


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
        target = folder / key
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                tmp = folder / f".{key}.{os.getpid()}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, target)
        except OSError as e:
            raise StorageError(f"cannot write flow code to {folder}: {e.strerror or e}") from None
        return key

    def read(self, key: str) -> bytes:
        path = self.folder() / check_key(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"flow code {key} is not in local storage at {self.folder()}") from None
        except OSError as e:
            raise StorageError(f"cannot read flow code from {path}: {e.strerror or e}") from None
        if content_key(data) != key:
            raise StorageError(f"flow code {key} in {self.folder()} is corrupt (hash mismatch)")
        return data


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

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        problem = bucket_name_problem(value)
        if problem:
            raise ValueError(f"{value!r} is not a valid S3 bucket name: {problem}")
        return value

    def object_key(self, key: str) -> str:
        return object_key(self.prefix, check_key(key))

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
        try:
            put_content(self._client(), self.bucket, self.object_key(key), data)
        except (ClientError, BotoCoreError, ValueError) as e:
            raise StorageError(f"cannot write flow code to {self._where(key)}: {e}") from None
        self._known.add(key)
        return key

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        where = self._where(key)
        try:
            data = self._client().get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"].read()
        except ClientError as e:
            if error_code(e) in NOT_FOUND_CODES:
                raise FileNotFoundError(f"flow code {key} is not in {where}") from None
            raise StorageError(f"cannot read flow code from {where}: {e}") from None
        except (BotoCoreError, ValueError) as e:
            raise StorageError(f"cannot read flow code from {where}: {e}") from None
        if content_key(data) != key:
            raise StorageError(f"flow code at {where} is corrupt (hash mismatch)")
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
        out["prefix"] = clean_prefix(out["prefix"])
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
    """A block instance from its type and settings (masked values are ignored;
    an unknown setting is an InvalidArgumentError naming it)."""
    cls = BLOCK_TYPES.get(block_type)
    if cls is None:
        raise InvalidArgumentError(f"unknown storage block type {block_type!r} (known: {', '.join(BLOCK_TYPES)})")
    return cls(**_norm(config or {}))


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


def default_block(client: Any):
    """The block new deployments use when their spec names none: the server's
    default block and the server's record of it (a `flowdeck.models.StorageBlock`,
    secrets masked), else local file storage ($FLOWDECK_HOME/storage) and None."""
    try:
        registered = client.get_default_storage_block()
    except NotFoundError:
        return LocalStorageBlock(), None
    return block_from_document(registered.type, registered.config, client), registered
