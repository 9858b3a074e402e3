"""The flow process an agent starts for one leased run:

    python -m flowdeck.agent.run_flow --flow-run-id ID --fencing-token N --api-url HOST:PORT [--leased-run-stdin]

With --leased-run-stdin the agent's LeasedRun message (flow run, deployment,
flow_data, storage config) is read from stdin; otherwise the run and its
deployment are fetched from the API. The flow is loaded with
`flowdeck.flow_data.load_flow` and run with `flowdeck.engine.execute_flow_run`
(parameters validated, RUNNING -> COMPLETED/FAILED, logs shipped), every report
carrying the fencing token.

Exit status: 0 COMPLETED, 1 FAILED (or the flow could not be loaded), 3 the
lease was lost (a report was refused, or FLOWDECK_LEASE_CHECK_SECONDS is set
and the check found the lease gone: `flowdeck.agent.lease_watch`), 2 usage.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

# The client in a flow process rides out a short server outage (restart):
# UNAVAILABLE is retried six times with backoff (about 36 s), reusing the
# request id so nothing applies twice.
CLIENT_RETRIES = 6


def _load(flow_data, client, leased):
    from flowdeck.core.structs import struct_dict
    from flowdeck.flow_data import load_flow

    storage_config = None
    if leased is not None and (leased.storage_type or leased.storage_config.fields):
        # The storage block's config with its secrets, from the lease.
        storage_config = struct_dict(leased.storage_config)
    return load_flow(flow_data, client, storage_config=storage_config)


def _report_failure(client, run_id: str, token: int, message: str) -> None:
    from flowdeck.models import LogRecord

    try:
        client.create_logs([LogRecord(flow_run_id=run_id, timestamp=dt.datetime.now(dt.timezone.utc), level=40,
                                      logger_name="flowdeck.agent", message=message)])
    except Exception:  # noqa: BLE001 - the state below carries the message anyway
        pass
    client.set_flow_run_state(run_id, "FAILED", message=message[:2000], fencing_token=token)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flowdeck.agent.run_flow")
    ap.add_argument("--flow-run-id", default=os.environ.get("FLOWDECK_FLOW_RUN_ID", ""))
    ap.add_argument("--fencing-token", type=int, default=int(os.environ.get("FLOWDECK_FENCING_TOKEN", "0") or 0))
    ap.add_argument("--api-url", default=os.environ.get("FLOWDECK_API_URL", ""))
    ap.add_argument("--leased-run-stdin", action="store_true")
    args = ap.parse_args(argv)
    if not args.flow_run_id or not args.api_url:
        print("flowdeck.agent.run_flow: --flow-run-id and --api-url are required", file=sys.stderr)
        return 2

    from flowdeck.client import FlowdeckClient
    from flowdeck.client._convert import flow_data_from_pb, flow_run_from_pb
    from flowdeck.exceptions import FlowdeckError

    leased = None
    if args.leased_run_stdin:
        from flowdeck.v1 import agent_service_pb2 as apb

        leased = apb.LeasedRun.FromString(sys.stdin.buffer.read())
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the flow gets an empty stdin
    from flowdeck.agent.runners import channel
    from flowdeck.core import telemetry

    # Before the client's channel: the flow process's spans continue the agent's trace.
    trace = telemetry.process_span("flowdeck-flow-run", "flowdeck.flow_run", {"flowdeck.flow_run.id": args.flow_run_id})
    client = FlowdeckClient(args.api_url, retries=CLIENT_RETRIES, channel=channel(args.api_url))
    token = args.fencing_token
    from flowdeck.agent import lease_watch

    if token and lease_watch.interval_from_env():
        lease_watch.start(client, args.flow_run_id, token, lease_watch.interval_from_env())
    try:
        if leased is not None and leased.flow_run.id == args.flow_run_id:
            flow_run = flow_run_from_pb(leased.flow_run)
            flow_data = flow_data_from_pb(leased.flow_data)
        else:
            flow_run = client.get_flow_run(args.flow_run_id)
            if not flow_run.deployment_id:
                _report_failure(client, flow_run.id, token, "the flow run has no deployment to load the flow from")
                return 1
            flow_data = client.get_deployment(flow_run.deployment_id).flow_data
        try:
            flow = _load(flow_data, client, leased)
        except Exception as e:  # noqa: BLE001 - any load error is the run's failure
            _report_failure(client, flow_run.id, token,
                            f"could not load the flow from flow_data ({flow_data.encoding}): {type(e).__name__}: {e}")
            return 1
        from flowdeck.engine import execute_flow_run

        state = execute_flow_run(client, flow_run, flow, fencing_token=token)
        return 0 if state is not None and state.type == "COMPLETED" else 1
    except FlowdeckError as e:
        print(f"flowdeck: flow run {args.flow_run_id}: {e.message}", file=sys.stderr)
        return 3 if getattr(e, "code", "") == "FAILED_PRECONDITION" else 1
    finally:
        client.close()
        trace.close()


if __name__ == "__main__":
    sys.exit(main())
