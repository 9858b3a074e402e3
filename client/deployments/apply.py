"""Applying specs: one deployment per spec, created or updated, all or none;
and the dry run that says what applying would change.

Every spec is validated first (flows loaded, parameters checked against the
flow's signature, duplicate flow/deployment names refused, storage resolved);
then the deployments are created or updated one by one, and when the server
refuses one, what was done is undone. Progress is reported as events (the
classes below) to a `progress` callback; the CLI turns them into its lines.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Callable, Literal

from flowdeck.client import get_client
from flowdeck.deployments.diff import changed_fields, existing_fields
from flowdeck.deployments.errors import SpecError
from flowdeck.deployments.plan import Plan, prepare
from flowdeck.deployments.storage import ScriptStorage, StorageResolver
from flowdeck.exceptions import FlowdeckError, NotFoundError
from flowdeck.models import Deployment

if TYPE_CHECKING:  # pragma: no cover
    from flowdeck.deployments.spec import DeploymentSpec


@dataclasses.dataclass(frozen=True)
class CreatingDeployment:
    """Progress: the deployment `spec_name` of flow `flow_name` is next;
    `exists` when it is there already (so it is updated)."""

    spec_name: str
    flow_name: str
    exists: bool = False


@dataclasses.dataclass(frozen=True)
class StoringScript:
    """Progress: the flow script at `path` is written to `storage_label` (once per script and block)."""

    path: str
    storage_label: str


@dataclasses.dataclass(frozen=True)
class DeploymentApplied:
    """Progress: the deployment was created (`created`) or updated."""

    deployment: Deployment
    created: bool


@dataclasses.dataclass(frozen=True)
class PlannedChange:
    """What applying one spec would do; `changes` names the fields an update changes."""

    full_name: str
    flow_name: str
    action: Literal["create", "update", "unchanged"]
    changes: tuple[str, ...] = ()


Progress = Callable[[object], None]


def plan_deployments(specs: list["DeploymentSpec"], client=None) -> list[PlannedChange]:
    """The dry run: validate every spec and compare it with the deployment
    that exists. Nothing is written or registered."""
    client = client or get_client()
    out = []
    for plan, storage in _resolved(specs, StorageResolver(client, dry_run=True)):
        storage.store(plan, write=False)
        existing = _existing(client, plan.full_name)
        if existing is None:
            out.append(PlannedChange(plan.full_name, plan.flow.name, "create"))
            continue
        changes = tuple(changed_fields(plan, existing))
        out.append(PlannedChange(plan.full_name, plan.flow.name, "update" if changes else "unchanged", changes))
    return out


def create_deployments(specs: list["DeploymentSpec"], client=None, *,
                       progress: Progress | None = None) -> list[tuple[Deployment, bool]]:
    """Create or update a deployment per spec, all or none. Returns
    [(deployment, created)] in the order of `specs`. When one fails, what was
    done is undone (storage blocks it registered included) and no
    DeploymentApplied event has been reported."""
    progress = progress or (lambda event: None)
    client = client or get_client()
    resolve = StorageResolver(client, dry_run=False)
    done: list[tuple[Plan, Deployment, bool]] = []
    try:
        written: set[tuple[int, str]] = set()
        for plan, storage in _resolved(specs, resolve):
            try:
                plan.previous = _existing(client, plan.full_name)
                progress(CreatingDeployment(plan.spec.name, plan.flow.name, exists=plan.previous is not None))
                done.append(_apply(plan, storage, client, progress, written))
            except FlowdeckError as e:
                raise _relabelled(e, f"{plan.spec.label()}: {e.message}") from None
            except Exception as e:  # noqa: BLE001 - e.g. a storage write failure
                raise SpecError(f"{plan.spec.label()}: {type(e).__name__}: {e}") from None
    except FlowdeckError as e:
        raise _relabelled(e, e.message + _undo_note(client, done, resolve.created)) from None
    for _, dep, created in done:
        progress(DeploymentApplied(dep, created))
    return [(dep, created) for _, dep, created in done]


def _apply(plan: Plan, storage: ScriptStorage, client, progress: Progress,
           written: set[tuple[int, str]]) -> tuple[Plan, Deployment, bool]:
    """Store the plan's script (once per script and block) and create or update its deployment."""
    first = (id(storage), plan.script) not in written
    if first:
        progress(StoringScript(plan.script, storage.label))
    storage.store(plan, write=first)
    written.add((id(storage), plan.script))
    dep, created = client.create_deployment(plan.spec.name, **plan.fields())
    return plan, dep, created


def _relabelled(e: FlowdeckError, message: str) -> FlowdeckError:
    """`e` with another message, keeping its class, reason, metadata and field violations."""
    err = copy.copy(e)
    err.message = message
    err.args = (message,)
    return err


def _resolved(specs, resolve: StorageResolver) -> list[tuple[Plan, ScriptStorage]]:
    """Every spec planned and its storage resolved, before anything is created."""
    out = []
    for plan in prepare(specs):
        try:
            out.append((plan, resolve(plan.spec.flow_storage)))
        except FlowdeckError as e:
            raise SpecError(f"{plan.spec.label()}: {e.message}") from None
    return out


def _existing(client, full_name: str) -> Deployment | None:
    try:
        return client.get_deployment_by_name(full_name)
    except NotFoundError:
        return None


def _undo_note(client, done: list[tuple[Plan, Deployment, bool]], blocks: list[str]) -> str:
    """Delete what this run created and restore what it changed, then the
    storage blocks it registered; say so when all of it was undone."""
    ok = True
    for plan, dep, created in reversed(done):
        try:
            if created:
                client.delete_deployment(dep.id)
            elif plan.previous is not None:
                prev = plan.previous
                client.create_deployment(prev.name, flow_name=prev.flow_name, **existing_fields(prev))
        except FlowdeckError:
            ok = False
    for block_id in blocks:
        try:
            client.delete_storage_block(block_id)
        except FlowdeckError:
            ok = False  # e.g. another deployment took it up meanwhile: it stays, in use
    return "; no deployment was created or changed" if ok else ""
