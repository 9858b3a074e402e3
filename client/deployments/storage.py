"""Where a planned deployment's flow script is kept: the storage block a
spec's `flow_storage` names, and the "blockstorage" FlowData pointing at it.

`flow_storage` is one of
- None: the server's default block, else local file storage;
- a block object (`flowdeck.blocks.storage`) or its YAML mapping
  {"type": "s3", "bucket": ...}: registered with the server (an equal type
  and config is the block already registered, so repeated deploys make one);
- a block id: that block. The server never returns secrets, so writing uses
  the block's public config plus credentials from this environment.
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
    """A block flow scripts are written to, and its server id (None: a block
    the server does not know, i.e. the default local one)."""

    def __init__(self, block: StorageBlock, block_id: str | None):
        self.block = block
        self.block_id = block_id

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
        if write:
            key = self.block.write(data, flow_name=plan.flow.name, filename=os.path.basename(plan.script))
        else:
            key = content_key(data)
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
        except ValueError as e:
            raise InvalidArgumentError(f"invalid flow_storage: {e}") from None
    if isinstance(value, LocalStorageBlock) and value.path:
        value = LocalStorageBlock(path=str(Path(value.path).expanduser().resolve()))
    return value


def resolve_flow_storage(value: Any, client, *, dry_run: bool = False) -> tuple[StorageBlock, str | None]:
    """What a spec's flow_storage means: (the block to write to, its server id)."""
    if value is None:
        return default_block(client)
    if isinstance(value, str):
        try:
            block_id = str(uuid.UUID(value.strip()))
        except ValueError:
            raise InvalidArgumentError(
                f"invalid flow_storage {value!r}: must be a storage block or the id of one") from None
        found = client.get_storage_block(block_id)
        return block_from_document(found.type, found.config, client), found.id
    if isinstance(value, (dict, StorageBlock)):
        block = bind_client(spec_block(value), client)
        if dry_run:
            return block, _registered_id(client, block)
        return block, client.create_storage_block(block).id
    raise InvalidArgumentError(
        f"invalid flow_storage of type {type(value).__name__}: must be a storage block or the id of one")


class StorageResolver:
    """flow_storage values -> ScriptStorage, each distinct value once (a spec
    file often names one block for many deployments)."""

    def __init__(self, client, *, dry_run: bool):
        self.client = client
        self.dry_run = dry_run
        self._known: dict[str, ScriptStorage] = {}

    def __call__(self, value: Any) -> ScriptStorage:
        key = self._key(value)
        if key not in self._known:
            self._known[key] = ScriptStorage(*resolve_flow_storage(value, self.client, dry_run=self.dry_run))
        return self._known[key]

    @staticmethod
    def _key(value: Any) -> str:
        if isinstance(value, StorageBlock):
            value = [value.block_type, value.config(include_secrets=True)]
        return json.dumps(value, sort_keys=True, default=str)


def _registered_id(client, block: StorageBlock) -> str | None:
    """The id of a registered block equal to `block` (dry runs), if any."""
    want = {k: v for k, v in jsonable(block.public_config()).items() if v is not None}
    try:
        registered: list[RegisteredBlock] = client.list_storage_blocks(limit=None)
    except FlowdeckError:
        return None
    for known in registered:
        have = {k: v for k, v in known.config.items() if v not in (None, MASK)}
        if known.type == block.block_type and all(have.get(k) == v for k, v in want.items()):
            return known.id
    return None
