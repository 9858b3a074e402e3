"""The dashboard in a real Chromium against a real server and agent."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_helpers import browser, chromium_path, flowdeck, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
LIVE = 20_000  # ms: what a page waits for a live change (no reload) on a loaded machine
RUN = 90_000  # ms: an agent starting a flow process and running it


def no_reload_marker(pg):
    """Mark the window: the mark survives live updates, not a reload."""
    pg.evaluate("window.flowdeckNoReload = true")
    return lambda: pg.evaluate("window.flowdeckNoReload === true")


def test_chromium_smoke(page, flowdeck):
    page.goto(flowdeck.url + "/")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("header .brand")).to_have_text("flowdeck")


def test_new_deployment_appears_then_quick_run_shows_the_run_live(page, flowdeck):
    page.goto(flowdeck.url + "/deployments")
    still_same_page = no_reload_marker(page)
    flowdeck.deploy("""
        name: greet
        flow_location: ./flows/hello.py
        flow_name: hello-world
        tags: [browser]
        parameters: {name: world, times: 1, wait: 2}
    """)
    row = page.locator("#deployment-rows tr", has_text="hello-world/greet")
    expect(row).to_be_visible(timeout=LIVE)
    assert still_same_page(), "the row came live, without a reload"
    row.get_by_role("link", name="Quick Run").click()
    expect(page.locator("h1")).to_have_text("Quick Run")
    # One field per parameter, from the deployment's parameter schema, the deployment's values filled in.
    name = page.locator('.field[data-field="name"] input')
    expect(name).to_have_value("world")
    name.fill("Marvin")
    page.locator('.field[data-field="times"] input').fill("2")
    page.locator('.field[data-field="wait"] input').fill("3")
    page.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    still_same_page = no_reload_marker(page)
    badge = page.locator("#run-state .state-head .badge")
    expect(badge).to_have_text("Running", timeout=RUN)
    expect(badge).to_have_text("Completed", timeout=RUN)
    expect(page.locator("#logs")).to_contain_text("Hello Marvin! (2/2)", timeout=LIVE)
    assert still_same_page()
    expect(page.locator("table.timeline")).to_contain_text("Pending")
    expect(page.locator("pre.json").first).to_contain_text('"name": "Marvin"')


def test_wrong_parameter_type_is_refused_next_to_its_field(page, flowdeck):
    flowdeck.deploy("""
        name: typed
        flow_location: ./flows/hello.py
        flow_name: hello-world
        tags: [not-run]
    """)
    page.goto(flowdeck.url + "/deployments?q=typed")
    page.locator("#deployment-rows tr", has_text="hello-world/typed").get_by_role("link", name="Quick Run").click()
    page.locator('.field[data-field="times"] input').fill("abc")
    page.get_by_role("button", name="Run").click()
    expect(page.locator('.field[data-field="times"] .field-error')).to_contain_text("integer")
    listed = flowdeck.cli("flow-run", "ls", "--deployment", "hello-world/typed", "--json").stdout
    assert listed.strip() in ("[]", ""), "nothing is created"


def test_cancel_a_running_run(page, flowdeck):
    flowdeck.deploy("""
        name: slow
        flow_location: ./flows/hello.py
        flow_name: hello-world
        tags: [browser]
        parameters: {wait: 300}
    """)
    page.goto(flowdeck.url + "/deployments?q=slow")
    page.locator("#deployment-rows tr", has_text="hello-world/slow").get_by_role("link", name="Quick Run").click()
    page.get_by_role("button", name="Run").click()
    badge = page.locator("#run-state .state-head .badge")
    expect(badge).to_have_text("Running", timeout=RUN)
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-state .state-head .badge")).to_have_text(re.compile("Cancell?ing|Cancelled"))
    expect(page.locator("#run-state .state-head .badge")).to_have_text("Cancelled", timeout=RUN)


def test_what_flows_and_users_write_shows_as_text(page, flowdeck):
    flowdeck.deploy("""
        name: "<img src=x onerror=alert(1)>"
        flow_location: ./flows/hello.py
        flow_name: shouty
        tags: [escaping]
    """)
    flowdeck.cli("deployment", "execute", "shouty/<img src=x onerror=alert(1)>")
    page.goto(flowdeck.url + "/deployments?q=onerror")
    link = page.get_by_role("link", name="shouty/<img src=x onerror=alert(1)>")
    expect(link).to_be_visible()
    expect(page.locator("#deployment-rows img")).to_have_count(0)
    page.goto(flowdeck.url + "/runs?flow=shouty")
    page.locator("#run-rows a").first.click()
    expect(page.locator("#logs")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator("#logs script")).to_have_count(0)
    assert page.dialogs == [], "no script ran"
