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

from pydantic import BaseModel

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

    def config(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def write(self, data: bytes) -> str:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError


class LocalStorageBlock(StorageBlock):
    """A folder; default $FLOWDECK_HOME/storage."""

    block_type: ClassVar[str] = "local"
    path: str | None = None

    def folder(self) -> Path:
        if self.path:
            return Path(self.path).expanduser()
        home = Path(os.environ.get("FLOWDECK_HOME") or Path.home() / ".flowdeck").expanduser()
        return home / "storage"

    def write(self, data: bytes) -> str:
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
