"""Planning: each spec resolved to its flow, script and the deployment's fields,
before anything is written or sent."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowdeck.core.structs import jsonable
from flowdeck.deployments.errors import SpecError
from flowdeck.deployments.schema import parameter_schema
from flowdeck.exceptions import FlowdeckError
from flowdeck.flow_data import FlowLoadError, display_path, exec_script, flows_in, pick_flow
from flowdeck.flows import Flow, ParameterValidationError

if TYPE_CHECKING:  # pragma: no cover
    from flowdeck.deployments.spec import DeploymentSpec
    from flowdeck.models import Deployment, FlowData


class Plan:
    """A spec resolved: its flow, script and what the deployment will hold.
    `flow_data` is set once the script has a place in storage."""

    def __init__(self, spec: "DeploymentSpec", flow: Flow, script: str, parameters: dict, source_bytes: bytes):
        self.spec = spec
        self.flow = flow
        self.script = script
        self.parameters = parameters
        # What the server checks every run's parameters against.
        self.parameter_schema = parameter_schema(flow)
        self.source_bytes = source_bytes
        self.flow_data: "FlowData | None" = None
        # What the deployment was before this plan was applied (None: it did not exist).
        self.previous: "Deployment | None" = None

    @property
    def full_name(self) -> str:
        return f"{self.flow.name}/{self.spec.name}"

    def fields(self) -> dict[str, Any]:
        s = self.spec
        return dict(
            flow_name=self.flow.name,
            flow_data=self.flow_data,
            schedule=s.schedule,
            is_schedule_active=s.is_schedule_active,
            parameters=self.parameters,
            tags=list(s.tags),
            flow_runner=s.runner_settings(),
            description=s.description,
            catchup=s.catchup,
            max_lateness=s.max_lateness,
            parameter_schema=self.parameter_schema,
        )


class ScriptCache:
    """Scripts read and run during one plan, each once."""

    def __init__(self):
        self.namespaces: dict[str, list[Flow]] = {}
        self.sources: dict[str, bytes] = {}

    def source(self, path: str, label: str) -> bytes:
        if path not in self.sources:
            try:
                self.sources[path] = Path(path).read_bytes()
            except FileNotFoundError:
                raise SpecError(f"{label}: flow_location: {display_path(path)!r} not found") from None
            except OSError as e:
                raise SpecError(f"{label}: flow_location: cannot read {display_path(path)!r}: {e.strerror}") from None
        return self.sources[path]

    def flows(self, path: str, label: str) -> list[Flow]:
        if path not in self.namespaces:
            source = self.source(path, label)
            try:
                self.namespaces[path] = flows_in(exec_script(source, path))
            except FlowLoadError as e:
                raise SpecError(f"{label}: flow_location: {e.message}") from None
        return self.namespaces[path]


def resolve(spec: "DeploymentSpec", scripts: ScriptCache | None = None) -> Plan:
    """Find the spec's flow and validate its parameters."""
    scripts = scripts or ScriptCache()
    label = spec.label()
    location = spec.flow_location
    if not location:
        raise SpecError(f"{label}: cannot tell which script defines flow {spec.flow.name!r} "
                        "(it was not loaded from a file); give flow_location")
    if spec.flow is not None and spec._location_inferred:
        flow = spec.flow
        scripts.source(location, label)
    else:
        flows = scripts.flows(location, label)
        wanted = spec.flow.name if spec.flow is not None else spec.flow_name
        try:
            flow = pick_flow(flows, wanted, display_path(location), function_name=spec._flow_variable)
        except FlowdeckError as e:
            raise SpecError(f"{label}: {e.message}") from None
    try:
        checked = flow.validate_parameters(dict(spec.parameters), require_all=False, apply_defaults=False)
    except ParameterValidationError as e:
        raise SpecError(f"{label}: parameters: {e.message}") from None
    try:
        parameters = jsonable(checked)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{label}: parameters: cannot be stored as JSON: {e}") from None
    return Plan(spec, flow, location, parameters, scripts.source(location, label))


def prepare(specs: list["DeploymentSpec"]) -> list[Plan]:
    """Resolve every spec; refuse two specs for one flow/deployment name."""
    scripts = ScriptCache()
    plans = [resolve(s, scripts) for s in specs]
    seen: dict[str, Plan] = {}
    for plan in plans:
        other = seen.get(plan.full_name)
        if other is not None:
            raise SpecError(f"deployment {plan.full_name!r} is specified twice: by {other.spec.source or 'a spec'} "
                            f"and by {plan.spec.source or 'another spec'}")
        seen[plan.full_name] = plan
    return plans
