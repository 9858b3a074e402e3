"""Deployment specifications: `DeploymentSpec`, spec files and applying them.

    from flowdeck.deployments import DeploymentSpec

    DeploymentSpec(flow=hello_world, name="hello-world-daily")
    DeploymentSpec(flow_location="./flow.py", name="weekly", schedule={"interval": 604800})

`load_specs(path)` returns every spec a .py or .yaml file makes;
`create_deployments(specs, client)` creates or updates their deployments, all
or none; `plan_deployments(specs, client)` is the dry run. Each deployment
carries `parameter_schema(flow)`, the JSON Schema the server checks every
run's parameters against.

Modules: `spec` (the spec model), `loaders` (spec files), `plan` (specs
resolved to flows and scripts), `schema` (a flow's parameter schema),
`storage` (where scripts are kept), `diff` (dry-run comparison), `apply`
(create with undo, and the progress events).
"""
from flowdeck.deployments.apply import (
    CreatingDeployment,
    DeploymentApplied,
    PlannedChange,
    StoringScript,
    create_deployments,
    plan_deployments,
)
from flowdeck.deployments.errors import SpecError
from flowdeck.deployments.loaders import file_kind, load_specs
from flowdeck.deployments.schema import parameter_schema
from flowdeck.deployments.spec import DeploymentSpec
from flowdeck.flow_data import collecting

__all__ = [
    "CreatingDeployment", "DeploymentApplied", "DeploymentSpec", "PlannedChange", "SpecError", "StoringScript",
    "collecting", "create_deployments", "file_kind", "load_specs", "parameter_schema", "plan_deployments",
]
