"""What the CLI shows a person: `flow-run ls` with what just happened, tables
that fit a terminal (rendered in a real pseudo-terminal at 80 and 120
columns), colours only on a terminal, logs with dates that can be followed,
`deployment run --watch`, `flow ls`, `work-queue ls` counts, help on every
option. The CLI runs as a process against a real server on 127.0.0.1."""
from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import pathlib
import pty
import re
import selectors
import struct
import subprocess
import sys
import termios
import time

import pytest

BIN = pathlib.Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
UTC = dt.timezone.utc


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


@pytest.fixture
def cli_env(server, database_url, tmp_path):
    """The environment of a CLI process talking to `server` (the CLI is not
    about the database: one backend is enough)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the CLI is not about the database: one backend is enough")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWDECK_") and k not in ("COLUMNS", "NO_COLOR")}
    env.update(FLOWDECK_API_URL=server.address, FLOWDECK_HOME=str(tmp_path / "home"))
    return env


def cli(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    res = subprocess.run([str(BIN / "flowdeck"), *args], capture_output=True, text=True, env=env, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    assert "Traceback" not in res.stderr, res.stderr
    return res


def ok(env: dict, *args: str) -> str:
    res = cli(env, *args)
    assert res.returncode == 0, res.stderr
    return res.stdout


def in_terminal(env: dict, *args: str, columns: int) -> str:
    """Run the CLI on a pseudo-terminal `columns` wide; its output as the terminal got it."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([str(BIN / "flowdeck"), *args], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode()


def visible_lines(text: str) -> list[str]:
    return [ANSI.sub("", line) for line in text.replace("\r\n", "\n").split("\n")]


def run_of(client, deployment: str, *, start: dt.datetime | None = None, states: tuple[str, ...] = (), **kw):
    run = client.create_flow_run_from_deployment(deployment_name=deployment, expected_start_time=start, **kw)
    for state in states:
        run = client.set_flow_run_state(run.id, state)
    return run


# -- flow-run ls shows what just happened ---------------------------------------------------------

def test_flow_run_ls_shows_started_and_due_runs_not_the_upcoming_ones(cli_env, client):
    client.create_deployment("daily", flow_name="etl")
    upcoming = [run_of(client, "etl/daily", start=now() + dt.timedelta(days=d)) for d in range(1, 61)]
    done = run_of(client, "etl/daily", start=now() - dt.timedelta(hours=1), states=("RUNNING", "COMPLETED"))
    out = ok(cli_env, "deployment", "run", "etl/daily")
    just_made = re.search(r"Created flow run '([^']+)' \(([0-9a-f-]{36})\)", out).group(2)

    listed = json.loads(ok(cli_env, "flow-run", "ls", "--json"))
    assert [r["id"] for r in listed] == [just_made, done.id]  # newest first, no future runs
    table = ok(cli_env, "flow-run", "ls")
    assert just_made[:8] in table and done.id[:8] in table
    assert "60 upcoming scheduled runs not shown: --upcoming" in table
    assert "showing" not in table  # nothing of this view was left out

    next_three = json.loads(ok(cli_env, "flow-run", "ls", "--upcoming", "--limit", "3", "--json"))
    assert [r["id"] for r in next_three] == [r.id for r in upcoming[:3]]  # soonest first
    table = ok(cli_env, "flow-run", "ls", "--upcoming", "--limit", "3")
    assert "showing 3 of 60; --limit N or --all" in table
    assert "showing" not in ok(cli_env, "flow-run", "ls", "--upcoming", "--all")
    # --state SCHEDULED is due or upcoming by the same rule: the next three with --upcoming.
    scheduled = json.loads(ok(cli_env, "flow-run", "ls", "--state", "scheduled", "--upcoming", "--limit", "3",
                              "--json"))
    assert [r["id"] for r in scheduled] == [r.id for r in upcoming[:3]]


def test_footer_counts_what_was_left_out(cli_env, client):
    for i in range(57):
        client.create_flow_run(flow_name="many", name=f"run-{i:02d}", expected_start_time=now() - dt.timedelta(minutes=i))
    assert "showing 50 of 57; --limit N or --all" in ok(cli_env, "flow-run", "ls")
    assert "showing 5 of 57; --limit N or --all" in ok(cli_env, "flow-run", "ls", "--limit", "5")
    assert "showing" not in ok(cli_env, "flow-run", "ls", "--all")
    assert "showing" not in ok(cli_env, "flow-run", "ls", "--limit", "57")
    for i in range(3):
        client.create_deployment(f"d{i}", flow_name="many")
    assert "showing the first 2; --limit N or --all" in ok(cli_env, "deployment", "ls", "--limit", "2")
    assert "showing" not in ok(cli_env, "deployment", "ls")


def test_late_runs_and_an_invalid_state(cli_env, client):
    client.create_deployment("d", flow_name="lateness")
    late = run_of(client, "lateness/d", start=now() - dt.timedelta(minutes=5))
    client.set_flow_run_state(late.id, "SCHEDULED", name="Late")  # what the scheduler does
    failed = run_of(client, "lateness/d", start=now() - dt.timedelta(minutes=9), states=("RUNNING", "FAILED"))
    run_of(client, "lateness/d", start=now() - dt.timedelta(minutes=7))  # due, not Late
    for args in (["--late"], ["--state", "LATE"], ["--state", "late"]):
        assert [r["id"] for r in json.loads(ok(cli_env, "flow-run", "ls", "--json", *args))] == [late.id], args
    both = json.loads(ok(cli_env, "flow-run", "ls", "--json", "--state", "FAILED", "--late"))
    assert [r["id"] for r in both] == [late.id, failed.id]
    assert "SCHEDULED (Late)" in ok(cli_env, "flow-run", "ls", "--late")
    res = cli(cli_env, "flow-run", "ls", "--state", "DONE")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip() == ("Error: invalid --state 'DONE': must be one of SCHEDULED, PENDING, RUNNING, "
                                  "COMPLETED, FAILED, CANCELLED, CRASHED, LATE")


def test_list_flow_runs_window_names_and_total_size(client):
    """The server side of the above, on every backend."""
    client.create_deployment("d", flow_name="windows")
    future = [run_of(client, "windows/d", start=now() + dt.timedelta(hours=h)) for h in range(1, 5)]
    past_due = run_of(client, "windows/d", start=now() - dt.timedelta(hours=1))
    early = run_of(client, "windows/d", start=now() + dt.timedelta(days=3), states=("RUNNING",))
    everything = client.list_flow_runs(limit=None)
    assert len(everything) == 6 and everything.total_size == 6
    started = client.list_flow_runs(window="started_or_due")
    assert [r.id for r in started] == [early.id, past_due.id]  # a started run is shown whatever its expected time
    soon = client.list_flow_runs(window="upcoming", newest_first=False, limit=2)
    assert [r.id for r in soon] == [r.id for r in future[:2]] and soon.total_size == 4
    assert client.list_flow_runs(window="upcoming", tags=["absent"]).total_size == 0
    client.set_flow_run_state(past_due.id, "SCHEDULED", name="Late")
    by_name = client.list_flow_runs(state_names=["Late"], state_types=["RUNNING"])
    assert {r.id for r in by_name} == {past_due.id, early.id}
    from flowdeck.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        client.list_flow_runs(window="someday")


# -- tables that fit a terminal ------------------------------------------------------------------

LONG_FLOW = "warehouse-nightly-customer-etl"
LONG_DEPLOYMENTS = ("refresh-customer-dimension-eu-west", "backfill-orders")


@pytest.mark.parametrize("columns", [80, 120])
def test_tables_fit_the_terminal_and_never_wrap_an_id_or_a_name(cli_env, client, columns):
    deps = []
    for i, name in enumerate(LONG_DEPLOYMENTS):
        dep, _ = client.create_deployment(name, flow_name=LONG_FLOW, tags=["nightly", "eu-west-1", "warehouse"],
                                          schedule={"cron": "0 3 * * *", "timezone": "Europe/Berlin"},
                                          is_schedule_active=bool(i))
        deps.append(dep)
    runs = [run_of(client, f"{LONG_FLOW}/{LONG_DEPLOYMENTS[0]}", start=now() - dt.timedelta(minutes=m),
                   states=states) for m, states in ((1, ("RUNNING",)), (2, ("RUNNING", "COMPLETED")),
                                                    (3, ("RUNNING", "FAILED")), (4, ()))]
    for args, rows in ((["deployment", "ls"], [(d.id, d.full_name) for d in deps]),
                       (["flow-run", "ls"], [(r.id, r.name) for r in runs])):
        lines = visible_lines(in_terminal(cli_env, *args, columns=columns))
        assert all(len(line) <= columns for line in lines), (columns, lines)
        for full_id, name in rows:
            [line] = [line for line in lines if full_id[:8] in line]  # one line per row
            assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", line), (name, line)  # whole, on the id's line
            assert full_id not in line  # cut to 8 characters
        header = next(line for line in lines if line.lstrip().startswith(("flow/deployment", "id")))
        if args[0] == "flow-run":
            assert "state" in header  # the state stays; descriptive columns go first
    wide = ok(cli_env, "flow-run", "ls", "--wide")
    assert all(r.id in wide for r in runs)


def test_deployment_ls_schedule_column(cli_env, client):
    client.create_deployment("plain", flow_name="sched")
    client.create_deployment("paused", flow_name="sched", schedule={"interval": 3600}, is_schedule_active=False)
    client.create_deployment("active", flow_name="sched", schedule={"interval": 86400})
    out = ok(cli_env, "deployment", "ls")
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("sched/")}
    assert rows["sched/plain"].split() == ["sched/plain", rows["sched/plain"].split()[1]]  # no schedule, nothing
    assert "every 1h (paused)" in rows["sched/paused"]
    assert "every 1d" in rows["sched/active"] and "paused" not in rows["sched/active"]
    assert "True" not in out and "False" not in out


def test_colours_on_a_terminal_only(cli_env, client):
    client.create_deployment("d", flow_name="colours")
    run_of(client, "colours/d", states=("RUNNING", "COMPLETED"))
    run_of(client, "colours/d", states=("RUNNING", "FAILED"))
    coloured = in_terminal(cli_env, "flow-run", "ls", columns=120)
    assert "\x1b[32mCOMPLETED" in coloured and "\x1b[31mFAILED" in coloured
    plain = in_terminal({**cli_env, "NO_COLOR": "1"}, "flow-run", "ls", columns=120)
    assert "COMPLETED" in plain and "\x1b[" not in plain
    piped = ok(cli_env, "flow-run", "ls")
    assert "COMPLETED" in piped and "\x1b[" not in piped
    logged = client.create_flow_run(flow_name="colours", state="RUNNING")
    _log(client, logged, "careful", level=30)
    _log(client, logged, "broken", level=40)
    lines = in_terminal(cli_env, "flow-run", "logs", logged.id, columns=120)
    assert "\x1b[33mWARNING" in lines and "\x1b[31mERROR" in lines
    assert "\x1b[" not in in_terminal({**cli_env, "NO_COLOR": "1"}, "flow-run", "logs", logged.id, columns=120)


def test_json_keeps_whole_ids(cli_env, client):
    dep, _ = client.create_deployment("d", flow_name="ids")
    assert json.loads(ok(cli_env, "deployment", "ls", "--json"))[0]["id"] == dep.id
    assert dep.id in ok(cli_env, "deployment", "ls", "--wide")
    table = ok(cli_env, "deployment", "ls")
    assert dep.id[:8] in table and dep.id not in table


# -- flow-run logs --------------------------------------------------------------------------------

def _log(client, run, message: str, level: int = 20, at: dt.datetime | None = None):
    client.create_logs([{"flow_run_id": run.id, "timestamp": at or now(), "level": level,
                         "logger_name": "flowdeck.flow_run", "message": message}])


def test_logs_dates_head_tail_level_and_none_yet(cli_env, client):
    run = client.create_flow_run(flow_name="logged", state="RUNNING")
    out = ok(cli_env, "flow-run", "logs", run.name)
    assert out.strip() == f"No logs yet: flow run {run.name!r} is RUNNING."
    base = now() - dt.timedelta(minutes=1)
    for i, level in enumerate((10, 20, 30, 40)):
        _log(client, run, f"line {i}", level, base + dt.timedelta(seconds=i))
    lines = ok(cli_env, "flow-run", "logs", run.id).splitlines()
    assert len(lines) == 4
    stamp = base.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert lines[0].startswith(f"{stamp}.") and re.match(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| DEBUG    \| flowdeck\.flow_run - line 0$", lines[0]), lines[0]
    assert [line.rsplit(" - ", 1)[1] for line in ok(cli_env, "flow-run", "logs", run.id, "--head", "2").splitlines()] \
        == ["line 0", "line 1"]
    assert [line.rsplit(" - ", 1)[1] for line in ok(cli_env, "flow-run", "logs", run.id, "--tail", "1").splitlines()] \
        == ["line 3"]
    warned = ok(cli_env, "flow-run", "logs", run.id, "--level", "warning").splitlines()
    assert [line.rsplit(" - ", 1)[1] for line in warned] == ["line 2", "line 3"]
    for bad, why in ((["--level", "LOUD"], "invalid --level 'LOUD'"), (["--tail", "0"], "--tail must be at least 1")):
        res = cli(cli_env, "flow-run", "logs", run.id, *bad)
        assert res.returncode == 1 and res.stderr.strip().startswith("Error: ") and why in res.stderr
    client.set_flow_run_state(run.id, "COMPLETED")
    empty = client.create_flow_run(flow_name="logged", state="RUNNING")
    client.set_flow_run_state(empty.id, "COMPLETED")
    assert ok(cli_env, "flow-run", "logs", empty.id).strip() == f"Flow run {empty.name!r} has no logs (it ended COMPLETED)."


def _read_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    assert sel.select(timeout), "no output"
    return proc.stdout.readline()


def test_logs_follow_until_the_run_ends(cli_env, client):
    run = client.create_flow_run(flow_name="followed", state="RUNNING")
    _log(client, run, "before")
    follower = subprocess.Popen([str(BIN / "flowdeck"), "flow-run", "logs", run.id, "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env)
    try:
        assert _read_line(follower).rstrip().endswith("- before")
        _log(client, run, "during")
        assert _read_line(follower).rstrip().endswith("- during")
        _log(client, run, "last words")
        client.set_flow_run_state(run.id, "COMPLETED")
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert out.rstrip().endswith("- last words") and out.count("last words") == 1
    assert err.strip() == f"Flow run {run.name!r} ended COMPLETED."


# -- deployment run --------------------------------------------------------------------------------

@pytest.mark.parametrize("final, code", [("COMPLETED", 0), ("FAILED", 1)])
def test_run_watch_follows_the_run_and_exits_by_its_final_state(cli_env, client, final, code):
    client.create_deployment("d", flow_name="watched")
    watcher = subprocess.Popen([str(BIN / "flowdeck"), "deployment", "run", "watched/d", "--watch"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env)
    try:
        created = _read_line(watcher)
        run_id = re.search(r"\(([0-9a-f-]{36})\)", created).group(1)
        while "is SCHEDULED" not in _read_line(watcher):
            pass
        client.set_flow_run_state(run_id, "RUNNING")
        while "is RUNNING" not in _read_line(watcher):
            pass
        client.set_flow_run_state(run_id, final, message="the end")
        out, _ = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == code
    assert out.strip().splitlines()[-1].endswith(f"ended {final}: the end")


def test_run_start_in_start_at_and_params_from_a_file(cli_env, client, tmp_path):
    client.create_deployment("d", flow_name="later")
    before = now()
    out = ok(cli_env, "deployment", "run", "later/d", "--start-in", "1h30m")
    after = now()
    run = client.get_flow_run(re.search(r"\(([0-9a-f-]{36})\)", out).group(1))
    assert before + dt.timedelta(minutes=90) <= run.expected_start_time <= after + dt.timedelta(minutes=90)
    assert "It is scheduled for" in out
    out = ok(cli_env, "deployment", "run", "later/d", "--start-at", "2031-02-03T04:05:06+00:00")
    run = client.get_flow_run(re.search(r"\(([0-9a-f-]{36})\)", out).group(1))
    assert run.expected_start_time == dt.datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    (tmp_path / "p.json").write_text('{"day": "monday", "n": 3}')
    out = ok(cli_env, "deployment", "run", "later/d", "--params", f"@{tmp_path / 'p.json'}")
    run = client.get_flow_run(re.search(r"\(([0-9a-f-]{36})\)", out).group(1))
    assert run.parameters == {"day": "monday", "n": 3}
    for bad, why in ((["--start-in", "soon"], "invalid --start-in 'soon'"),
                     (["--start-at", "tomorrow"], "invalid --start-at 'tomorrow'"),
                     (["--params", "@missing.json"], "cannot read --params file 'missing.json'")):
        res = cli(cli_env, "deployment", "run", "later/d", *bad)
        errors = [line for line in res.stderr.splitlines() if line.startswith("Error: ")]
        assert res.returncode == 1 and len(errors) == 1 and why in errors[0], res.stderr


def test_run_warns_when_no_work_queue_matches(cli_env, client):
    client.create_deployment("d", flow_name="queued", tags=["prod"])
    res = cli(cli_env, "deployment", "run", "queued/d")
    assert res.returncode == 0
    assert "Warning: no work queue matches this run" in res.stderr and "--tag prod" in res.stderr
    q = client.create_work_queue("prod", tags=["prod"], is_paused=True)
    res = cli(cli_env, "deployment", "run", "queued/d")
    assert "the only work queues that match this run are paused ('prod')" in res.stderr
    client.update_work_queue(q.id, is_paused=False)
    res = cli(cli_env, "deployment", "run", "queued/d")
    assert res.returncode == 0 and "work queue" not in res.stderr, res.stderr
    client.create_work_queue("staging-only", tags=["staging"])
    client.update_work_queue(q.id, tags=["prod", "gpu"])
    assert "no work queue matches" in cli(cli_env, "deployment", "run", "queued/d").stderr


# -- flow ls, work-queue ls, deployment create ---------------------------------------------------

def test_flow_ls(cli_env, client):
    for name in ("beta", "alpha", "alphabet"):
        client.create_flow(name)
    assert [f["name"] for f in json.loads(ok(cli_env, "flow", "ls", "--json"))] == ["alpha", "alphabet", "beta"]
    assert [f["name"] for f in json.loads(ok(cli_env, "flow", "ls", "--json", "--name-prefix", "alpha"))] \
        == ["alpha", "alphabet"]
    table = ok(cli_env, "flow", "ls")
    assert re.search(r"^alphabet\s+[0-9a-f]{8}\s", table, re.M), table


def test_work_queue_ls_shows_late_and_running(cli_env, client):
    client.create_deployment("d", flow_name="counted", tags=["prod"])
    client.create_work_queue("prod", tags=["prod"])
    client.create_work_queue("other", tags=["other"])
    for _ in range(2):
        late = run_of(client, "counted/d", start=now() - dt.timedelta(minutes=3))
        client.set_flow_run_state(late.id, "SCHEDULED", name="Late")
    run_of(client, "counted/d", start=now() - dt.timedelta(minutes=3))  # due, not (yet) Late
    queues = {q["name"]: q for q in json.loads(ok(cli_env, "work-queue", "ls", "--json"))}
    assert (queues["prod"]["late_runs"], queues["other"]["late_runs"]) == (2, 0)
    table = ok(cli_env, "work-queue", "ls")
    assert re.search(r"^prod\s+[0-9a-f]{8}\s+2\s+0\s", table, re.M), table


def test_deployment_create_says_updating_for_an_update(cli_env, tmp_path):
    (tmp_path / "flow.py").write_text("from flowdeck import flow\n\n@flow\ndef greet(name: str = 'x'):\n    pass\n")
    (tmp_path / "d.yaml").write_text("name: hello\nflow_location: flow.py\n")
    env = dict(cli_env)
    first = subprocess.run([str(BIN / "flowdeck"), "deployment", "create", "d.yaml"], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=120)
    assert "Creating deployment 'hello' for flow 'greet'..." in first.stdout, first.stderr
    second = subprocess.run([str(BIN / "flowdeck"), "deployment", "create", "d.yaml"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=120)
    assert "Updating deployment 'hello' for flow 'greet'..." in second.stdout
    assert "Creating deployment" not in second.stdout


def test_storage_commands_take_the_short_id_a_table_shows(cli_env, client, tmp_path):
    block = client.create_storage_block(block_type="local", config={"path": str(tmp_path / "store")})
    short = block.id[:8]
    assert short in ok(cli_env, "storage", "ls")
    assert json.loads(ok(cli_env, "storage", "inspect", short, "--json"))["id"] == block.id
    res = cli(cli_env, "storage", "inspect", "ffffffff")
    assert res.returncode == 1 and "no storage block with an id starting 'ffffffff'" in res.stderr


# -- help ------------------------------------------------------------------------------------------

def _actions(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_and_argument_has_help():
    from flowdeck.cli.main import build_parser

    actions = list(_actions(build_parser(), "flowdeck"))
    assert len(actions) > 100  # the walk sees every command
    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in actions if not a.help]
    assert not missing, missing
