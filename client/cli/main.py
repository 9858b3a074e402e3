"""`flowdeck` command line. Only argparse is imported at start; each command
imports what it needs when it runs (so `flowdeck --help` stays fast)."""
from __future__ import annotations

import argparse
import sys

from flowdeck.core import states  # pure Python: the help text lists the states


def add_list_flags(p: argparse.ArgumentParser) -> None:
    """--json, --limit, --all and --wide: what every `ls` takes."""
    p.add_argument("--json", action="store_true", help="print plain JSON for scripts")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="show at most N (default 50)")
    p.add_argument("--all", action="store_true", help="page through everything")
    add_wide_flag(p)


def add_wide_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wide", action="store_true", help="whole ids and every column, however wide the terminal")


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print plain JSON for scripts")


DEPLOYMENT_HELP = "the deployment, as its flow's name and its own: etl/daily"
RUN_HELP = "the run's id, or its name (the newest run of that name)"
# What `flow-run ls --state` takes: the state types, and LATE (SCHEDULED runs named Late).
RUN_STATES = (*states.ALL, "LATE")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowdeck", description="flowdeck: deploy, schedule and run Python flows."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    top = parser.add_subparsers(dest="group", metavar="COMMAND")

    # server
    server = top.add_parser("server", help="run the flowdeck server")
    ssub = server.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start = ssub.add_parser("start", help="start the server (SQLite under $FLOWDECK_HOME by default)")
    start.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    start.add_argument("--port", type=int, default=None, help="port (default 4300; 0 picks a free one)")
    start.add_argument("--database-url", default=None, metavar="URL",
                       help="postgresql://user@host:5432/db or sqlite:///path (default: SQLite under $FLOWDECK_HOME)")
    start.add_argument("--log-level", default=None, metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    start.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler loop")
    start.add_argument("--tls-cert", default=None, metavar="FILE", help="serve TLS with this PEM certificate chain")
    start.add_argument("--tls-key", default=None, metavar="FILE", help="the certificate's PEM private key")
    start.add_argument("--tls-client-ca", default=None, metavar="FILE",
                       help="mutual TLS: clients must present a certificate signed by this CA")
    start.add_argument("--auth", action="store_true", default=None,
                       help="require API keys (see `flowdeck server create-admin-key`)")
    start.add_argument("--ui-port", type=int, default=None,
                       help="HTTP port of the web dashboard and /metrics (default 4301, or a free one with "
                            "--port 0; FLOWDECK_UI_PORT)")
    start.add_argument("--no-ui", action="store_true", help="do not serve the web dashboard")
    start.add_argument("--no-metrics", action="store_true",
                       help="do not serve Prometheus metrics at /metrics on the dashboard's port")
    start.add_argument("--metrics-public", action="store_true", default=None,
                       help="with --auth, let anyone scrape /metrics (default: an API key is needed)")
    start.add_argument("--log-format", default=None, choices=["text", "json"],
                       help="log lines as text (default) or one JSON object per line (FLOWDECK_LOG_FORMAT)")
    start.set_defaults(func="flowdeck.cli.server_cmd:start")
    p = ssub.add_parser("create-admin-key", help="make an admin API key in the server's database directly "
                                                 "(prints the key once)")
    p.add_argument("name", metavar="NAME", help="the key's name (shown in logs and `api-key ls`)")
    p.add_argument("--database-url", default=None, metavar="URL",
                   help="default: FLOWDECK_DATABASE_URL, else SQLite under $FLOWDECK_HOME")
    p.set_defaults(func="flowdeck.cli.server_cmd:create_admin_key")

    # flow
    fl = top.add_parser("flow", help="list flows")
    flsub = fl.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = flsub.add_parser("ls", help="list flows, by name")
    p.add_argument("--name-prefix", default="", metavar="PREFIX", help="only flows whose name starts so")
    add_list_flags(p)
    p.set_defaults(func="flowdeck.cli.flow_cmd:ls")

    # deployment
    dep = top.add_parser("deployment", help="create, inspect and run deployments")
    dsub = dep.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = dsub.add_parser("ls", help="list deployments")
    p.add_argument("--flow-name", default="", metavar="FLOW", help="only this flow's deployments")
    p.add_argument("--tag", action="append", default=[], help="only deployments with this tag (repeatable)")
    add_list_flags(p)
    p.set_defaults(func="flowdeck.cli.deployment_cmd:ls")
    p = dsub.add_parser("inspect", help="show every property of a deployment")
    p.add_argument("name", metavar="FLOW/DEPLOYMENT", help=DEPLOYMENT_HELP)
    add_json_flag(p)
    p.set_defaults(func="flowdeck.cli.deployment_cmd:inspect")
    p = dsub.add_parser("delete", help="delete a deployment")
    p.add_argument("name", metavar="FLOW/DEPLOYMENT", help=DEPLOYMENT_HELP)
    p.set_defaults(func="flowdeck.cli.deployment_cmd:delete")
    for verb, active in (("pause-schedule", False), ("resume-schedule", True)):
        p = dsub.add_parser(verb, help=f"{'pause' if not active else 'resume'} a deployment's schedule")
        p.add_argument("name", metavar="FLOW/DEPLOYMENT", help=DEPLOYMENT_HELP)
        p.set_defaults(func="flowdeck.cli.deployment_cmd:set_schedule_active", active=active)
    p = dsub.add_parser("create", help="create or update deployments from a .py or .yaml spec file")
    p.add_argument("path", metavar="FILE", help="a Python script that makes DeploymentSpecs, or a YAML file")
    p.add_argument("--dry-run", action="store_true", help="validate and show what would change; change nothing")
    p.set_defaults(func="flowdeck.cli.deployment_create:create")
    for verb, text in (("run", "create a flow run from a deployment (an agent runs it)"),
                       ("execute", "run a deployment's flow here and now, tracked like any run")):
        p = dsub.add_parser(verb, help=text)
        p.add_argument("name", metavar="FLOW/DEPLOYMENT", help=DEPLOYMENT_HELP)
        p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter value, read by its type in the deployment's parameter schema "
                            "(repeatable)")
        p.add_argument("--params", default=None, metavar="JSON|@FILE",
                       help="parameter values as a JSON object, or @file.json to read them from a file")
        p.set_defaults(func=f"flowdeck.cli.deployment_create:{verb}")
    run_p = dsub.choices["run"]
    when = run_p.add_mutually_exclusive_group()
    when.add_argument("--start-in", default=None, metavar="DURATION",
                      help="schedule the run this long from now: 90s, 10m, 2h, 1d, 1h30m")
    when.add_argument("--start-at", default=None, metavar="ISO",
                      help="schedule the run at this time, e.g. 2030-01-01T09:00 (local time without an offset)")
    run_p.add_argument("--watch", action="store_true",
                       help="follow the run until it ends; exit 0 if it COMPLETED, else 1")

    # flow-run
    fr = top.add_parser("flow-run", help="list and inspect flow runs")
    fsub = fr.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = fsub.add_parser("ls", help="list the runs that have started or are due, newest first",
                        description="List flow runs. By default the runs that have started or are due, "
                                    "newest first; --upcoming lists the scheduled runs still to come, "
                                    "soonest first.")
    p.add_argument("--upcoming", action="store_true", help="the SCHEDULED runs still to come, soonest first")
    p.add_argument("--flow-name", default="", metavar="FLOW", help="only runs of this flow")
    p.add_argument("--deployment", default="", metavar="FLOW/DEPLOYMENT", help="only runs of this deployment")
    p.add_argument("--state", action="append", default=[], metavar="STATE",
                   help=f"only runs in this state (repeatable): {', '.join(RUN_STATES)}")
    p.add_argument("--late", action="store_true", help="only Late runs (same as --state LATE)")
    p.add_argument("--tag", action="append", default=[], help="only runs with this tag (repeatable)")
    add_list_flags(p)
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:ls")
    p = fsub.add_parser("inspect", help="show a flow run by id or name")
    p.add_argument("run", metavar="ID_OR_NAME", help=RUN_HELP)
    add_json_flag(p)
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:inspect")
    p = fsub.add_parser("logs", help="print a flow run's logs")
    p.add_argument("run", metavar="ID_OR_NAME", help=RUN_HELP)
    add_json_flag(p)
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing new lines while the run goes on; stop when it ends")
    ends = p.add_mutually_exclusive_group()
    ends.add_argument("--head", type=int, default=None, metavar="N", help="only the first N lines")
    ends.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N lines")
    p.add_argument("--level", default=None, metavar="LEVEL",
                   help="only lines at this level or above: DEBUG, INFO, WARNING, ERROR, CRITICAL")
    p.set_defaults(func="flowdeck.cli.flow_run_logs:logs")
    p = fsub.add_parser("cancel", help="cancel a flow run")
    p.add_argument("run", metavar="ID_OR_NAME", help=RUN_HELP)
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:cancel")
    p = fsub.add_parser("delete", help="delete a flow run")
    p.add_argument("run", metavar="ID_OR_NAME", help=RUN_HELP)
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:delete")

    for extend in EXTENSIONS:
        _resolve(extend)(top)
    return parser


# Modules that add command groups: "module:function(subparsers)".
EXTENSIONS: list[str] = [
    "flowdeck.cli.schedule_cmd:register",
    "flowdeck.cli.storage_cmd:register",
    "flowdeck.cli.work_queue_cmd:register",
    "flowdeck.cli.agent_cmd:register",
    "flowdeck.cli.api_key_cmd:register",
    "flowdeck.cli.image_cmd:register",
]


def _resolve(spec: str):
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def quiet_grpc() -> None:
    """gRPC's C core logs to stderr on its own (`E1129 ... add_port.cc`,
    `I1129 ... Handshake failed`); flowdeck says what matters in its own words.
    GRPC_VERBOSITY (DEBUG, INFO, ERROR) set by the user brings them back. Read
    when grpc loads, so set before anything imports it."""
    import os

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def main(argv: list[str] | None = None) -> int:
    quiet_grpc()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("flowdeck"))
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from flowdeck.exceptions import FlowdeckError

    try:
        code = _resolve(args.func)(args)
    except FlowdeckError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
