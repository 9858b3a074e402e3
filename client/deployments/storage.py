"""Where a planned deployment's flow script is kept: the storage block a
spec's `flow_storage` names, and the "blockstorage" FlowData pointing at it.

`flow_storage` is one of
- None: the server's default block, else local file storage;
- a block object (`flowdeck.blocks.storage`) or its YAML mapping
  {"type": "s3", "bucket": ...}: registered with the server (an equal type
  and config is the block already registered, so repeated deploys make one);
- a block id: that block.
A block whose credentials the server keeps (an S3 block registered with its
keys) is written by the server (UploadFlowData with the block's id): the
caller needs no keys, and the server never hands them out. Other blocks are
written here, with this environment's credentials.
A dry run registers nothing: a block object is matched to an equal
registered block, if there is one.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from flowdeck.blocks.storage import (MASK, LocalStorageBlock, StorageBlock, bind_client, block_from_config,
                                     block_from_document, content_key, default_block)
from flowdeck.core.structs import jsonable
from flowdeck.deployments.plan import Plan
from flowdeck.exceptions import FlowdeckError, InvalidArgumentError
from flowdeck.flow_data import blockstorage_flow_data
from flowdeck.models import StorageBlock as RegisteredBlock


class ScriptStorage:
    """A block flow scripts are written to, and what the server knows of it
    (None: a block it does not know, i.e. the default local one)."""

    def __init__(self, block: StorageBlock, registered: RegisteredBlock | None, client=None):
        self.block = block
        self.registered = registered
        self.client = client

    @property
    def block_id(self) -> str | None:
        return self.registered.id if self.registered is not None else None

    @property
    def written_by_server(self) -> bool:
        """The server keeps the block's credentials (they come back masked): it writes."""
        return self.registered is not None and MASK in self.registered.config.values()

    @property
    def label(self) -> str:
        """What the block is called, e.g. "File Storage"."""
        return self.block.display_name

    def blob_config(self) -> dict | None:
        """What the FlowData keeps of the block's config: a local block's
        folder; other blocks' public settings (never secrets)."""
        if isinstance(self.block, LocalStorageBlock):
            return {"path": str(self.block.folder())}
        return jsonable(self.block.public_config())

    def store(self, plan: Plan, *, write: bool) -> None:
        """Point the plan's flow_data at its script in this block, writing the
        script unless `write` is false (its key is the content hash either way)."""
        data = plan.source_bytes
        filename = os.path.basename(plan.script)
        if not write:
            key = content_key(data)
        elif self.written_by_server:
            _, key = self.client.upload_flow_data(data, flow_name=plan.flow.name, filename=filename,
                                                  storage_block_id=self.block_id)
        else:
            key = self.block.write(data, flow_name=plan.flow.name, filename=filename)
        plan.flow_data = blockstorage_flow_data(
            key=key, flow_name=plan.flow.name, filename=plan.script, block_id=self.block_id,
            block_type=self.block.block_type, block_config=self.blob_config())


def spec_block(value: StorageBlock | dict) -> StorageBlock:
    """The block a flow_storage object or YAML mapping describes; a local
    block's folder made absolute."""
    if isinstance(value, dict):
        rest = dict(value)
        block_type = rest.pop("type", None) or rest.pop("block_type", None)
        try:
            value = block_from_config(block_type or "", rest)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"invalid flow_storage: {e.message}") from None
    if isinstance(value, LocalStorageBlock) and value.path:
        value = LocalStorageBlock(path=str(Path(value.path).expanduser().resolve()))
    return value


def resolve_flow_storage(value: Any, client, *, dry_run: bool = False) -> ScriptStorage:
    """What a spec's flow_storage means: the block to write to and what the
    server knows of it. A block object is registered (found, in a dry run)."""
    if value is None:
        block, registered = default_block(client)
        return ScriptStorage(block, registered, client)
    if isinstance(value, str):
        try:
            block_id = str(uuid.UUID(value.strip()))
        except ValueError:
            raise InvalidArgumentError(
                f"invalid flow_storage {value!r}: must be a storage block or the id of one") from None
        found = client.get_storage_block(block_id)
        return ScriptStorage(block_from_document(found.type, found.config, client), found, client)
    if isinstance(value, (dict, StorageBlock)):
        block = bind_client(spec_block(value), client)
        registered = _registered(client, block) if dry_run else client.create_storage_block(block)
        return ScriptStorage(block, registered, client)
    raise InvalidArgumentError(
        f"invalid flow_storage of type {type(value).__name__}: must be a storage block or the id of one")


class StorageResolver:
    """flow_storage values -> ScriptStorage, each distinct value once (a spec
    file often names one block for many deployments). `created` lists the
    blocks it registered that did not exist before (removed again when
    applying the specs fails)."""

    def __init__(self, client, *, dry_run: bool):
        self.client = client
        self.dry_run = dry_run
        self.created: list[str] = []
        self._known: dict[str, ScriptStorage] = {}
        self._ids_before: set[str] | None = None

    def __call__(self, value: Any) -> ScriptStorage:
        key = self._key(value)
        if key not in self._known:
            registers = not self.dry_run and isinstance(value, (dict, StorageBlock))
            if registers and self._ids_before is None:
                self._ids_before = {b.id for b in self.client.list_storage_blocks(limit=None)}
            storage = resolve_flow_storage(value, self.client, dry_run=self.dry_run)
            if registers and storage.block_id not in self._ids_before:
                self.created.append(storage.block_id)
            self._known[key] = storage
        return self._known[key]

    @staticmethod
    def _key(value: Any) -> str:
        if isinstance(value, StorageBlock):
            value = [value.block_type, value.config(include_secrets=True)]
        return json.dumps(value, sort_keys=True, default=str)


def _registered(client, block: StorageBlock) -> RegisteredBlock | None:
    """A registered block equal to `block` (dry runs), if any."""
    want = {k: v for k, v in jsonable(block.public_config()).items() if v is not None}
    try:
        registered: list[RegisteredBlock] = client.list_storage_blocks(limit=None)
    except FlowdeckError:
        return None
    for known in registered:
        have = {k: v for k, v in known.config.items() if v not in (None, MASK)}
        if known.type == block.block_type and all(have.get(k) == v for k, v in want.items()):
            return known
    return None
