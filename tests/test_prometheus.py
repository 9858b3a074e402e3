"""A real Prometheus scrapes a real server and a real agent while one run
completes and another fails; its HTTP API must show the counters, the
histograms and the gauges with the right values. The alert rules shipped in
docs/prometheus pass `promtool check rules` and evaluate without errors, and
every metric the Grafana dashboard and the rules name is one the server or
the agent serves.
"""
from __future__ import annotations

import json
import re
import subprocess

from support.processes import ServerProcess
from support.prometheus import PROMTOOL, Prometheus, require
from support.waiting import wait_for_state, wait_until
from test_agent_e2e import AgentProcess
from conftest import ROOT

ALERTS = ROOT / "docs" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "docs" / "grafana" / "flowdeck.json"

FLOWS = '''
from flowdeck import flow


@flow
def fine():
    return "ok"


@flow
def broken():
    raise RuntimeError("this flow fails on purpose")
'''


def metrics_url(text: str) -> str:
    m = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", text)
    return m.group(1)[len("http://"):] if m else ""


def test_alert_rules_pass_promtool_and_fire_as_their_unit_tests_say():
    promtool = require(PROMTOOL)
    r = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout
    # docs/prometheus/alerts_test.yml: series in, which alerts fire when.
    r = subprocess.run([promtool, "test", "rules", ALERTS.with_name("alerts_test.yml").name],
                       capture_output=True, text=True, timeout=60, cwd=ALERTS.parent)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def _expressions() -> list[str]:
    import yaml

    rules = [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return rules + [t["expr"] for p in panels for t in p.get("targets", [])]


def test_prometheus_scrapes_server_and_agent(tmp_path):
    require("/usr/bin/prometheus")
    (tmp_path / "flows.py").write_text(FLOWS)
    server = ServerProcess(tmp_path / "server", database_url=f"sqlite:///{tmp_path / 'flowdeck.db'}",
                           env={"FLOWDECK_METRICS_REFRESH_SECONDS": "1"})
    server.start()
    agent = prom = None
    try:
        server_target = wait_until(lambda: metrics_url(server.output()), "the server's metrics line")
        from flowdeck.client import FlowdeckClient
        from flowdeck.flow_data import file_flow_data

        client = FlowdeckClient(server.address, timeout=20)
        client.create_work_queue("main")
        deps = {name: client.create_deployment(name, flow_name=name, flow_data=file_flow_data(
            tmp_path / "flows.py", name))[0] for name in ("fine", "broken")}
        agent = AgentProcess(tmp_path, server.address, "main", "scraped", limit=2, FLOWDECK_AGENT_METRICS_PORT="0")
        agent_target = wait_until(lambda: metrics_url(agent.log()), lambda: f"the agent's metrics line:\n{agent.log()}")
        prom = Prometheus(tmp_path / "prometheus", {"flowdeck-server": server_target, "flowdeck-agent": agent_target},
                          rule_files=[ALERTS]).start()
        wait_until(lambda: prom.query("up") == {(("instance", server_target), ("job", "flowdeck-server")): 1.0,
                                              (("instance", agent_target), ("job", "flowdeck-agent")): 1.0},
                   lambda: f"both targets up: {prom.query('up')}\n{prom.log()}", every=0.5)

        runs = {name: client.create_flow_run_from_deployment(deployment_id=dep.id) for name, dep in deps.items()}
        wait_for_state(client, runs["fine"].id, "COMPLETED")
        wait_for_state(client, runs["broken"].id, "FAILED")

        expected = {
            'flowdeck_flow_runs_finished_total{state="COMPLETED", work_queue="main"}': 1,
            'flowdeck_flow_runs_finished_total{state="FAILED", work_queue="main"}': 1,
            'flowdeck_flow_runs_started_total{work_queue="main"}': 2,
            'flowdeck_flow_runs_leased_total{work_queue="main"}': 2,
            "flowdeck_flow_runs_created_total": 2,
            "flowdeck_dispatch_latency_seconds_count": 2,
            'flowdeck_grpc_server_handled_total{grpc_method="CreateFlowRunFromDeployment", grpc_code="OK"}': 2,
            # RUNNING and the final state, for each run.
            'flowdeck_grpc_server_handling_seconds_count{grpc_method="SetFlowRunState"}': 4,
            'flowdeck_flow_runs{state="RUNNING"}': 0,
            'flowdeck_lease_streams_open{work_queue="main"}': 1,
            "flowdeck_agents_connected": 1,
            'flowdeck_agent_runs_finished_total{outcome="completed"}': 1,
            'flowdeck_agent_runs_finished_total{outcome="failed"}': 1,
            "flowdeck_agent_runs_started_total": 2,
            "flowdeck_agent_flow_start_seconds_count": 2,
            "flowdeck_agent_runs_held": 0,
        }
        seen = {}

        def all_there():
            seen.update({expr: prom.value(expr) for expr in expected})
            return seen == expected

        wait_until(all_there, lambda: f"the expected values in Prometheus, got {seen}", every=0.5)
        # The histogram's buckets are there: a p99 of the API latency per method
        # (over all calls so far; a rate needs more samples than this test waits for).
        p99 = prom.query("histogram_quantile(0.99, sum by (grpc_method, le) "
                         "(flowdeck_grpc_server_handling_seconds_bucket))")
        assert 0 < p99[(("grpc_method", "SetFlowRunState"),)] <= 30
        assert prom.value("flowdeck_dispatch_latency_seconds_bucket{le='+Inf'}") == 2
        assert prom.value("process_resident_memory_bytes{job='flowdeck-server'}") > 0
        assert prom.value("process_open_fds{job='flowdeck-agent'}") > 0

        # The shipped rules loaded and evaluate without errors.
        def rules_evaluated():
            rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
            return len(rules) == 5 and all(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20")
                                           for r in rules) and rules

        wait_until(rules_evaluated, lambda: f"the alert rules evaluated: {prom.api('rules')}", every=0.5)
        # Every metric the dashboard and the rules use is served.
        served = set(prom.api("label/__name__/values"))
        named = {m for expr in _expressions() for m in re.findall(r"\b(flowdeck_[a-z_]+)", expr)}
        assert named and named <= served, sorted(named - served)
        client.close()
    finally:
        if prom is not None:
            prom.stop()
        if agent is not None:
            agent.stop()
        server.stop()
        for log in sorted(tmp_path.glob("**/*.log")):  # shown by pytest when the test failed
            print(f"----- {log}\n" + "\n".join(l for l in log.read_text().splitlines() if "alembic" not in l))
