"""Flows: naming, tracked calls, parameter validation, log capture and
batching, execute_flow_run, and the four flow_data encodings."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from flowdeck import flow, get_run_logger
from flowdeck import exceptions as exc
from flowdeck.context import MissingContextError
from flowdeck.engine import execute_flow_run
from flowdeck.flow_data import (
    FlowLoadError,
    blockstorage_flow_data,
    cloudpickle_flow_data,
    file_flow_data,
    load_flow,
    text_flow_data,
)
from flowdeck.flows import Flow, ParameterValidationError
from flowdeck.run_logging import LogShipper


@pytest.fixture
def tracked(server, client, monkeypatch, tmp_path):
    """Flow calls in this process go to the test server."""
    monkeypatch.setenv("FLOWDECK_API_URL", server.address)
    monkeypatch.setenv("FLOWDECK_HOME", str(tmp_path / "home"))
    return client


def only_run(client, flow_name):
    runs = client.list_flow_runs(flow_name=flow_name)
    assert len(runs) == 1, runs
    return client.get_flow_run(runs[0].id)


def messages(client, run_id):
    return [(r.logger_name, r.message) for r in client.list_logs(run_id, limit=None)]


@flow
def hello_world(name="world"):
    print(f"Hello {name}!")
    return f"said hello to {name}"


@flow(name="doubler", version="2.0", description="doubles")
def double_it(n: int, factor: int = 2) -> int:
    return n * factor


@flow
def exploding(message: str):
    print("about to fail", file=sys.stderr)
    raise ValueError(message)


@flow(log_prints=False)
def quiet():
    print("not captured")
    get_run_logger().info("but logged")


@flow
def chatty(count: int = 250):
    logger = get_run_logger()
    for i in range(count):
        logger.info("line %d", i)


@flow
def parent_flow():
    print("in parent")
    return double_it(n="5") + 1


def test_naming_and_options():
    assert hello_world.name == "hello-world"
    assert isinstance(hello_world, Flow) and hello_world.__name__ == "hello_world"
    assert (double_it.name, double_it.version, double_it.description) == ("doubler", "2.0", "doubles")
    assert quiet.log_prints is False and hello_world.log_prints is True
    assert hello_world.parameter_names() == ["name"]


def test_call_is_tracked_and_returns_value(tracked, capsys):
    assert hello_world(name="Earth") == "said hello to Earth"
    assert "Hello Earth!" in capsys.readouterr().out  # still shown
    run = only_run(tracked, "hello-world")
    assert run.state.type == "COMPLETED"
    assert [s.type for s in run.state_history] == ["RUNNING", "COMPLETED"]
    assert run.parameters == {"name": "Earth"}
    assert tracked.get_flow_by_name("hello-world").id == run.flow_id
    assert ("stdout", "Hello Earth!") in messages(tracked, run.id)


def test_defaults_and_coercion(tracked):
    assert double_it(n="3") == 6
    assert double_it(4, factor="3") == 12
    runs = tracked.list_flow_runs(flow_name="doubler", newest_first=False)
    assert [r.parameters for r in runs] == [{"n": 3, "factor": 2}, {"n": 4, "factor": 3}]


def test_bad_parameter_is_a_clear_error(tracked):
    with pytest.raises(ParameterValidationError, match=r"invalid parameter 'n' for flow 'doubler'.*integer.*'abc'"):
        double_it(n="abc")
    with pytest.raises(ParameterValidationError, match="missing required parameter 'n'"):
        double_it.validate_parameters({})
    with pytest.raises(ParameterValidationError, match="unknown parameter 'm'.*parameters: n, factor"):
        double_it.validate_parameters({"n": 1, "m": 2})
    with pytest.raises(TypeError, match="doubler"):
        double_it(1, 2, 3)
    assert tracked.list_flow_runs(flow_name="doubler") == []


def test_failure_marks_failed_and_reraises(tracked):
    with pytest.raises(ValueError, match="boom"):
        exploding("boom")
    run = only_run(tracked, "exploding")
    assert run.state.type == "FAILED"
    assert run.state.message == "ValueError: boom"
    logs = messages(tracked, run.id)
    assert ("stderr", "about to fail") in logs
    tb = [m for name, m in logs if "Encountered exception" in m]
    assert tb and "raise ValueError(message)" in tb[0] and "ValueError: boom" in tb[0]


def test_log_prints_off_and_run_logger(tracked, capsys):
    quiet()
    assert "not captured" in capsys.readouterr().out
    run = only_run(tracked, "quiet")
    logs = messages(tracked, run.id)
    assert ("flowdeck.flow_run", "but logged") in logs
    assert not any("not captured" in m for _, m in logs)


def test_get_run_logger_outside_a_run():
    with pytest.raises(MissingContextError, match="no active flow run"):
        get_run_logger()
    assert issubclass(MissingContextError, exc.FlowdeckError)


def test_run_logger_records_are_batched(tracked, monkeypatch):
    calls = []
    original = type(tracked).create_logs

    def counting(self, records):
        calls.append(len(records))
        return original(self, records)

    monkeypatch.setattr(type(tracked), "create_logs", counting)
    chatty()
    run = only_run(tracked, "chatty")
    lines = [m for name, m in messages(tracked, run.id) if m.startswith("line ")]
    assert lines == [f"line {i}" for i in range(250)]
    assert sum(calls) >= 252 and len(calls) <= 6 and max(calls) <= 100


def test_shipper_flushes_on_interval_and_close():
    class Fake:
        def __init__(self):
            self.batches = []
            self.sent = threading.Event()

        def create_logs(self, records):
            self.batches.append(list(records))
            self.sent.set()
            return len(records)

    fake = Fake()
    shipper = LogShipper(fake, "00000000-0000-0000-0000-000000000001", interval=0.2, batch_size=100).start()
    for i in range(3):
        shipper.put(20, "x", f"m{i}")
    assert fake.sent.wait(30), "nothing was sent before close()"
    assert [r["message"] for r in fake.batches[0]] == ["m0", "m1", "m2"]  # sent without close()
    for i in range(230):
        shipper.put(20, "x", f"n{i}")
    shipper.close()
    sent = [r["message"] for b in fake.batches for r in b]
    assert sent == ["m0", "m1", "m2"] + [f"n{i}" for i in range(230)]
    assert max(len(b) for b in fake.batches) <= 100 and not shipper._thread.is_alive()


def test_nested_flow_runs(tracked):
    assert parent_flow() == 11
    parent, child = only_run(tracked, "parent-flow"), only_run(tracked, "doubler")
    assert parent.state.type == child.state.type == "COMPLETED"
    assert ("stdout", "in parent") in messages(tracked, parent.id)
    assert not any(m == "in parent" for _, m in messages(tracked, child.id))


def test_threads_with_copied_context_log_to_the_run(tracked):
    import contextvars

    @flow
    def threaded():
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(lambda: get_run_logger().info("from a thread"),))
        t.start()
        t.join()

    threaded()
    run = only_run(tracked, "threaded")
    assert ("flowdeck.flow_run", "from a thread") in messages(tracked, run.id)


# -- execute_flow_run -----------------------------------------------------------------


def test_execute_flow_run_completes(client):
    run = client.create_flow_run(flow_name="doubler", parameters={"n": "21"})
    state = execute_flow_run(client, run, double_it)
    assert state.type == "COMPLETED"
    got = client.get_flow_run(run.id)
    assert [s.type for s in got.state_history] == ["SCHEDULED", "RUNNING", "COMPLETED"]


def test_execute_flow_run_failures_return_failed(client):
    run = client.create_flow_run(flow_name="exploding", parameters={"message": "kaput"})
    state = execute_flow_run(client, run, exploding)
    assert (state.type, state.message) == ("FAILED", "ValueError: kaput")
    assert ("stderr", "about to fail") in messages(client, run.id)

    bad = client.create_flow_run(flow_name="doubler", parameters={"n": "x"})
    state = execute_flow_run(client, bad, double_it)
    assert state.type == "FAILED" and state.message.startswith("ParameterValidationError: invalid parameter 'n'")
    assert [s.type for s in client.get_flow_run(bad.id).state_history] == ["SCHEDULED", "FAILED"]
    assert any("invalid parameter 'n'" in m for _, m in messages(client, bad.id))


def test_execute_flow_run_passes_the_fencing_token(client):
    run = client.create_flow_run(flow_name="hello-world")
    with pytest.raises(exc.FailedPreconditionError, match="fencing token"):
        execute_flow_run(client, run, hello_world, fencing_token=7)


# -- flow_data ------------------------------------------------------------------------

FLOW_SCRIPT = textwrap.dedent('''
    from flowdeck import flow
    import helper_mod

    GREETING = "Howdy"

    def shout(text):
        return text.upper()

    @flow
    def greet(name: str = "world"):
        return shout(f"{GREETING} {name} {helper_mod.VALUE}")

    @flow(name="other-flow")
    def other():
        return "other"
''')


@pytest.fixture
def script(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "helper_mod.py").write_text("VALUE = 42\n")
    path = folder / "greet.py"
    path.write_text(FLOW_SCRIPT)
    return path


def test_load_flow_file_and_text(script):
    f = load_flow(file_flow_data(script, "greet"))
    assert f.name == "greet" and f.fn("you") == "HOWDY YOU 42"
    doc = text_flow_data(script.read_text(), "other-flow", str(script))
    assert load_flow(doc).fn() == "other"
    assert load_flow(doc.model_dump()).name == "other-flow"  # a dict works too
    with pytest.raises(exc.NotFoundError, match=r"flow 'nope' not found .*'greet', 'other-flow'"):
        load_flow(file_flow_data(script, "nope"))
    with pytest.raises(exc.InvalidArgumentError, match="several flows"):
        load_flow({"encoding": "file", "blob": json.dumps({"path": str(script)})})
    with pytest.raises(FlowLoadError, match="unknown flow_data encoding 'zip'"):
        load_flow({"encoding": "zip", "blob": ""})


def test_load_flow_cloudpickle_in_a_fresh_process(script, tmp_path):
    f = load_flow(file_flow_data(script, "greet"))
    doc = cloudpickle_flow_data(f)
    assert load_flow(doc).fn("again") == "HOWDY AGAIN 42"
    blob_file = tmp_path / "blob.txt"
    blob_file.write_text(doc.blob)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from flowdeck.flow_data import load_flow\n"
            "f = load_flow({'encoding': 'cloudpickle', 'blob': open(%r).read()})\n"
            "print(f.name, f.fn('there'))") % (str(script.parent), str(blob_file))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "greet HOWDY THERE 42"
    with pytest.raises(FlowLoadError, match="cannot unpickle"):
        load_flow({"encoding": "cloudpickle", "blob": base64.b64encode(b"junk").decode()})


def test_load_flow_blockstorage(script, tmp_path, monkeypatch):
    from flowdeck.blocks.storage import LocalStorageBlock

    block = LocalStorageBlock(path=str(tmp_path / "store"))
    key = block.write(script.read_bytes())
    doc = blockstorage_flow_data(key=key, flow_name="greet", filename=str(script),
                                 block_config={"path": str(tmp_path / "store")})
    assert json.loads(doc.blob)["block_type"] == "local"
    assert load_flow(doc).fn("b") == "HOWDY B 42"
    # A block known by id: its config comes from the caller (an agent's leased run).
    by_id = blockstorage_flow_data(key=key, flow_name="greet", filename=str(script),
                                   block_id="8cc24b10-0a4e-4b71-acc6-0ed0b923b5c2")
    with pytest.raises(FlowLoadError, match="names storage block '8cc24b10.*no block config"):
        load_flow(by_id)
    assert load_flow(by_id, storage_config={"path": str(tmp_path / "store")}).name == "greet"
    # The default local block: $FLOWDECK_HOME/storage.
    monkeypatch.setenv("FLOWDECK_HOME", str(tmp_path / "home"))
    key2 = LocalStorageBlock().write(script.read_bytes())
    assert load_flow(blockstorage_flow_data(key=key2, flow_name="other-flow", filename=str(script))).fn() == "other"
    missing = blockstorage_flow_data(key="0" * 64, flow_name="greet", filename="x.py")
    with pytest.raises(FlowLoadError, match="not in local storage"):
        load_flow(missing)


def test_script_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from flowdeck import flow\n\nx = 1 / 0\n")
    with pytest.raises(FlowLoadError, match=r"bad.py' failed at line 3: ZeroDivisionError"):
        load_flow(file_flow_data(bad, "x"))
    bad.write_text("def broken(:\n")
    with pytest.raises(FlowLoadError, match=r"syntax error in .*bad.py' line 1"):
        load_flow(file_flow_data(bad, "x"))
    with pytest.raises(exc.NotFoundError, match="not found"):
        load_flow(file_flow_data(tmp_path / "missing.py", "x"))


def test_loaded_flows_run_and_track(client, script):
    f = load_flow(file_flow_data(script, "greet"))
    run = client.create_flow_run(flow_name="greet", parameters={"name": "loader"})
    assert execute_flow_run(client, run, f).type == "COMPLETED"


def test_import_flowdeck_stays_light():
    code = ("import sys, flowdeck\n"
            "heavy = [m for m in ('grpc', 'sqlalchemy', 'pydantic') if m in sys.modules]\n"
            "from flowdeck import flow\n"
            "print(heavy, flow.__module__, 'grpc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.stdout.split() == ["[]", "flowdeck.flows", "False"], out.stderr
