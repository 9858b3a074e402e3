"""Every page, read through the API: what it shows, how it filters and pages."""
from __future__ import annotations

import re

import pytest

from dashboard_helpers import soup
from dashboard_helpers import anyio_backend, dash, seed  # noqa: F401 - fixtures

pytestmark = pytest.mark.anyio
OFFSET = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d")


def rows(response, table: str) -> list:
    return [tr for tr in soup(response).select(f"table.{table} tbody tr") if "empty" not in str(tr.td.get("class"))]


async def test_deployments_list(dash, seed):
    daily = seed.deployment("daily", interval=3600, tags=["earth"], parameters={"name": "Earth"})
    seed.deployment("adhoc", flow="other", tags=["ad-hoc"])
    run = seed.run(daily, state="COMPLETED")
    r = await dash.get("/deployments")
    assert r.status_code == 200
    by_name = {tr.find("a").text: tr for tr in rows(r, "deployments")}
    assert set(by_name) == {"hello/daily", "other/adhoc"}
    daily_row = by_name["hello/daily"]
    assert "every hour (UTC)" in daily_row.text and "active" in daily_row.text
    assert daily_row.select_one(".badge.state-completed").text == "Completed"
    assert daily_row.select_one(f'a[href="/runs/{run.id}"]')
    assert OFFSET.search(daily_row.text), "the next run is shown with its UTC offset"
    assert "no schedule" in by_name["other/adhoc"].text
    for tr in by_name.values():
        assert tr.select_one("a.button").text == "Quick Run"


async def test_deployments_filters(dash, seed):
    seed.deployment("a1", flow="alpha", tags=["blue"])
    seed.deployment("a2", flow="alpha", tags=["red"])
    seed.deployment("b1", flow="beta", tags=["blue"])

    async def names(query):
        return sorted(tr.find("a").text for tr in rows(await dash.get(f"/deployments?{query}"), "deployments"))

    assert await names("flow=alpha") == ["alpha/a1", "alpha/a2"]
    assert await names("tag=blue") == ["alpha/a1", "beta/b1"]
    assert await names("q=A2") == ["alpha/a2"]
    assert await names("q=ha/A") == ["alpha/a1", "alpha/a2"]  # the full name, across the "/"
    assert await names("q=a&flow=beta") == ["beta/b1"]
    assert await names("q=nothing-like-this") == []


async def test_deployments_search_pages_and_shows_last_runs(dash, seed):
    from flowdeck.server.dashboard.views.deployments import PAGE_SIZE

    for i in range(PAGE_SIZE + 2):
        seed.deployment(f"match-{i:02d}", flow="many")
    other = seed.deployment("unrelated", flow="many")
    last = seed.deployment("match-last", flow="zz")
    seed.run(last, state="COMPLETED")
    running = seed.run(last, state="RUNNING")
    seed.run(other, state="FAILED")
    first = await dash.get("/deployments?q=MATCH")
    shown = [tr.find("a").text for tr in rows(first, "deployments")]
    assert shown == [f"many/match-{i:02d}" for i in range(PAGE_SIZE)]
    next_url = soup(first).select_one('a[rel="next"]')["href"]
    assert "q=MATCH" in next_url
    second = await dash.get(next_url)
    by_name = {tr.find("a").text: tr for tr in rows(second, "deployments")}
    assert list(by_name) == ["many/match-25", "many/match-26", "zz/match-last"]
    assert by_name["many/match-25"].select_one(".badge") is None, "no run: no last run"
    assert by_name["zz/match-last"].select_one(f'a[href="/runs/{running.id}"] .badge.state-running')


async def test_deployment_detail(dash, seed):
    dep = seed.deployment("daily", interval=86400, parameters={"name": "Earth"}, description="says hello")
    done = seed.run(dep, state="COMPLETED")
    r = await dash.get(f"/deployments/{dep.id}")
    assert r.status_code == 200
    page = soup(r)
    times = page.select("ol.times li time")
    assert len(times) == 10 and all(OFFSET.fullmatch(t.text) for t in times)
    assert page.select_one('form[action$="/schedule"] input[name=active]')["value"] == "false"
    assert "Pause schedule" in page.text and "says hello" in page.text
    assert '"name": "Earth"' in page.select_one("pre.json").text
    assert page.select_one(f'#run-rows a[href="/runs/{done.id}"]')
    assert page.select_one("#run-rows")["sse-connect"].startswith("/live/runs?deployment=")
    assert len(page.select("table.list")[0].select("tbody tr")) == 5, "upcoming runs apart, five of them"


async def test_pause_and_resume_schedule(dash, seed):
    from dashboard_helpers import csrf_of

    dep = seed.deployment("daily", interval=3600)
    page = await dash.get(f"/deployments/{dep.id}")
    r = await dash.post(f"/deployments/{dep.id}/schedule", data={"active": "false", "csrf": csrf_of(page)})
    assert r.status_code == 303
    page = await dash.get(f"/deployments/{dep.id}")
    assert "Resume schedule" in page.text and "paused" in page.text
    r = await dash.post(f"/deployments/{dep.id}/schedule", data={"active": "true", "csrf": csrf_of(page)})
    assert "Pause schedule" in (await dash.get(f"/deployments/{dep.id}")).text


async def test_runs_list_newest_first_with_filters(dash, seed):
    dep = seed.deployment("d")
    first = seed.run(dep, state="COMPLETED")
    second = seed.run(dep, state="FAILED")
    running = seed.run(dep, state="RUNNING")
    r = await dash.get("/runs")
    ids = [tr["data-run-id"] for tr in rows(r, "runs")]
    assert ids == [running.id, second.id, first.id]
    badges = [b.text for b in soup(r).select("#run-rows .badge")]
    assert badges == ["Running", "Failed", "Completed"]
    assert all(tr.find_all("td")[1].text.strip() == "hello/d" for tr in rows(r, "runs"))
    r = await dash.get("/runs?state=FAILED&state=COMPLETED")
    assert [tr["data-run-id"] for tr in rows(r, "runs")] == [second.id, first.id]
    assert soup(r).select_one("#run-rows")["sse-connect"] == "/live/runs?state=FAILED&state=COMPLETED"
    assert [tr["data-run-id"] for tr in rows(await dash.get(f"/runs?deployment={dep.id}&since=1h"), "runs")] == ids


async def test_upcoming_runs_apart(dash, seed):
    dep = seed.deployment("sched", interval=3600)
    now_run = seed.run(dep, state="COMPLETED")
    upcoming = await dash.get("/runs?view=upcoming")
    up_ids = [tr["data-run-id"] for tr in rows(upcoming, "runs")]
    assert up_ids and now_run.id not in up_ids
    started = [tr["data-run-id"] for tr in rows(await dash.get("/runs"), "runs")]
    assert started == [now_run.id]


async def test_runs_keyset_pages(dash, seed):
    dep = seed.deployment("many")
    made = {seed.run(dep).id for _ in range(60)}
    first = await dash.get("/runs")
    page1 = [tr["data-run-id"] for tr in rows(first, "runs")]
    next_link = soup(first).select_one('a[rel="next"]')["href"]
    assert "before=" in next_link and "page=" in next_link
    seed.run(dep)  # a run made while paging neither repeats nor shifts the next page
    second = await dash.get(next_link)
    page2 = [tr["data-run-id"] for tr in rows(second, "runs")]
    assert len(page1) == 50 and len(page2) == 10
    assert set(page1) | set(page2) == made
    assert not soup(second).select_one('a[rel="next"]')
    assert soup(second).select_one("#run-rows").get("sse-connect") is None, "only the first page is live"


async def test_run_page_timeline_logs_and_levels(dash, seed):
    dep = seed.deployment("d", parameters={"times": 3})
    run = seed.run(dep)
    seed.state(run, "PENDING", "leased")
    seed.state(run, "RUNNING", "started on agent a")
    seed.log(run, "Hello Earth!", "second line")
    seed.log(run, "something broke", level=40)
    seed.state(run, "COMPLETED", "all good")
    r = await dash.get(f"/runs/{run.id}")
    page = soup(r)
    timeline = [(tr.select_one(".badge").text, tr.find_all("td")[2].text) for tr in page.select("table.timeline tbody tr")]
    assert timeline == [("Scheduled", ""), ("Pending", "leased"), ("Running", "started on agent a"),
                        ("Completed", "all good")]
    assert all(OFFSET.fullmatch(t.text) for t in page.select("table.timeline time"))
    assert [m.text for m in page.select("#logs .msg")] == ["Hello Earth!", "second line", "something broke"]
    assert '"times": 3' in page.select_one("pre.json").text
    assert not page.select_one('form[action$="/cancel"]'), "no Cancel once the run has ended"
    assert page.select_one("#run-live").get("sse-connect") is None, "an ended run's page is not live"
    errors_only = soup(await dash.get(f"/runs/{run.id}?level=40"))
    assert [m.text for m in errors_only.select("#logs .msg")] == ["something broke"]


async def test_long_log_pages_with_show_more(dash, seed):
    from flowdeck.server.dashboard.views.runs import LOG_PAGE

    run = seed.run(seed.deployment("d"))
    seed.log(run, *[f"line {i}" for i in range(LOG_PAGE + 7)])
    seed.state(run, "COMPLETED")
    page = soup(await dash.get(f"/runs/{run.id}"))
    assert len(page.select("#logs .log")) == LOG_PAGE
    more = page.select_one(".log-more button")["hx-get"]
    rest = soup(await dash.get(more))
    assert [m.text for m in rest.select(".msg")] == [f"line {i}" for i in range(LOG_PAGE, LOG_PAGE + 7)]
    assert not rest.select_one(".log-more")


async def test_cancel_from_run_page(dash, seed):
    from dashboard_helpers import csrf_of

    run = seed.run(seed.deployment("d"))
    page = await dash.get(f"/runs/{run.id}")
    assert soup(page).select_one('form[action$="/cancel"] button').text == "Cancel run"
    assert soup(page).select_one("#run-live")["sse-connect"].startswith(f"/live/run/{run.id}?")
    r = await dash.post(f"/runs/{run.id}/cancel", data={"csrf": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == f"/runs/{run.id}"
    assert seed.get_run(run.id).state.type == 6  # CANCELLED


async def test_overview(dash, seed):
    from flowdeck.v1 import common_pb2
    from flowdeck.v1 import flow_run_service_pb2 as rpb

    dep = seed.deployment("d")
    seed.run(dep, state="COMPLETED")
    failed = seed.run(dep, state="FAILED")
    seed.run(dep, state="CRASHED")
    seed.run(dep)  # due now: SCHEDULED
    late = seed.run(dep)
    seed.runs.SetFlowRunState(rpb.SetFlowRunStateRequest(
        flow_run_id=late.id, state=common_pb2.State(type=common_pb2.STATE_TYPE_SCHEDULED, name="Late"), force=True),
        timeout=20)
    r = await dash.get("/")
    page = soup(r)
    assert page.select_one("#counts")["hx-get"] == "/overview/counts"
    counts_html = soup(await dash.get("/overview/counts"))
    counts = {li.select_one(".badge").text: int(li.find("strong").text) for li in counts_html.select("ul.counts li")}
    assert counts["Completed"] == 1 and counts["Failed"] == 1 and counts["Crashed"] == 1 and counts["Running"] == 0
    assert counts["Late"] == 1 and counts["Scheduled"] == 1, "Late runs apart from the other SCHEDULED"
    assert "(expected to start before" in counts_html.h2.text and counts_html.h2.small.text.startswith("5 ")
    assert page.select_one(f'a[href="/runs/{failed.id}"]'), "recent failures are listed"


async def test_work_queues_pause_and_runs_waiting(dash, seed, server):
    from dashboard_helpers import csrf_of
    from flowdeck.v1 import common_pb2
    from flowdeck.v1 import work_queue_service_pb2 as wpb
    from flowdeck.v1 import work_queue_service_pb2_grpc as wgrpc

    stub = wgrpc.WorkQueueServiceStub(seed.channel)
    q = stub.CreateWorkQueue(wpb.CreateWorkQueueRequest(work_queue=common_pb2.WorkQueue(name="q1")), timeout=20)
    seed.run(seed.deployment("d"))
    r = await dash.get("/work-queues")
    row = soup(r).select_one(f'tr[data-queue-id="{q.id}"]')
    assert row.find_all("td")[3].text == "1" and "active" in row.text
    r = await dash.post(f"/work-queues/{q.id}/pause", data={"paused": "true", "csrf": csrf_of(r)})
    assert r.status_code == 303
    row = soup(await dash.get("/work-queues")).select_one(f'tr[data-queue-id="{q.id}"]')
    assert "paused" in row.text and row.select_one("button").text == "Resume"


async def test_not_found_is_the_apis(dash):
    r = await dash.get("/runs/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and "not found" in r.text
    r = await dash.get("/deployments/not-a-uuid")
    assert r.status_code == 400 and "id" in r.text
