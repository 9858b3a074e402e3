"""`flowdeck deployment create | run | execute`."""
from __future__ import annotations

import json
import sys


FILE_KINDS = {"python": "python script", "yaml": "yaml file"}


def create(args) -> int:
    from flowdeck.deployments import file_kind

    kind = FILE_KINDS[file_kind(args.path)]
    print(f"Loading deployment specifications from {kind} at {args.path!r}...", flush=True)
    from flowdeck.client import get_client
    from flowdeck.deployments import create_deployments, load_specs, plan_deployments

    specs = load_specs(args.path)
    client = get_client()
    if args.dry_run:
        for change in plan_deployments(specs, client):
            print(planned_line(change), flush=True)
        print(f"Dry run: {len(specs)} deployment spec{'s' if len(specs) != 1 else ''} valid; nothing was changed.")
        return 0
    create_deployments(specs, client, progress=print_progress)
    return 0


def planned_line(change) -> str:
    """One line of `deployment create --dry-run` (a PlannedChange)."""
    if change.action == "create":
        return f"Would create deployment {change.full_name!r} for flow {change.flow_name!r}."
    if change.action == "update":
        return f"Would update deployment {change.full_name!r}: {', '.join(change.changes)} would change."
    return f"Deployment {change.full_name!r} is unchanged."


def print_progress(event) -> None:
    """The lines `deployment create` prints as it goes (flowdeck.deployments' progress events)."""
    from flowdeck.deployments import CreatingDeployment, DeploymentApplied, StoringScript
    from flowdeck.flow_data import display_path

    if isinstance(event, CreatingDeployment):
        lines = [f"Creating deployment {event.spec_name!r} for flow {event.flow_name!r}..."]
    elif isinstance(event, StoringScript):
        lines = [f"Deploying flow script from {display_path(event.path)!r} using {event.storage_label}..."]
    elif isinstance(event, DeploymentApplied):
        name = event.deployment.full_name
        lines = [f"Created deployment {name!r}." if event.created else f"Updated deployment {name!r}.",
                 f"View your {'new' if event.created else 'updated'} deployment with:", "",
                 f"    flowdeck deployment inspect {name!r}"]
    else:
        return
    for line in lines:
        print(line, flush=True)


# -- parameters on the command line ---------------------------------------------------------

def read_value(schema: dict | None, name: str, raw: str):
    """A --param value read by the parameter's type in the deployment's schema:
    integer, number, boolean, JSON for arrays, objects and unions, the string
    otherwise; JSON-or-string when the schema does not know the parameter.
    What does not read as its type is sent as typed: the server refuses it
    and says why."""
    from flowdeck.core.schema_values import kind_of, properties, read

    prop = dict(properties(schema)).get(name)
    if prop is None:
        return read(raw, "json")
    return read(raw, *kind_of(prop, schema))


def parameter_overrides(args, schema: dict | None) -> dict:
    from flowdeck.exceptions import InvalidArgumentError

    values: dict = {}
    if args.params:
        try:
            loaded = json.loads(args.params)
        except ValueError as e:
            raise InvalidArgumentError(f"--params is not valid JSON: {e}") from None
        if not isinstance(loaded, dict):
            raise InvalidArgumentError("--params must be a JSON object, e.g. '{\"name\": \"Earth\"}'")
        values.update(loaded)
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgumentError(f"--param expects KEY=VALUE, got {item!r}")
        key = key.strip()
        values[key] = read_value(schema, key, raw)
    return values


def _checked(dep, flow, overrides: dict) -> dict:
    """Validate the deployment's parameters with the overrides by the flow's
    signature; return the overrides as the JSON the server stores (coerced by
    the flow's types)."""
    from flowdeck.engine import jsonable_parameters

    merged = {**dep.parameters, **overrides}
    validated = flow.validate_parameters(merged)
    return jsonable_parameters({k: validated[k] for k in overrides})


def run(args) -> int:
    """A run for an agent. Loads no flow code: the server checks the
    parameters against the deployment's parameter schema."""
    from flowdeck.client import get_client

    client = get_client()
    dep = client.get_deployment_by_name(args.name)
    overrides = parameter_overrides(args, dep.parameter_schema)
    flow_run = client.create_flow_run_from_deployment(deployment_id=dep.id, parameters=overrides)
    print(f"Created flow run {flow_run.name!r} ({flow_run.id}) for deployment {dep.full_name!r}.")
    print(f"It is {flow_run.state.type}; an agent serving a work queue that matches it will run it.")
    print(f"    flowdeck flow-run inspect {flow_run.id}")
    return 0


def execute(args) -> int:
    """Run the deployment's flow here: the one command that loads its code."""
    from flowdeck.client import get_client
    from flowdeck.exceptions import FlowdeckError
    from flowdeck.flow_data import load_flow

    client = get_client()
    dep = client.get_deployment_by_name(args.name)
    try:
        flow = load_flow(dep.flow_data, client)
    except FlowdeckError as e:
        raise type(e)(f"cannot load the flow of deployment {args.name!r}: {e.message}") from None
    overrides = _checked(dep, flow, parameter_overrides(args, dep.parameter_schema))
    from flowdeck.engine import execute_flow_run

    flow_run = client.create_flow_run_from_deployment(deployment_id=dep.id, parameters=overrides,
                                                      state="RUNNING")
    print(f"Executing flow run {flow_run.name!r} ({flow_run.id}) of deployment {dep.full_name!r}...", flush=True)
    state = execute_flow_run(client, flow_run, flow, set_running=False)
    sys.stdout.flush()
    detail = f": {state.message}" if state.message else ""
    print(f"Flow run {flow_run.name!r} finished in state {state.type}{detail}")
    return 0 if state.type == "COMPLETED" else 1
