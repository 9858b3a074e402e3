"""The Quick Run form from a JSON Schema (as pydantic writes one), and the
server's field violations placed next to their fields."""
from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from flowdeck.server.dashboard import forms
from dashboard_helpers import anyio_backend, dash, seed  # noqa: F401 - fixtures

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Name", "default": "world", "description": "who to greet"},
        "count": {"type": "integer", "title": "Count"},
        "ratio": {"type": "number", "default": 0.5},
        "loud": {"type": "boolean", "default": False},
        "color": {"enum": ["red", "green"], "default": "red"},
        "mode": {"$ref": "#/$defs/Mode"},
        "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}], "default": None},
        "config": {"$ref": "#/$defs/Config"},
        "items": {"type": "array", "items": {"type": "integer"}, "default": [1, 2]},
    },
    "required": ["count", "config"],
    "$defs": {
        "Mode": {"enum": ["fast", "slow"], "type": "string"},
        "Config": {"type": "object", "properties": {"depth": {"type": "integer"}}},
    },
}


def test_fields_from_schema_with_deployment_defaults():
    fields = {f.name: f for f in forms.fields_for(SCHEMA, {"name": "Earth", "items": [3]})}
    assert list(fields) == ["name", "count", "ratio", "loud", "color", "mode", "when", "config", "items"]
    kinds = {n: f.kind for n, f in fields.items()}
    assert kinds == {"name": "string", "count": "integer", "ratio": "number", "loud": "boolean", "color": "enum",
                     "mode": "enum", "when": "string", "config": "json", "items": "json"}
    assert fields["name"].text == "Earth" and fields["name"].description == "who to greet"
    assert fields["items"].text == "[3]" and fields["ratio"].text == "0.5" and fields["loud"].text == "false"
    assert fields["count"].required and fields["config"].required and not fields["name"].required
    assert fields["mode"].choices == ["fast", "slow"] and fields["when"].nullable


def test_values_read_by_type_and_wrong_ones_sent_as_typed():
    fields = forms.fields_for(SCHEMA, {})
    form = FormData([("name", "Marvin"), ("count", "3"), ("ratio", "2"), ("loud", "true"), ("color", "green"),
                     ("mode", "slow"), ("when", ""), ("config", '{"depth": 2}'), ("items", "[4, 5]")])
    params, _ = forms.read(fields, form)
    assert params == {"name": "Marvin", "count": 3, "ratio": 2, "loud": True, "color": "green", "mode": "slow",
                      "when": None, "config": {"depth": 2}, "items": [4, 5]}
    # What does not read as its type goes to the server as typed: the server decides and says why.
    params, fields = forms.read(forms.fields_for(SCHEMA, {}), FormData([("count", "abc"), ("items", "[1,")]))
    assert params["count"] == "abc" and params["items"] == "[1,"
    assert not any(f.error for f in fields)
    assert "ratio" not in params, "an empty optional field leaves the deployment's default"


def test_server_violations_go_next_to_their_fields():
    fields = forms.fields_for(SCHEMA, {})
    loose = forms.place_errors(fields, [("parameters.count", "'abc' is not of type 'integer'"),
                                        ("parameters.config.depth", "must be an integer"),
                                        ("parameters", "unexpected parameter 'zzz'"),
                                        ("deployment_id", "not found")])
    by_name = {f.name: f for f in fields}
    assert by_name["count"].error == "'abc' is not of type 'integer'"
    assert by_name["config"].error == "must be an integer"
    assert loose == ["parameters: unexpected parameter 'zzz'", "deployment_id: not found"]


def test_without_a_schema_one_json_object():
    fields = forms.fields_for(None, {"name": "Earth", "times": 2})
    assert [f.name for f in fields] == [forms.RAW]
    assert '"times": 2' in fields[0].text
    params, fields = forms.read(fields, FormData([(forms.RAW, '{"times": 5}')]))
    assert params == {"times": 5} and not fields[0].error
    for bad, why in (("{", "not valid JSON"), ("[1]", "must be a JSON object")):
        _, fields = forms.read(forms.fields_for(None, {}), FormData([(forms.RAW, bad)]))
        assert fields[0].error.startswith(why)
    fields = forms.fields_for(None, {})
    assert forms.place_errors(fields, [("parameters.times", "bad")]) == []
    assert fields[0].error == "parameters.times: bad"


@pytest.mark.anyio
async def test_quick_run_without_schema(dash, seed):
    from dashboard_helpers import csrf_of, soup

    dep = seed.deployment("d", parameters={"name": "Earth", "times": 1})
    form = await dash.get(f"/deployments/{dep.id}/run")
    area = soup(form).select_one(f'textarea[name="{forms.RAW}"]')
    assert '"name": "Earth"' in area.text
    r = await dash.post(f"/deployments/{dep.id}/run", data={"csrf": csrf_of(form), forms.RAW: "{oops"})
    assert r.status_code == 422 and "not valid JSON" in soup(r).select_one(".field-error").text
    assert seed.runs_of(dep) == [], "nothing is created"
    r = await dash.post(f"/deployments/{dep.id}/run", data={"csrf": csrf_of(form), forms.RAW: '{"times": 4}'})
    assert r.status_code == 303
    (run,) = seed.runs_of(dep)
    assert r.headers["location"] == f"/runs/{run.id}"
    assert dict(run.parameters) == {"name": "Earth", "times": 4.0}


@pytest.mark.anyio
async def test_quick_run_refused_by_the_server_creates_nothing(dash, seed):
    """The API refuses a NaN parameter: the form shows its message (at the top while the
    status carries no field violations, next to the field once it does); no run."""
    from dashboard_helpers import csrf_of, soup

    dep = seed.deployment("d")
    form = await dash.get(f"/deployments/{dep.id}/run")
    r = await dash.post(f"/deployments/{dep.id}/run", data={"csrf": csrf_of(form), forms.RAW: '{"x": NaN}'})
    assert r.status_code == 422
    shown = " ".join(e.text for e in soup(r).select(".error-box p, .field-error"))
    assert "parameters" in shown and ("NaN" in shown or "finite" in shown or "number" in shown), shown
    assert seed.runs_of(dep) == []
