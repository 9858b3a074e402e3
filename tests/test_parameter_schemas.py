"""Parameter schemas (issue 12): the SDK writes a flow's JSON Schema, the
deployment carries it, and the server checks every run's parameters against
it (INVALID_ARGUMENT naming each bad parameter, nothing created), on every
database backend, through the real client and server."""
from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from flowdeck import exceptions as exc
from flowdeck import flow
from flowdeck.deployments import DeploymentSpec, create_deployments, parameter_schema
from flowdeck.engine import execute_flow_run
from flowdeck.flow_data import load_flow

RICH = textwrap.dedent('''
    import datetime as dt
    import enum
    from typing import Literal, Optional

    from pydantic import BaseModel

    from flowdeck import flow, get_run_logger


    class Color(enum.Enum):
        RED = "red"
        GREEN = "green"


    class Box(BaseModel):
        size: int
        label: str = "box"


    @flow
    def rich(when: dt.datetime, box: Box, count: int, color: Color = Color.RED,
             mode: Literal["fast", "slow"] = "fast", sizes: list[int] = [1, 2], limit: Optional[int] = None,
             note="plain"):
        """A flow with rich parameters.

        Args:
            when: When it is due.
            box: What goes in,
                on two lines.
            count (int): How many times.
        """
        get_run_logger().info("received %r", (when, box, count, color, mode, sizes, limit, note))
        return count
''')


@pytest.fixture
def rich_deployment(client, flowdeck_home, tmp_path):
    """The `rich` flow deployed from a script, as `deployment create` does it."""
    script = tmp_path / "rich.py"
    script.write_text(RICH)
    spec = DeploymentSpec(name="d", flow_location=str(script), flow_name="rich", parameters={"count": 2})
    (dep, created), = create_deployments([spec], client)
    assert created
    return dep


def refused(call, *fields: str) -> exc.InvalidArgumentError:
    with pytest.raises(exc.InvalidArgumentError) as e:
        call()
    assert sorted(v.field for v in e.value.violations) == sorted(fields), e.value.violations
    for field in fields:
        assert field in e.value.message
    return e.value


# -- the schema the SDK writes ------------------------------------------------------

def test_rich_signature_schema(rich_deployment):
    schema = rich_deployment.parameter_schema
    props = schema["properties"]
    assert sorted(props, key=lambda n: props[n]["position"]) == [
        "when", "box", "count", "color", "mode", "sizes", "limit", "note"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["when", "box", "count"]
    assert props["when"] == {"type": "string", "format": "date-time", "title": "When", "position": 0,
                             "description": "When it is due."}
    assert props["box"]["$ref"] == "#/$defs/Box" and props["box"]["description"] == "What goes in, on two lines."
    assert schema["$defs"]["Box"]["required"] == ["size"]
    assert props["count"]["type"] == "integer" and props["count"]["description"] == "How many times."
    assert schema["$defs"]["Color"]["enum"] == ["red", "green"] and props["color"]["default"] == "red"
    assert props["mode"]["enum"] == ["fast", "slow"] and props["mode"]["default"] == "fast"
    assert props["sizes"] == {"type": "array", "items": {"type": "integer"}, "default": [1, 2], "title": "Sizes",
                              "position": 5}
    assert props["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}] and props["limit"]["default"] is None
    assert "type" not in props["note"] and props["note"]["default"] == "plain"


def test_kwargs_allow_unknown_parameters_and_odd_names_work():
    @flow
    def loose(json: int, model_config: str = "x", **rest):
        pass

    schema = parameter_schema(loose)
    assert schema["additionalProperties"] is True
    assert schema["properties"]["json"]["type"] == "integer" and schema["required"] == ["json"]
    assert schema["properties"]["model_config"]["default"] == "x"


def test_an_annotation_pydantic_cannot_describe_accepts_anything():
    class Handle:
        pass

    @flow
    def odd(handle: Handle, n: int = 1):
        pass

    schema = parameter_schema(odd)
    assert "type" not in schema["properties"]["handle"] and schema["properties"]["n"]["type"] == "integer"
    assert schema["required"] == ["handle"]


# -- the server checks every run -------------------------------------------------------

def test_rich_values_round_trip_to_the_flow(rich_deployment, client):
    dep = rich_deployment
    good = {"when": "2024-05-06T07:08:00+00:00", "box": {"size": 3, "label": "big"}, "color": "green",
            "mode": "slow", "sizes": [4, 5], "limit": None}
    run = client.create_flow_run_from_deployment(deployment_id=dep.id, parameters=good)
    assert run.parameters == {**good, "count": 2}  # the deployment's default filled in
    # The Python client sends datetimes, enums and models as JSON.
    import enum

    Shade = enum.Enum("Shade", {"GREEN": "green"})
    also = client.create_flow_run_from_deployment(
        deployment_id=dep.id, parameters={"when": dt.datetime(2024, 5, 6, tzinfo=dt.timezone.utc),
                                          "box": {"size": 1}, "color": Shade.GREEN, "count": 9})
    assert also.parameters["when"] == "2024-05-06T00:00:00Z" and also.parameters["color"] == "green"

    state = execute_flow_run(client, run, load_flow(dep.flow_data, client))
    assert state.type == "COMPLETED", state
    (received,) = [r.message for r in client.list_logs(run.id, limit=None) if r.message.startswith("received")]
    assert "datetime.datetime(2024, 5, 6, 7, 8, tzinfo=" in received
    assert "Box(size=3, label='big')" in received and "<Color.GREEN: 'green'>" in received
    assert ", 2, " in received and "'slow', [4, 5], None, 'plain')" in received


@pytest.mark.parametrize("bad, fields", [
    ({"count": "abc"}, ["parameters.count"]),
    ({"when": "not a date"}, ["parameters.when"]),
    ({"box": {"size": "x"}}, ["parameters.box.size"]),
    ({"box": {"label": "no size"}}, ["parameters.box"]),
    ({"color": "purple", "mode": "medium"}, ["parameters.color", "parameters.mode"]),
    ({"sizes": [1, "a"]}, ["parameters.sizes[1]"]),
    ({"limit": "x"}, ["parameters.limit"]),
    ({"colour": "red", "zz": 1}, ["parameters.colour", "parameters.zz"]),
])
def test_invalid_values_are_refused_and_nothing_is_created(rich_deployment, client, bad, fields):
    base = {"when": "2024-05-06T07:08:00Z", "box": {"size": 1}}
    refused(lambda: client.create_flow_run_from_deployment(deployment_id=rich_deployment.id,
                                                           parameters={**base, **bad}), *fields)
    assert client.list_flow_runs(deployment_id=rich_deployment.id) == []


def test_wrong_type_missing_and_unknown_parameters(rich_deployment, client):
    e = refused(lambda: client.create_flow_run_from_deployment(
        deployment_name="rich/d", parameters={"count": "abc", "colour": "red", "box": {"size": 1}}),
        "parameters.count", "parameters.colour", "parameters.when")
    assert e.reason == "INVALID_PARAMETERS"
    by_field = {v.field: v.description for v in e.violations}
    assert by_field["parameters.count"] == "'abc' is not of type 'integer'"
    assert by_field["parameters.when"] == "is required"
    assert by_field["parameters.colour"].startswith("is not a parameter of this flow (parameters: box, color")
    assert e.message.startswith("parameters.colour: is not a parameter")
    refused(lambda: client.create_flow_run_from_deployment(deployment_id=rich_deployment.id,
                                                           parameters={"limit": "x", "when": "2024-01-01"}),
            "parameters.box", "parameters.limit")
    assert client.list_flow_runs(deployment_id=rich_deployment.id) == []
    # A date alone reads as a datetime (as the flow reads it); an integral float is an integer.
    ok = client.create_flow_run_from_deployment(deployment_id=rich_deployment.id,
                                                parameters={"when": "2024-01-01", "box": {"size": 1.0}})
    assert ok.parameters["box"] == {"size": 1}


def test_create_flow_run_for_a_deployment_is_checked_over_its_defaults(rich_deployment, client):
    refused(lambda: client.create_flow_run(flow_name="rich", deployment_id=rich_deployment.id,
                                           parameters={"count": "x"}),
            "flow_run.parameters.count", "flow_run.parameters.when", "flow_run.parameters.box")
    run = client.create_flow_run(flow_name="rich", deployment_id=rich_deployment.id,
                                 parameters={"when": "2024-01-01T00:00:00Z", "box": {"size": 2}})
    assert run.parameters == {"when": "2024-01-01T00:00:00Z", "box": {"size": 2}, "count": 2}
    # Without a deployment nothing is checked (there is no schema).
    assert client.create_flow_run(flow_name="rich", parameters={"count": "x"}).parameters == {"count": "x"}


# -- the deployment's own defaults and schema ----------------------------------------

SCHEMA = {"type": "object", "properties": {"count": {"type": "integer"}, "name": {"type": "string"}},
          "required": ["count"], "additionalProperties": False}


def test_defaults_are_checked_at_create_and_update(client):
    refused(lambda: client.create_deployment("d", flow_name="f", parameters={"count": "x", "nope": 1},
                                             parameter_schema=SCHEMA),
            "deployment.parameters.count", "deployment.parameters.nope")
    assert client.list_deployments() == []
    # A required parameter may be left to each run.
    dep, _ = client.create_deployment("d", flow_name="f", parameters={"name": "x"}, parameter_schema=SCHEMA)
    assert dep.parameter_schema == SCHEMA
    refused(lambda: client.update_deployment(dep.id, parameters={"count": 1.5}), "deployment.parameters.count")
    refused(lambda: client.update_deployment(dep.id, parameter_schema={**SCHEMA, "properties": {}}),
            "deployment.parameters.name")
    assert client.get_deployment(dep.id).parameters == {"name": "x"}
    assert client.get_deployment(dep.id).parameter_schema == SCHEMA
    # Dropping the schema drops the checks.
    assert client.update_deployment(dep.id, parameter_schema=None).parameter_schema is None
    assert client.create_flow_run_from_deployment(deployment_id=dep.id, parameters={"zz": 1}).parameters == {
        "name": "x", "zz": 1}


def test_a_scheduled_deployment_needs_every_required_parameter_in_its_defaults(client):
    """Scheduled runs get the deployment's parameters only: a required one
    without a default would fail every run, so the schedule is refused."""
    e = refused(lambda: client.create_deployment("d", flow_name="f", parameters={"name": "x"},
                                                 parameter_schema=SCHEMA, schedule={"interval": 3600}),
                "deployment.parameters.count")
    assert "schedule" in e.violations[0].description
    assert client.list_deployments() == [] and client.list_flow_runs() == []
    dep, _ = client.create_deployment("d", flow_name="f", parameters={"name": "x"}, parameter_schema=SCHEMA)
    refused(lambda: client.update_deployment(dep.id, schedule={"interval": 3600}), "deployment.parameters.count")
    assert client.get_deployment(dep.id).schedule is None
    scheduled = client.update_deployment(dep.id, schedule={"interval": 3600}, parameters={"count": 2})
    assert scheduled.schedule is not None and scheduled.next_run_time is not None


@pytest.mark.parametrize("schema, field", [
    ({"type": "string"}, "deployment.parameter_schema.type"),
    ({"properties": {}}, "deployment.parameter_schema.type"),
    ({"type": "object", "properties": {"a": {"type": "integr"}}}, "deployment.parameter_schema.properties.a.type"),
    ({"type": "object", "required": "a"}, "deployment.parameter_schema.required"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}},
     "deployment.parameter_schema.properties.a.$ref"),
    ({"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:1/schema.json"}}},
     "deployment.parameter_schema.properties.a.$ref"),
])
def test_a_malformed_schema_is_refused(client, schema, field):
    e = refused(lambda: client.create_deployment("d", flow_name="f", parameter_schema=schema), field)
    assert e.reason == "INVALID_PARAMETER_SCHEMA"
    assert client.list_deployments() == []


def test_a_deployment_without_a_schema_is_not_checked(client):
    dep, _ = client.create_deployment("d", flow_name="f", parameters={"anything": [1, {"x": None}]})
    assert dep.parameter_schema is None
    run = client.create_flow_run_from_deployment(deployment_id=dep.id, parameters={"count": "abc"})
    assert run.parameters == {"anything": [1, {"x": None}], "count": "abc"}


def test_compiled_validators_are_cached_by_schema():
    from flowdeck.server import parameter_schemas

    same = {"required": ["count"], "type": "object", "properties": {"count": {"type": "integer"}}}
    assert parameter_schemas.validator(SCHEMA) is parameter_schemas.validator(dict(SCHEMA))
    assert parameter_schemas.validator(same) is not parameter_schemas.validator(SCHEMA)
