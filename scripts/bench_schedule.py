#!/usr/bin/env python
"""Scheduler benchmark (`scripts/bench.py schedule`, or run this file directly).

Creates N deployments (default 10,000) with a mix of interval and cron
schedules on a fresh Postgres database (inserted in bulk: setup is not what is
measured), then times the real scheduler pass (flowdeck.server.scheduler.
run_scheduler_pass) bringing all of them to a 10-run horizon, a steady-state
pass with nothing to add, and a pass one minute later (the minutely schedules
top up by one run each). Reports the process's peak memory (ru_maxrss).

    .venv/bin/python scripts/bench_schedule.py [--deployments 10000] [--runs 10]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--json]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
import uuid

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"

INTERVALS = [60, 300, 900, 3600, 6 * 3600, 86400]
CRONS = [
    ("*/5 * * * *", None),
    ("0 * * * *", None),
    ("0 9 * * 1-5", "Europe/Berlin"),
    ("30 2 * * *", "America/New_York"),
    ("15 */2 * * *", "Asia/Tokyo"),
    ("0 0 * * *", "UTC"),
]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deployments", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=10, help="the horizon: runs per deployment")
    p.add_argument("--database-url", default=os.environ.get("FLOWDECK_BENCH_POSTGRES_URL", DEFAULT_PG),
                   help="a Postgres server; a fresh database is made on it and dropped afterwards")
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def _fresh_database(url: str) -> tuple[str, callable]:
    from sqlalchemy import create_engine, text

    from flowdeck.server.db import make_url_sync

    base = make_url_sync(url)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"flowdeck_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{base.rpartition('/')[0]}/{name}", drop


def _setup(db, n: int, now: dt.datetime) -> None:
    """Bulk-insert flows and deployments (validated schedules, as the API stores them)."""
    from sqlalchemy import insert

    from flowdeck.schedules import CronSchedule, IntervalSchedule
    from flowdeck.server.models import DeploymentRow, FlowRow

    schedules = [IntervalSchedule(interval=s).to_dict() for s in INTERVALS]
    schedules += [CronSchedule(cron=c, timezone=tz).to_dict() for c, tz in CRONS]
    flows = [dict(id=str(uuid.uuid4()), name=f"bench-flow-{i}", created=now, updated=now) for i in range(100)]
    deps = []
    for i in range(n):
        deps.append(dict(
            id=str(uuid.uuid4()), flow_id=flows[i % len(flows)]["id"], name=f"dep-{i}", description="",
            flow_data_encoding="", flow_data_blob="", schedule=schedules[i % len(schedules)],
            is_schedule_active=True, parameters={"i": i, "region": "eu"}, tags=["bench", f"t{i % 10}"],
            flow_runner_type="universal", flow_runner_config={}, catchup=False, created=now, updated=now,
        ))
    with db.write() as s:
        conn = s.connection()
        conn.execute(insert(FlowRow.__table__), flows)
        for i in range(0, len(deps), 2000):
            conn.execute(insert(DeploymentRow.__table__), deps[i:i + 2000])


def bench_schedule(args) -> dict:
    from sqlalchemy import text

    from flowdeck.server import scheduler
    from flowdeck.server.db import Database
    from flowdeck.server.settings import Settings

    url, drop = _fresh_database(args.database_url)
    db = Database(url, threads=2)
    out: dict = {"deployments": args.deployments, "horizon_runs": args.runs}
    try:
        db.migrate()
        # A whole minute plus 5 s: no slot of these schedules falls in the next second.
        now = dt.datetime.now(dt.timezone.utc).replace(second=5, microsecond=0)
        t = time.perf_counter()
        _setup(db, args.deployments, now)
        out["setup_s"] = round(time.perf_counter() - t, 2)
        settings = Settings(database_url=url, scheduler_max_runs=args.runs, scheduler_min_runs=3,
                            scheduler_max_days=100)
        out["peak_rss_mb_before_pass"] = round(_peak_mb(), 1)

        t = time.perf_counter()
        out["pass_created"] = scheduler.run_scheduler_pass(db, settings, now)
        out["pass_s"] = round(time.perf_counter() - t, 2)
        out["peak_rss_mb_after_pass"] = round(_peak_mb(), 1)

        t = time.perf_counter()
        out["steady_created"] = scheduler.run_scheduler_pass(db, settings, now + dt.timedelta(seconds=1))
        out["steady_s"] = round(time.perf_counter() - t, 3)

        t = time.perf_counter()
        out["next_minute_created"] = scheduler.run_scheduler_pass(db, settings, now + dt.timedelta(minutes=1))
        out["next_minute_s"] = round(time.perf_counter() - t, 2)

        t = time.perf_counter()
        with db.write() as s:
            out["late_marked"] = scheduler.mark_late_runs(s, settings, now + dt.timedelta(minutes=1, seconds=10))
        out["late_s"] = round(time.perf_counter() - t, 3)

        with db.read() as s:
            out["runs_total"] = s.scalar(text("SELECT count(*) FROM flow_runs"))
            out["duplicate_slots"] = s.scalar(text(
                "SELECT count(*) FROM (SELECT 1 FROM flow_runs GROUP BY deployment_id, expected_start_time"
                " HAVING count(*) > 1) d"))
            out["state_rows"] = s.scalar(text("SELECT count(*) FROM flow_run_states"))
        out["peak_rss_mb"] = round(_peak_mb(), 1)
    finally:
        db.close()
        if not args.keep:
            drop()
        else:
            out["database_url"] = url
    return out


def report(out: dict, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(out, indent=2))
        return
    n = out["deployments"]
    print(f"scheduler benchmark: {n:,} deployments (intervals and crons), {out['horizon_runs']}-run horizon, Postgres")
    print(f"  setup (bulk insert, not timed as the pass)  {out['setup_s']:>8.2f} s")
    print(f"  full pass: {out['pass_created']:,} runs created      {out['pass_s']:>8.2f} s   (aim < 10 s)")
    print(f"  steady-state pass: {out['steady_created']} created        {out['steady_s']:>8.3f} s   (aim < 1 s)")
    print(f"  pass one minute later: {out['next_minute_created']:,} created   {out['next_minute_s']:>8.2f} s")
    print(f"  late marking: {out['late_marked']:,} runs                {out['late_s']:>8.3f} s")
    print(f"  runs {out['runs_total']:,}, state rows {out['state_rows']:,}, duplicate slots {out['duplicate_slots']}")
    print(f"  peak RSS: {out['peak_rss_mb_before_pass']} MB before the pass, {out['peak_rss_mb_after_pass']} MB after"
          f" (process peak {out['peak_rss_mb']} MB)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    report(bench_schedule(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
