"""`flowdeck deployment create | run | execute`."""
from __future__ import annotations

import json
import sys

from flowdeck.cli import output


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
        verb = "Updating" if event.exists else "Creating"
        lines = [f"{verb} deployment {event.spec_name!r} for flow {event.flow_name!r}..."]
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
        text, source = _params_text(args.params)
        try:
            loaded = json.loads(text)
        except ValueError as e:
            raise InvalidArgumentError(f"{source} is not valid JSON: {e}") from None
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


def _params_text(value: str) -> tuple[str, str]:
    """(the JSON, what to call it in an error): --params '{...}' or --params @file.json."""
    from flowdeck.exceptions import InvalidArgumentError

    if not value.startswith("@"):
        return value, "--params"
    path = value[1:]
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), f"--params file {path!r}"
    except OSError as e:
        raise InvalidArgumentError(f"cannot read --params file {path!r}: {e.strerror or e}") from None


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
    start = start_time(args)
    dep = client.get_deployment_by_name(args.name)
    overrides = parameter_overrides(args, dep.parameter_schema)
    flow_run = client.create_flow_run_from_deployment(deployment_id=dep.id, parameters=overrides,
                                                      expected_start_time=start)
    print(f"Created flow run {flow_run.name!r} ({flow_run.id}) for deployment {dep.full_name!r}.")
    when = f"scheduled for {output.when(flow_run.expected_start_time)}" if start else flow_run.state.type
    print(f"It is {when}; an agent serving a work queue that matches it will run it.")
    warning = queue_warning(client, flow_run)
    if warning:
        print(f"Warning: {warning}", file=sys.stderr)
    if args.watch:
        from flowdeck.cli.watch import watch

        return watch(client, flow_run)
    print(f"    flowdeck flow-run inspect {flow_run.id}")
    return 0


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def start_time(args):
    """The run's expected start from --start-in or --start-at; None: now."""
    import datetime as dt
    import re

    from flowdeck.exceptions import InvalidArgumentError

    if args.start_in:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", args.start_in.lower())
        if not parts or re.sub(r"[\d.\s]*[smhd]", "", args.start_in.lower()).strip():
            raise InvalidArgumentError(f"invalid --start-in {args.start_in!r}: a duration such as 90s, 10m, 2h, "
                                       "1d or 1h30m", field="start_in")
        seconds = sum(float(n) * DURATION_UNITS[u] for n, u in parts)
        return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    if args.start_at:
        try:
            at = dt.datetime.fromisoformat(args.start_at.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgumentError(f"invalid --start-at {args.start_at!r}: an ISO 8601 time such as "
                                       "2030-01-01T09:00 or 2030-01-01T09:00+02:00", field="start_at") from None
        return at if at.tzinfo else at.astimezone()
    return None


def queue_warning(client, flow_run) -> str:
    """Why no agent will pick the run up as things stand ("" when a queue that is not paused matches)."""
    from flowdeck.core.queue_match import run_matches

    matching = [q for q in client.list_work_queues(limit=None)
                if run_matches(filter_tags=q.filter.tags, filter_deployment_ids=q.filter.deployment_ids,
                               filter_runner_types=q.filter.flow_runner_types, deployment_id=flow_run.deployment_id,
                               tags=flow_run.tags, runner_type=flow_run.flow_runner.type)]
    if any(not q.is_paused for q in matching):
        return ""
    if matching:
        names = ", ".join(repr(q.name) for q in matching)
        return f"the only work queues that match this run are paused ({names}): flowdeck work-queue resume NAME"
    tags = " ".join(f"--tag {t}" for t in flow_run.tags)
    return ("no work queue matches this run, so no agent will pick it up (it turns Late); make one with: "
            f"flowdeck work-queue create NAME {tags}".rstrip())


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
