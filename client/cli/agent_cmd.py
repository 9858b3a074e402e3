"""`flowdeck agent ...` (only stdlib at import time)."""
from __future__ import annotations


def register(subparsers) -> None:
    agent = subparsers.add_parser("agent", help="run an agent that executes flow runs from work queues")
    sub = agent.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("start", help="lease and run flow runs from work queues until stopped (SIGTERM/Ctrl-C)")
    p.add_argument("--work-queue", "-q", dest="work_queues", action="append", required=True, metavar="NAME",
                   help="a work queue to serve (repeatable)")
    p.add_argument("--limit", type=int, default=None, help="how many runs to hold at once (default 10)")
    p.add_argument("--name", default=None, help="the agent's name (default HOST-PID)")
    p.add_argument("--api-url", default=None, help="the server (default $FLOWDECK_API_URL)")
    p.add_argument("--shutdown-grace", type=float, default=None, metavar="SECONDS",
                   help="on SIGTERM, how long running flows get to finish (default 30)")
    p.add_argument("--cancel-grace", type=float, default=None, metavar="SECONDS",
                   help="on cancel, how long a flow gets between SIGTERM and SIGKILL (default 10)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="log lines as text (default) or one JSON object per line")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0 picks a free port; "
                        "FLOWDECK_AGENT_METRICS_HOST binds another address)")
    p.set_defaults(func="flowdeck.cli.agent_cmd:start")


def start(args) -> int:
    import os
    import sys

    if not (args.api_url or os.environ.get("FLOWDECK_API_URL")):
        print("Error: an agent needs a running server: set FLOWDECK_API_URL (e.g. 127.0.0.1:4300) "
              "or pass --api-url", file=sys.stderr)
        return 1
    # The agent forks flow processes while gRPC threads run; gRPC's fork
    # handlers are not needed (children never use the parent's channels).
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    from flowdeck.agent.agent import AgentSettings, main

    if args.limit is not None and args.limit < 1:
        print(f"Error: --limit must be at least 1, not {args.limit}", file=sys.stderr)
        return 1
    # A bad setting is an InvalidArgumentError naming it: the CLI prints it in one line.
    settings = AgentSettings.from_env(api_url=args.api_url, work_queues=args.work_queues, limit=args.limit,
                                      name=args.name, shutdown_grace=args.shutdown_grace,
                                      cancel_grace=args.cancel_grace, metrics_port=args.metrics_port)
    return main(settings, args.log_level, args.log_format)
