"""`flowdeck schedule preview`, run as the real console script against a real server."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import run_cli


@pytest.fixture
def cli(server, flowdeck_home):
    def run(*args):
        return run_cli(*args, env={"FLOWDECK_API_URL": server.address, "COLUMNS": "200"})

    return run


def lines_of(res):
    assert res.returncode == 0, res.stderr
    return [line.strip() for line in res.stdout.splitlines() if line.strip()]


def test_cron_preview_prints_local_times_with_offsets_across_dst(cli):
    res = cli("schedule", "preview", "--cron", "0 9 * * *", "--timezone", "Europe/Berlin",
              "--start", "2024-03-29T00:00", "-n", "4")
    out = lines_of(res)
    assert out[0] == "Next 4 times of cron '0 9 * * *' in Europe/Berlin:"
    assert out[1:] == [
        "Fri 2024-03-29 09:00:00+01:00  CET",
        "Sat 2024-03-30 09:00:00+01:00  CET",
        "Sun 2024-03-31 09:00:00+02:00  CEST",
        "Mon 2024-04-01 09:00:00+02:00  CEST",
    ]


def test_json_output_and_the_autumn_change(cli):
    # New York falls back on 2024-11-03: 01:30 happens twice, the cron fires once (the first)
    res = cli("schedule", "preview", "--cron", "30 1 * * *", "--timezone", "America/New_York",
              "--start", "2024-11-02T00:00", "-n", "3", "--json")
    doc = json.loads(res.stdout)
    assert doc["schedule"] == {"cron": "30 1 * * *", "timezone": "America/New_York"}
    assert doc["times"] == [
        {"local": "2024-11-02T01:30:00-04:00", "utc": "2024-11-02T05:30:00Z"},
        {"local": "2024-11-03T01:30:00-04:00", "utc": "2024-11-03T05:30:00Z"},
        {"local": "2024-11-04T01:30:00-05:00", "utc": "2024-11-04T06:30:00Z"},
    ]


def test_short_interval_is_exact_elapsed_time_through_the_autumn_change(cli):
    # Berlin 2024-10-27: 02:00-03:00 local happens twice; an hourly interval shows both
    res = cli("schedule", "preview", "--interval", "3600", "--timezone", "Europe/Berlin",
              "--start", "2024-10-27T01:00+02:00", "-n", "4", "--json")
    local = [t["local"] for t in json.loads(res.stdout)["times"]]
    assert local == ["2024-10-27T01:00:00+02:00", "2024-10-27T02:00:00+02:00",
                     "2024-10-27T02:00:00+01:00", "2024-10-27T03:00:00+01:00"]


def test_rrule_preview_and_utc_default(cli):
    out = lines_of(cli("schedule", "preview", "--rrule", "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9",
                       "--start", "2024-01-01T10:00:00Z", "-n", "3"))
    assert out[0].endswith("in UTC:")
    assert out[1:] == ["Wed 2024-01-03 09:00:00+00:00  UTC", "Mon 2024-01-08 09:00:00+00:00  UTC",
                       "Wed 2024-01-10 09:00:00+00:00  UTC"]


def test_bad_input_is_reported_without_a_traceback(cli):
    res = cli("schedule", "preview", "--cron", "0 9 * * *", "--timezone", "Mars/Base")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "schedule.cron.timezone" in res.stderr and "Mars/Base" in res.stderr
    res = cli("schedule", "preview", "--interval", "0")
    assert res.returncode == 1 and "schedule.interval.interval" in res.stderr
    res = cli("schedule", "preview", "--cron", "0 9 * * *", "-n", "0")
    assert res.returncode == 1 and "-n" in res.stderr
    res = cli("schedule", "preview", "--cron", "0 9 * * *", "--start", "yesterday")
    assert res.returncode == 1 and "--start" in res.stderr and "Traceback" not in res.stderr
    res = cli("schedule", "preview")  # one of --cron/--interval/--rrule is required
    assert res.returncode == 2


def test_deployment_ls_shows_the_next_run(cli, client):
    client.create_deployment("d", flow_name="f", schedule={"interval": 3600})
    listed = json.loads(cli("deployment", "ls", "--json").stdout)
    upcoming = client.list_upcoming_runs(deployment_name="f/d")
    assert listed[0]["next_run_time"] is not None
    assert listed[0]["next_run_time"].replace("Z", "+00:00") == upcoming[0].expected_start_time.isoformat()


def test_schedule_cmd_imports_only_the_standard_library():
    code = (
        "import sys; import flowdeck.cli.schedule_cmd;"
        "heavy = [m for m in ('grpc', 'google.protobuf', 'sqlalchemy', 'pydantic', 'croniter', 'dateutil')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
