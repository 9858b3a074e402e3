"""The user stories on the real `flowdeck` console script: deployment create
(and --dry-run), run, execute, flow-run ls/logs, and user errors."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest

from conftest import run_cli

HELLO = textwrap.dedent('''
    from flowdeck import flow, get_run_logger

    @flow
    def hello_world(name="world"):
        print(f"Hello {name}!")

    from flowdeck.deployments import DeploymentSpec

    DeploymentSpec(
        flow=hello_world,
        name="hello-world-daily",
    )
''')

TYPED = textwrap.dedent('''
    import sys
    from flowdeck import flow, get_run_logger

    @flow
    def typed(label: str, count: int = 1, extra=None):
        logger = get_run_logger()
        logger.info("label=%r count=%r extra=%r", label, count, extra)
        print(f"printed {label}")
        if count < 0:
            raise RuntimeError("negative count")
        return count
''')


@pytest.fixture
def cli(server, tmp_path):
    env = {"FLOWDECK_API_URL": server.address, "FLOWDECK_HOME": str(tmp_path / "home")}

    def run(*args, cwd=tmp_path):
        return run_cli(*args, env=env, cwd=cwd)

    return run


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def one_line_error(result, *needles):
    assert result.returncode == 1, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr and len(err.splitlines()) == 1, err
    assert err.startswith("Error: ")
    for needle in needles:
        assert needle in err, err
    return err


def test_create_prints_the_documented_lines_and_updates(cli, client, tmp_path):
    (tmp_path / "hello_world.py").write_text(HELLO)
    out = ok(cli("deployment", "create", "hello_world.py"))
    assert out.splitlines() == [
        "Loading deployment specifications from python script at 'hello_world.py'...",
        "Creating deployment 'hello-world-daily' for flow 'hello-world'...",
        "Deploying flow script from 'hello_world.py' using File Storage...",
        "Created deployment 'hello-world/hello-world-daily'.",
        "View your new deployment with:",
        "",
        "    flowdeck deployment inspect 'hello-world/hello-world-daily'",
    ]
    first = client.get_deployment_by_name("hello-world/hello-world-daily")
    out = ok(cli("deployment", "create", "hello_world.py"))
    assert "Updated deployment 'hello-world/hello-world-daily'." in out.splitlines()
    assert client.get_deployment_by_name("hello-world/hello-world-daily").id == first.id

    out = ok(cli("deployment", "inspect", "hello-world/hello-world-daily"))
    assert "'encoding': 'blockstorage'" in out and "'type': 'universal'" in out
    out = ok(cli("deployment", "ls", "--flow-name", "hello-world", "--json"))
    assert [d["name"] for d in json.loads(out)] == ["hello-world-daily"]


def test_yaml_create_and_dry_run(cli, client, tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "typed.py").write_text(TYPED)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(textwrap.dedent('''
        name: nightly
        flow_location: ./flows/typed.py
        parameters: {label: night}
        schedule: {cron: "0 3 * * *", timezone: "Europe/Berlin"}
        ---
        name: adhoc
        flow_location: ./flows/typed.py
        tags: [manual]
    '''))
    out = ok(cli("deployment", "create", "deploy.yaml", "--dry-run"))
    assert out.splitlines() == [
        "Loading deployment specifications from yaml file at 'deploy.yaml'...",
        "Would create deployment 'typed/nightly' for flow 'typed'.",
        "Would create deployment 'typed/adhoc' for flow 'typed'.",
        "Dry run: 2 deployment specs valid; nothing was changed.",
    ]
    assert client.list_deployments() == []
    out = ok(cli("deployment", "create", "deploy.yaml"))
    assert out.splitlines()[0] == "Loading deployment specifications from yaml file at 'deploy.yaml'..."
    assert "Created deployment 'typed/nightly'." in out and "Created deployment 'typed/adhoc'." in out
    assert out.count("Deploying flow script from 'flows/typed.py' using File Storage...") == 1

    spec.write_text(spec.read_text().replace("tags: [manual]", "tags: [manual, more]\ndescription: changed"))
    out = ok(cli("deployment", "create", str(spec), "--dry-run"))
    assert "Deployment 'typed/nightly' is unchanged." in out
    assert "Would update deployment 'typed/adhoc': tags, description would change." in out
    assert client.get_deployment_by_name("typed/adhoc").tags == ["manual"]


def test_inspect_shows_the_parameter_schema(cli, client, tmp_path):
    (tmp_path / "greet.py").write_text(textwrap.dedent('''
        from typing import Literal

        from flowdeck import flow

        @flow
        def greet(name: str, times: int = 1, tone: Literal["warm", "dry"] = "warm", extra=None):
            """Greets.

            Args:
                name: Who to greet.
                times: How often.
            """
    '''))
    (tmp_path / "d.yaml").write_text("name: d\nflow_location: greet.py\nparameters: {times: 3}\n")
    ok(cli("deployment", "create", "d.yaml"))
    (tmp_path / "greet.py").unlink()  # inspect loads no flow code
    out = ok(cli("deployment", "inspect", "greet/d"))
    assert "parameter_schema" not in out
    lines = out[out.index("Parameters"):].splitlines()
    header, body = lines[1], lines[3:]
    starts = [header.index(h) for h in ("name", "type", "default", "required", "description")]
    ends = starts[1:] + [None]
    body = body[:next(i for i, line in enumerate(body) if line.startswith("No runs"))]
    rows = [[line[a:b].strip() for a, b in zip(starts, ends)] for line in body]
    assert rows == [
        ["name", "string", "", "yes", "Who to greet."],
        ["times", "integer", "3", "", "How often."],
        ["tone", "warm | dry", '"warm"', "", ""],
        ["extra", "any", "null", "", ""],
    ]
    schema = json.loads(ok(cli("deployment", "inspect", "greet/d", "--json")))["parameter_schema"]
    assert schema["required"] == ["name"] and schema["properties"]["times"]["type"] == "integer"
    assert schema["properties"]["name"]["description"] == "Who to greet."
    client.update_deployment(client.get_deployment_by_name("greet/d").id, parameter_schema=None)
    out = ok(cli("deployment", "inspect", "greet/d"))
    assert "Parameters: not checked by the server" in out


def test_run_reads_values_by_the_parameter_schema(cli, client, tmp_path):
    (tmp_path / "typed.py").write_text(TYPED)
    (tmp_path / "d.yaml").write_text("name: d\nflow_location: typed.py\nparameters: {label: base}\n")
    ok(cli("deployment", "create", "d.yaml"))
    (tmp_path / "typed.py").unlink()  # `deployment run` never loads the flow: the schema types the values
    out = ok(cli("deployment", "run", "typed/d", "--param", "label=3", "--param", "count=3",
                 "--param", "extra=[1, 2]"))
    assert out.startswith("Created flow run '")
    run = client.list_flow_runs(flow_name="typed")[0]
    assert run.id in out and run.state.type == "SCHEDULED"
    assert run.parameters == {"label": "3", "count": 3, "extra": [1, 2]}
    ok(cli("deployment", "run", "typed/d", "--params", '{"count": 7}', "--param", "extra=plain"))
    run = client.list_flow_runs(flow_name="typed")[0]
    assert run.parameters == {"label": "base", "count": 7, "extra": "plain"}
    # The server checks: a wrong type, a missing required parameter, an unknown one.
    one_line_error(cli("deployment", "run", "typed/d", "--param", "count=many"),
                   "parameters.count: 'many' is not of type 'integer'")
    one_line_error(cli("deployment", "run", "typed/d", "--params", '{"count": "7"}'),
                   "parameters.count: '7' is not of type 'integer'")
    (tmp_path / "typed.py").write_text(TYPED)
    (tmp_path / "bare.yaml").write_text("name: bare\nflow_location: typed.py\n")
    ok(cli("deployment", "create", "bare.yaml"))
    one_line_error(cli("deployment", "run", "typed/bare", "--param", "count=1"), "parameters.label: is required")
    one_line_error(cli("deployment", "run", "typed/d", "--param", "colour=red"),
                   "parameters.colour: is not a parameter of this flow")
    one_line_error(cli("deployment", "run", "typed/d", "--params", "[1]"), "--params must be a JSON object")
    one_line_error(cli("deployment", "run", "typed/d", "--param", "novalue"), "KEY=VALUE")
    assert len(client.list_flow_runs(flow_name="typed")) == 2


def test_execute_tracks_links_and_sets_exit_status(cli, client, tmp_path):
    (tmp_path / "typed.py").write_text(TYPED)
    (tmp_path / "d.yaml").write_text("name: d\nflow_location: typed.py\nparameters: {label: base}\n")
    ok(cli("deployment", "create", "d.yaml"))
    result = cli("deployment", "execute", "typed/d", "--param", "count=2")
    out = ok(result)
    assert "printed base" in out and "finished in state COMPLETED" in out
    assert "label='base' count=2" in result.stderr  # the run logger on the console

    listed = json.loads(ok(cli("flow-run", "ls", "--deployment", "typed/d", "--json")))
    assert len(listed) == 1 and listed[0]["state"]["type"] == "COMPLETED"
    run = client.get_flow_run(listed[0]["id"])
    assert run.deployment_id == client.get_deployment_by_name("typed/d").id
    assert run.parameters == {"label": "base", "count": 2}

    logs = ok(cli("flow-run", "logs", run.name))
    assert "stdout - printed base" in logs and "label='base' count=2 extra=None" in logs

    failed = cli("deployment", "execute", "typed/d", "--param", "count=-1")
    assert failed.returncode == 1 and "Traceback" in failed.stderr  # the flow's own traceback, logged
    assert "finished in state FAILED: RuntimeError: negative count" in failed.stdout
    runs = client.list_flow_runs(deployment_id=run.deployment_id, state_types=["FAILED"])
    assert len(runs) == 1 and runs[0].state.message == "RuntimeError: negative count"


def test_user_errors_are_one_line(cli, tmp_path):
    one_line_error(cli("deployment", "create", "missing.py"), "'missing.py' not found")
    (tmp_path / "bad.yaml").write_text("name: x\nflow_location: ok.py\ntags: [a\n")
    one_line_error(cli("deployment", "create", "bad.yaml"), "invalid YAML in 'bad.yaml' line 4")
    (tmp_path / "bad.py").write_text("from flowdeck.deployments import DeploymentSpec\nDeploymentSpec(name='x')\n")
    one_line_error(cli("deployment", "create", "bad.py"), "'x' (bad.py line 2)", "either flow or flow_location")
    one_line_error(cli("deployment", "run", "nope/nothing"), "deployment 'nope/nothing' not found")
    one_line_error(cli("deployment", "execute", "nope/nothing"), "not found")
    (tmp_path / "two.yaml").write_text("name: x\nflow_location: ok.py\nparameters: {wrong: 1}\n")
    (tmp_path / "ok.py").write_text(TYPED)
    one_line_error(cli("deployment", "create", "two.yaml"), "unknown parameter 'wrong'")


def test_embedded_default_tracks_local_calls(tmp_path):
    """No FLOWDECK_API_URL: a flow call and the CLI share $FLOWDECK_HOME's database."""
    env = {"FLOWDECK_HOME": str(tmp_path / "home"), "FLOWDECK_API_URL": ""}
    (tmp_path / "script.py").write_text(TYPED + "\nprint(typed('local', count='4'))\n")
    import subprocess

    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, **env})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "4"
    runs = json.loads(ok(run_cli("flow-run", "ls", "--json", env=env, cwd=tmp_path)))
    assert [(r["flow_name"], r["state"]["type"], r["parameters"]["count"]) for r in runs] == [("typed", "COMPLETED", 4)]
    logs = ok(run_cli("flow-run", "logs", runs[0]["id"], env=env, cwd=tmp_path))
    assert "stdout - printed local" in logs
