"""Who holds a run (agent and lease expiry), for `flow-run inspect` and
`deployment inspect`."""
from __future__ import annotations

from flowdeck.cli import output
from flowdeck.cli.output import Column


def lease_line(run) -> str:
    lease = run.lease
    if lease is None:
        if run.state.type in ("PENDING", "RUNNING"):
            return "not held by an agent"
        return ""
    who = lease.agent_name or "?"
    return (f"held by agent {who} ({lease.agent_id}) until {output.when(lease.expire_time)}"
            f" (lease {lease.lease_id}, fencing token {lease.fencing_token})")


def print_run_lease(run) -> None:
    line = lease_line(run)
    if line:
        output.console().print(f"Lease: {line}", highlight=False)


def print_deployment_leases(client, dep) -> None:
    """The deployment's runs that agents hold right now."""
    runs = client.list_flow_runs(deployment_id=dep.id, state_types=["PENDING", "RUNNING"], limit=100)
    if not runs:
        output.console().print("No runs of this deployment are held by an agent.", highlight=False)
        return
    output.table(
        "Runs held by agents",
        [Column("flow run", "key"), Column("id", "id"), Column("state", "fixed"), Column("agent", "text", drop=2),
         Column("lease expires", "fixed", drop=1)],
        [(r.name, r.id, output.state_text(r.state), (r.lease.agent_name if r.lease else "(none)"),
          output.stamp(r.lease.expire_time) if r.lease else "") for r in runs],
    )
