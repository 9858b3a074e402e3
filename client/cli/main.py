"""`flowdeck` command line. Only argparse is imported at start; each command
imports what it needs when it runs (so `flowdeck --help` stays fast)."""
from __future__ import annotations

import argparse
import sys


def add_list_flags(p: argparse.ArgumentParser) -> None:
    """--json, --limit and --all: what every `ls` takes."""
    p.add_argument("--json", action="store_true", help="print plain JSON for scripts")
    p.add_argument("--limit", type=int, default=50, help="show at most N (default 50)")
    p.add_argument("--all", action="store_true", help="page through everything")


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
    start.add_argument("--database-url", default=None, help="e.g. postgresql+psycopg://user@host/db")
    start.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
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
    p.add_argument("name", metavar="NAME")
    p.add_argument("--database-url", default=None, help="default: FLOWDECK_DATABASE_URL, else SQLite under $FLOWDECK_HOME")
    p.set_defaults(func="flowdeck.cli.server_cmd:create_admin_key")

    # deployment
    dep = top.add_parser("deployment", help="create, inspect and run deployments")
    dsub = dep.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = dsub.add_parser("ls", help="list deployments")
    p.add_argument("--flow-name", default="", help="only this flow's deployments")
    p.add_argument("--tag", action="append", default=[], help="only deployments with this tag")
    add_list_flags(p)
    p.set_defaults(func="flowdeck.cli.deployment_cmd:ls")
    p = dsub.add_parser("inspect", help="show every property of a deployment")
    p.add_argument("name", metavar="FLOW/DEPLOYMENT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="flowdeck.cli.deployment_cmd:inspect")
    p = dsub.add_parser("delete", help="delete a deployment")
    p.add_argument("name", metavar="FLOW/DEPLOYMENT")
    p.set_defaults(func="flowdeck.cli.deployment_cmd:delete")
    for verb, active in (("pause-schedule", False), ("resume-schedule", True)):
        p = dsub.add_parser(verb, help=f"{'pause' if not active else 'resume'} a deployment's schedule")
        p.add_argument("name", metavar="FLOW/DEPLOYMENT")
        p.set_defaults(func="flowdeck.cli.deployment_cmd:set_schedule_active", active=active)
    p = dsub.add_parser("create", help="create or update deployments from a .py or .yaml spec file")
    p.add_argument("path", metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="validate and show what would change; change nothing")
    p.set_defaults(func="flowdeck.cli.deployment_create:create")
    for verb, text in (("run", "create a flow run from a deployment (an agent runs it)"),
                       ("execute", "run a deployment's flow here and now, tracked like any run")):
        p = dsub.add_parser(verb, help=text)
        p.add_argument("name", metavar="FLOW/DEPLOYMENT")
        p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter value, read by the parameter's type (repeatable)")
        p.add_argument("--params", default=None, metavar="JSON", help="parameter values as a JSON object")
        p.set_defaults(func=f"flowdeck.cli.deployment_create:{verb}")

    # flow-run
    fr = top.add_parser("flow-run", help="list and inspect flow runs")
    fsub = fr.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = fsub.add_parser("ls", help="list flow runs, newest first")
    p.add_argument("--flow-name", default="")
    p.add_argument("--deployment", default="", metavar="FLOW/DEPLOYMENT")
    p.add_argument("--state", action="append", default=[], metavar="TYPE", help="e.g. COMPLETED (repeatable)")
    p.add_argument("--tag", action="append", default=[])
    add_list_flags(p)
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:ls")
    p = fsub.add_parser("inspect", help="show a flow run by id or name")
    p.add_argument("run", metavar="ID_OR_NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:inspect")
    p = fsub.add_parser("logs", help="print a flow run's logs")
    p.add_argument("run", metavar="ID_OR_NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:logs")
    p = fsub.add_parser("cancel", help="cancel a flow run")
    p.add_argument("run", metavar="ID_OR_NAME")
    p.set_defaults(func="flowdeck.cli.flow_run_cmd:cancel")
    p = fsub.add_parser("delete", help="delete a flow run")
    p.add_argument("run", metavar="ID_OR_NAME")
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


def main(argv: list[str] | None = None) -> int:
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
