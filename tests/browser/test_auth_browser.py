"""The dashboard with --auth in a real Chromium: login, scopes, CSRF, log out."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_helpers import Flowdeck, browser, chromium_path, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A server with --auth; `.keys` holds an admin and a read key."""
    chromium_path()  # skip (or, in CI, fail) before starting anything
    fd = Flowdeck(tmp_path_factory.mktemp("auth"), "--auth")
    admin = fd.cli("server", "create-admin-key", "root").stdout.strip()
    fd.start()
    read = fd.cli("api-key", "create", "viewer", "--scope", "read", key=admin).stdout.strip().splitlines()[-1]
    fd.keys = {"admin": admin, "read": read.split()[-1]}
    fd.deploy("""
        name: guarded
        flow_location: ./flows/hello.py
        flow_name: hello-world
        tags: [auth]
    """, key=admin)
    yield fd
    fd.stop()


def log_in(pg, fd, key: str):
    pg.goto(fd.url + "/deployments")
    expect(pg).to_have_url(re.compile(r"/login\?next=%2Fdeployments$"))
    pg.get_by_label("API key").fill(key)
    pg.get_by_role("button", name="Log in").click()


def test_wrong_key_is_refused(page, secured):
    log_in(page, secured, "fd_this-is-not-a-key")
    expect(page.locator(".error-box")).to_contain_text("refused")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_read_key_sees_pages_but_cannot_quick_run(page, secured):
    log_in(page, secured, secured.keys["read"])
    expect(page.locator("h1")).to_have_text("Deployments")
    row = page.locator("#deployment-rows tr", has_text="hello-world/guarded")
    button = row.get_by_role("button", name="Quick Run")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", "needs an API key with scope write")
    dep_href = row.get_by_role("link").first.get_attribute("href")
    for path in ("/", "/runs", "/work-queues", "/storage"):
        assert page.goto(secured.url + path).status == 200
    # A forged POST with this session's own CSRF token: the API refuses it.
    page.goto(secured.url + dep_href + "/run")
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    r = page.request.post(secured.url + dep_href + "/run", form={"csrf": token, "__json__": "{}"},
                          headers={"sec-fetch-site": "same-origin"})
    assert r.status == 403 and "scope write" in r.text()
    listed = secured.cli("flow-run", "ls", "--deployment", "hello-world/guarded", "--json", key=secured.keys["admin"])
    assert listed.stdout.strip() == "[]"
    # A POST without the token is refused before the API is asked.
    r = page.request.post(secured.url + dep_href + "/run", form={"__json__": "{}"})
    assert r.status == 403 and "CSRF" in r.text()


def test_admin_key_runs_and_log_out_ends_the_session(page, secured):
    log_in(page, secured, secured.keys["admin"])
    row = page.locator("#deployment-rows tr", has_text="hello-world/guarded")
    row.get_by_role("link", name="Quick Run").click()
    page.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.locator("#run-state .badge").first).to_have_text(re.compile("Scheduled|Late"))
    page.goto(secured.url + "/api-keys")
    expect(page.locator("table.keys")).to_contain_text("viewer")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(secured.url + "/runs")
    expect(page).to_have_url(re.compile(r"/login\?next="))
