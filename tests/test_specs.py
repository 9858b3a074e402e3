"""DeploymentSpec, spec files (.py and .yaml) and creating deployments from
them, including every example of the deployments concept document."""
from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from flowdeck import exceptions as exc
from flowdeck import flow
from flowdeck.deployments import (
    DeploymentSpec,
    PlannedChange,
    SpecError,
    StoringScript,
    collecting,
    create_deployments,
    load_specs,
    plan_deployments,
)
from flowdeck.flow_data import load_flow
from flowdeck.schedules import CronSchedule, IntervalSchedule

HELLO_FLOW = textwrap.dedent('''
    # filename: hello_flow.py
    from flowdeck import flow

    @flow
    def hello_world(name="world"):
        print(f"Hello {name}!")
''')


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("FLOWDECK_HOME", str(home))
    return home


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def create(client, path, **kw):
    return create_deployments(load_specs(path), client, **kw)


@flow
def local_flow(n: int, label: str = "x"):
    return n


# -- the spec object -----------------------------------------------------------------------


def test_spec_infers_location_and_name_and_registers():
    with collecting([]) as specs:
        spec = DeploymentSpec(flow=local_flow, name="d", schedule={"interval": 60}, max_lateness=30)
    assert specs == [spec]
    assert spec.flow_name == "local-flow" and spec.flow_location == __file__
    assert spec.schedule == IntervalSchedule(interval=dt.timedelta(seconds=60))
    assert spec.max_lateness == dt.timedelta(seconds=30)
    assert spec.source.endswith(f"test_specs.py line {spec.source.rsplit(' ', 1)[1]}")
    assert spec.runner_settings() == {"type": "universal", "config": {"env": {}}}


def test_spec_errors_are_clear():
    with collecting(None):
        with pytest.raises(SpecError, match="'d'.*either flow or flow_location is required"):
            DeploymentSpec(name="d")
        with pytest.raises(SpecError, match="'d'.*schedule: .*greater than zero"):
            DeploymentSpec(name="d", flow=local_flow, schedule={"interval": 0})
        with pytest.raises(SpecError, match="'d'.*colour: unknown field"):
            DeploymentSpec(name="d", flow=local_flow, colour="red")
        with pytest.raises(SpecError, match="'d'.*flow: 'f' is not a flow: decorate it with @flow"):
            def f():
                pass
            DeploymentSpec(name="d", flow=f)
        with pytest.raises(SpecError, match="name: must not contain '/'"):
            DeploymentSpec(name="a/b", flow=local_flow)
        with pytest.raises(SpecError, match="flow_name: 'other' does not match"):
            DeploymentSpec(name="d", flow=local_flow, flow_name="other")
        with pytest.raises(SpecError, match="flow_runner: .*expected a flow runner"):
            DeploymentSpec(name="d", flow=local_flow, flow_runner=42)


def test_python_api_create(client):
    with collecting(None):
        spec = DeploymentSpec(flow=local_flow, name="api", parameters={"n": "7"}, tags=["t"],
                              schedule=CronSchedule(cron="0 9 * * 1-5", timezone="Europe/Berlin"),
                              catchup=True, max_lateness=dt.timedelta(minutes=5),
                              flow_runner={"type": "subprocess", "config": {"env": {"A": "1"}}})
    dep, created = spec.create(client)
    assert created
    assert dep.parameters == {"n": 7}  # coerced by the flow's annotation
    assert dep.schedule["cron"] == "0 9 * * 1-5" and dep.schedule["timezone"] == "Europe/Berlin"
    assert dep.catchup is True and dep.max_lateness == 300
    assert dep.flow_runner.type == "subprocess" and dep.flow_runner.config == {"env": {"A": "1"}}
    assert load_flow(dep.flow_data).name == "local-flow"


# -- concept document examples -------------------------------------------------------------------


def test_single_file_deployment(client, tmp_path, home):
    path = write(tmp_path, "hello_flow.py", HELLO_FLOW + textwrap.dedent('''
        from flowdeck.deployments import DeploymentSpec

        DeploymentSpec(
            flow=hello_world,
            name="hello-world",
            tags=["earth"],
        )
    '''))
    [(dep, created)] = create(client, path)
    assert created and dep.full_name == "hello-world/hello-world" and dep.tags == ["earth"]
    assert dep.flow_runner.model_dump() == {"type": "universal", "config": {"env": {}}}
    assert dep.flow_data.encoding == "blockstorage"
    blob = json.loads(dep.flow_data.blob)
    assert blob["block_id"] is None and blob["block_type"] == "local"
    assert blob["block_config"] == {"path": str(home / "storage")}
    assert (home / "storage" / blob["key"]).read_text() == path.read_text()
    assert blob["flow_name"] == "hello-world" and blob["filename"] == str(path)
    assert load_flow(dep.flow_data).name == "hello-world"
    [(again, created)] = create(client, path)
    assert not created and again.id == dep.id


def test_separate_deployment_file_without_importing_the_flow(client, tmp_path):
    flow_path = write(tmp_path / "flows", "hello_flow.py", HELLO_FLOW)
    path = write(tmp_path, "hello_deployment.py", f'''
        # filename: hello_deployment.py
        from flowdeck.deployments import DeploymentSpec

        DeploymentSpec(
            flow=hello_world,
            flow_location="{flow_path}",
            name="hello-world",
            tags=["earth"],
        )
    ''')
    [(dep, _)] = create(client, path)
    assert dep.full_name == "hello-world/hello-world"
    assert json.loads(dep.flow_data.blob)["filename"] == str(flow_path)


def test_undefined_names_are_still_errors(client, tmp_path):
    path = write(tmp_path, "d.py", '''
        from flowdeck.deployments import DeploymentSpec
        DeploymentSpec(flow=hello_world, name="x")
    ''')
    with pytest.raises(SpecError, match=r"'x' \(.*d.py line 3\): flow: name 'hello_world' is not defined"):
        load_specs(path)
    path.write_text("from flowdeck.deployments import DeploymentSpec\n"
                    "DeploymentSpec(flow_location='f.py', name='x', tags=[foo])\n")
    with pytest.raises(SpecError, match=r"tags\[0\]: name 'foo' is not defined"):
        load_specs(path)
    path.write_text("x = undefined_thing()\n")
    with pytest.raises(SpecError, match=r"d.py' failed at line 1: NameError: name 'undefined_thing'"):
        load_specs(path)


def test_yaml_spec_with_relative_location(client, tmp_path, monkeypatch):
    write(tmp_path / "project" / "path" / "to", "flow.py", HELLO_FLOW)
    path = write(tmp_path / "project", "deployment.yaml", '''
        name: hello-world-daily
        flow_location: ./path/to/flow.py
        flow_name: hello-world
        tags:
        - foo
        - bar
        parameters:
            name: "Earth"
        schedule:
            interval: 3600
    ''')
    monkeypatch.chdir(tmp_path)  # relative to the spec file, not to here
    [(dep, created)] = create(client, "project/deployment.yaml")
    assert created and dep.full_name == "hello-world/hello-world-daily"
    assert dep.tags == ["foo", "bar"] and dep.parameters == {"name": "Earth"}
    assert dep.schedule["interval"] == 3600
    assert dep.is_schedule_active


def test_yaml_multiple_documents_and_schedules(client, tmp_path):
    write(tmp_path / "path" / "to" / "first", "flow.py", HELLO_FLOW)
    write(tmp_path / "path" / "to" / "second", "flow.py",
          "from flowdeck import flow\n@flow\ndef second_flow(x: int = 1):\n    return x\n")
    path = write(tmp_path, "deployments.yml", '''
        name: first-deployment
        flow_location: ./path/to/first/flow.py
        ---
        name: second-deployment
        flow_location: ./path/to/second/flow.py
        schedule: {cron: "0 9 * * 1-5", timezone: "Europe/Berlin"}
        ---
        name: third
        flow_location: ./path/to/second/flow.py
        schedule: {rrule: "FREQ=WEEKLY;BYDAY=MO"}
        flow_runner: {type: subprocess, config: {env: {A: b}}}
        max_lateness: 120
        catchup: true
    ''')
    results = create(client, path)
    names = [d.full_name for d, _ in results]
    assert names == ["hello-world/first-deployment", "second-flow/second-deployment", "second-flow/third"]
    third = results[2][0]
    assert third.schedule["rrule"] == "FREQ=WEEKLY;BYDAY=MO"
    assert third.flow_runner.type == "subprocess" and third.max_lateness == 120 and third.catchup
    assert results[1][0].schedule["timezone"] == "Europe/Berlin"


def test_multiple_deployments_for_a_flow(client, tmp_path):
    flow_path = write(tmp_path, "hello_flow.py", HELLO_FLOW)
    path = write(tmp_path, "hello_deployment.py", f'''
        # filename: hello_deployment.py
        from flowdeck.deployments import DeploymentSpec
        from flowdeck.schedules import IntervalSchedule
        from datetime import timedelta

        DeploymentSpec(
            flow_location="{flow_path}",
            name="hello-world-unscheduled",
            parameters={{"name": "Trillian"}},
            tags=["trillian","ad-hoc"],
        )

        DeploymentSpec(
            flow_location="{flow_path}",
            name="hello-world-daily",
            schedule=IntervalSchedule(interval=timedelta(days=1)),
            parameters={{"name": "Arthur"}},
            tags=["arthur","daily"],
        )

        DeploymentSpec(
            flow_location="{flow_path}",
            name="hello-world-weekly",
            schedule=IntervalSchedule(interval=timedelta(weeks=1)),
            parameters={{"name": "Marvin"}},
            tags=["marvin","weekly"],
        )
    ''')
    results = create(client, path)
    by_name = {d.name: d for d, _ in results}
    assert set(by_name) == {"hello-world-unscheduled", "hello-world-daily", "hello-world-weekly"}
    assert by_name["hello-world-unscheduled"].schedule is None
    assert by_name["hello-world-daily"].schedule["interval"] == 86400
    assert by_name["hello-world-weekly"].schedule["interval"] == 7 * 86400
    assert by_name["hello-world-weekly"].parameters == {"name": "Marvin"}
    # One script, stored once.
    keys = {json.loads(d.flow_data.blob)["key"] for d in by_name.values()}
    assert len(keys) == 1


def test_flow_runner_object(client, tmp_path):
    flow_path = write(tmp_path, "hello_flow.py", HELLO_FLOW)
    write(tmp_path, "my_runners.py", '''
        class SubprocessFlowRunner:
            def __init__(self, env=None):
                self.env = env or {}
            def to_settings(self):
                return {"type": "subprocess", "config": {"env": self.env}}
    ''')
    path = write(tmp_path, "d.py", f'''
        from flowdeck.deployments import DeploymentSpec
        from my_runners import SubprocessFlowRunner

        DeploymentSpec(
            flow_location="{flow_path}",
            name="hello-world-subprocess",
            flow_runner=SubprocessFlowRunner(env={{"K": "V"}}),
            tags=["foo"],
        )
    ''')
    [(dep, _)] = create(client, path)
    assert dep.flow_runner.type == "subprocess" and dep.flow_runner.config == {"env": {"K": "V"}}


def test_flow_imported_from_another_module(client, tmp_path):
    write(tmp_path, "my_flows.py", HELLO_FLOW)
    path = write(tmp_path, "deploy.py", '''
        from my_flows import hello_world
        from flowdeck.deployments import DeploymentSpec
        DeploymentSpec(flow=hello_world, name="imported")
    ''')
    [(dep, _)] = create(client, path)
    assert json.loads(dep.flow_data.blob)["filename"] == str(tmp_path / "my_flows.py")
    assert load_flow(dep.flow_data).fn.__name__ == "hello_world"


def test_flow_storage_by_block_id_and_server_default(client, tmp_path):
    path = write(tmp_path, "hello_flow.py", HELLO_FLOW + '''
from flowdeck.deployments import DeploymentSpec
DeploymentSpec(flow=hello_world, name="storage id test",
               flow_storage="8cc24b10-0a4e-4b71-acc6-0ed0b923b5c2")
''')
    with pytest.raises(SpecError, match="'storage id test'.*8cc24b10-0a4e-4b71-acc6-0ed0b923b5c2"):
        create(client, path)
    store = tmp_path / "registered"
    block = client.create_storage_block(block_type="local", config={"path": str(store)})
    path.write_text(path.read_text().replace("8cc24b10-0a4e-4b71-acc6-0ed0b923b5c2", block.id))
    [(dep, _)] = create(client, path)
    assert dep.storage_block_id == block.id
    blob = json.loads(dep.flow_data.blob)
    assert blob["block_id"] == block.id and (store / blob["key"]).exists()
    assert load_flow(dep.flow_data, client).name == "hello-world"
    # A default block on the server is used when a spec names no storage.
    default_store = tmp_path / "default"
    default = client.create_storage_block(block_type="local", config={"path": str(default_store)})
    client.set_default_storage_block(default.id)
    flow_only = write(tmp_path, "d.yaml", "name: plain\nflow_location: hello_flow.py\n")
    events = []
    [(dep, _)] = create(client, flow_only, progress=events.append)
    assert json.loads(dep.flow_data.blob)["block_id"] == default.id == dep.storage_block_id
    assert StoringScript(str(tmp_path / "hello_flow.py"), "File Storage") in events


def test_local_storage_block_instance(client, tmp_path):
    store = tmp_path / "elsewhere"
    path = write(tmp_path, "hello_flow.py", HELLO_FLOW + f'''
from flowdeck.deployments import DeploymentSpec
from flowdeck.blocks.storage import LocalStorageBlock
DeploymentSpec(flow=hello_world, name="local block", flow_storage=LocalStorageBlock(path="{store}"))
''')
    [(dep, _)] = create(client, path)
    blob = json.loads(dep.flow_data.blob)
    assert blob["block_config"] == {"path": str(store)} and (store / blob["key"]).exists()
    assert load_flow(dep.flow_data, client).name == "hello-world"


# -- errors --------------------------------------------------------------------------------------


def test_several_flows_need_flow_name(client, tmp_path):
    write(tmp_path, "two.py", HELLO_FLOW + "\n@flow\ndef goodbye():\n    pass\n")
    path = write(tmp_path, "d.yaml", "name: x\nflow_location: two.py\n")
    with pytest.raises(SpecError, match=r"'x'.*several flows found in .*'hello-world', 'goodbye'; set flow_name"):
        create(client, path)
    path.write_text("name: x\nflow_location: two.py\nflow_name: nope\n")
    with pytest.raises(SpecError, match=r"flow 'nope' not found in .*flows found: 'hello-world', 'goodbye'"):
        create(client, path)
    path.write_text("name: x\nflow_location: missing.py\n")
    with pytest.raises(SpecError, match=r"flow_location: .*missing.py' not found"):
        create(client, path)


def test_duplicate_names_in_one_load(client, tmp_path):
    write(tmp_path, "flow.py", HELLO_FLOW)
    path = write(tmp_path, "d.yaml", '''
        name: same
        flow_location: flow.py
        ---
        name: other
        flow_location: flow.py
        ---
        name: same
        flow_location: flow.py
        tags: [again]
    ''')
    with pytest.raises(SpecError) as info:
        create(client, path)
    message = info.value.message
    assert "'hello-world/same' is specified twice" in message
    assert "d.yaml document 1, line 2" in message and "d.yaml document 3, line 8" in message
    assert client.list_deployments() == []


def test_parameters_are_validated_at_create_time(client, tmp_path):
    write(tmp_path, "flow.py", "from flowdeck import flow\n@flow\ndef typed(n: int, name: str = 'x'):\n    pass\n")
    path = write(tmp_path, "d.yaml", '''
        name: good
        flow_location: flow.py
        parameters: {n: 1}
        ---
        name: wrong-type
        flow_location: flow.py
        parameters: {n: "many"}
    ''')
    with pytest.raises(SpecError, match=r"'wrong-type' \(.*d.yaml document 2, line 6\): parameters: invalid parameter 'n'"):
        create(client, path)
    path.write_text("name: wrong-name\nflow_location: flow.py\nparameters: {m: 1}\n")
    with pytest.raises(SpecError, match=r"parameters: unknown parameter 'm' for flow 'typed' \(parameters: n, name\)"):
        create(client, path)
    assert client.list_deployments() == []  # all or nothing


def test_server_refusal_undoes_the_whole_file(client, tmp_path):
    write(tmp_path, "flow.py", HELLO_FLOW)
    client.create_deployment("existing", flow_name="hello-world", tags=["before"])
    path = write(tmp_path, "d.yaml", '''
        name: existing
        flow_location: flow.py
        tags: [after]
        ---
        name: brand-new
        flow_location: flow.py
        ---
        name: refused
        flow_location: flow.py
        flow_runner: {type: warp-drive}
    ''')
    with pytest.raises(exc.InvalidArgumentError, match="'refused'.*flow_runner.type.*no deployment was created or changed"):
        create(client, path)
    deps = client.list_deployments()
    assert [(d.name, d.tags) for d in deps] == [("existing", ["before"])]


def test_yaml_errors(client, tmp_path):
    path = write(tmp_path, "bad.yaml", "name: x\nflow_location: [unclosed\n")
    with pytest.raises(SpecError, match=r"invalid YAML in .*bad.yaml' line 3"):
        load_specs(path)
    path.write_text("name: x\nflow_location: f.py\nschedul: {interval: 5}\n")
    with pytest.raises(SpecError, match=r"'x' \(.*bad.yaml document 1, line 1\): schedul: unknown field"):
        load_specs(path)
    path.write_text("- just a list\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_specs(path)
    path.write_text("# nothing\n")
    with pytest.raises(SpecError, match="no deployment specs found"):
        load_specs(path)
    with pytest.raises(exc.NotFoundError, match="not found"):
        load_specs(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="neither a Python script"):
        load_specs(tmp_path / "spec.txt")


def test_dry_run_reports_and_changes_nothing(client, tmp_path):
    write(tmp_path, "flow.py", HELLO_FLOW)
    path = write(tmp_path, "d.yaml", '''
        name: a
        flow_location: flow.py
        schedule: {interval: 3600}
        ---
        name: b
        flow_location: flow.py
    ''')
    def plan():
        return plan_deployments(load_specs(path), client)

    assert plan() == [PlannedChange("hello-world/a", "hello-world", "create"),
                      PlannedChange("hello-world/b", "hello-world", "create")]
    assert client.list_deployments() == []
    create(client, path)
    assert [(p.action, p.changes) for p in plan()] == [("unchanged", ()), ("unchanged", ())]
    path.write_text(path.read_text().replace("schedule: {interval: 3600}", "schedule: {interval: 60}\ntags: [x]"))
    assert [(p.action, p.changes) for p in plan()] == [("update", ("schedule", "tags")), ("unchanged", ())]
    assert client.get_deployment_by_name("hello-world/a").tags == []


def test_hundred_specs_in_one_file(client, tmp_path):
    write(tmp_path, "flow.py", HELLO_FLOW)
    path = write(tmp_path, "many.yaml", "\n---\n".join(
        f"name: d{i}\nflow_location: flow.py\nschedule: {{interval: {3600 + i}}}" for i in range(100)))
    results = create(client, path)
    assert len(results) == 100 and all(created for _, created in results)


def test_python_spec_relative_location(client, tmp_path, monkeypatch):
    write(tmp_path / "proj" / "flows", "f.py", HELLO_FLOW)
    write(tmp_path / "proj", "deploy.py", '''
        from flowdeck.deployments import DeploymentSpec
        DeploymentSpec(flow_location="flows/f.py", name="rel")
    ''')
    monkeypatch.chdir(tmp_path)  # relative to the spec file, not to here
    [(dep, _)] = create(client, "proj/deploy.py")
    assert json.loads(dep.flow_data.blob)["filename"] == str(tmp_path / "proj" / "flows" / "f.py")


def test_concept_flow_runner_example(client, tmp_path):
    pytest.importorskip("flowdeck.flow_runners")
    flow_path = write(tmp_path, "hello_flow.py", HELLO_FLOW)
    path = write(tmp_path, "hello_deployment.py", f'''
        # filename: hello_deployment.py
        from flowdeck.deployments import DeploymentSpec
        from flowdeck.flow_runners import SubprocessFlowRunner

        DeploymentSpec(
            flow_location="{flow_path}",
            name="hello-world-subprocess",
            flow_runner=SubprocessFlowRunner(),
            tags=["foo"],
        )
    ''')
    [(dep, _)] = create(client, path)
    assert dep.flow_runner.type == "subprocess" and dep.tags == ["foo"]
