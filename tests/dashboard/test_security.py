"""Headers, cookies, CSRF, login and scopes, masking and escaping."""
from __future__ import annotations

import json
import logging

import pytest

from dashboard_helpers import csrf_of, login, make_client, soup
from dashboard_helpers import admin_seed, anyio_backend, auth_dash, dash, seed  # noqa: F401 - fixtures

pytestmark = pytest.mark.anyio
PAGES = ["/", "/deployments", "/runs", "/runs?view=upcoming", "/work-queues", "/storage", "/api-keys"]


async def _all_pages(dash, seed):
    dep = seed.deployment("d", interval=3600)
    run = seed.run(dep)
    seed.log(run, "a line")
    return PAGES + [f"/deployments/{dep.id}", f"/deployments/{dep.id}/run", f"/runs/{run.id}"]


async def test_headers_and_no_inline_code_on_every_page(dash, seed):
    for path in await _all_pages(dash, seed):
        r = await dash.get(path)
        assert r.status_code == 200, path
        h = r.headers
        assert h["content-security-policy"] == (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "same-origin"
        assert h["cache-control"] == "no-store"
        page = soup(r)
        assert all(s.get("src", "").startswith("/static/vendor/") for s in page.find_all("script")), path
        assert not page.find_all("style"), path
        for el in page.find_all(True):
            bad = [a for a in el.attrs if a == "style" or a.startswith("on") or a.startswith("hx-on")]
            assert not bad, (path, el.name, bad)
        config = page.find("meta", attrs={"name": "htmx-config"})["content"]
        for setting in ('"allowEval":false', '"allowScriptTags":false', '"includeIndicatorStyles":false',
                        '"selfRequestsOnly":true'):
            assert setting in config


async def test_static_files_are_served_with_a_content_hash(dash):
    page = soup(await dash.get("/"))
    for tag, attr in (("script", "src"), ("link", "href")):
        for el in page.find_all(tag):
            url = el.get(attr, "")
            if url.startswith("/static/"):
                r = await dash.get(url)
                assert r.status_code == 200 and "v=" in url and "immutable" in r.headers["cache-control"]
    assert (await dash.get("/static/../app.py")).status_code == 404


async def test_session_cookie_flags(dash, server):
    r = await dash.get("/")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("flowdeck_session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie
    from flowdeck.server.dashboard.app import create_app

    app = create_app(server.address, secure=True)  # served over TLS
    async with make_client(app) as client:
        cookie = (await client.get("/")).headers["set-cookie"]
    await app.state.dashboard.close()
    assert cookie.startswith("__Host-flowdeck_session=") and "; Secure" in cookie and "Domain" not in cookie


async def test_post_without_or_with_wrong_csrf_token_is_refused(dash, seed):
    dep = seed.deployment("d", interval=3600)
    page = await dash.get(f"/deployments/{dep.id}")
    for data, headers in (({"active": "false"}, {}), ({"active": "false", "csrf": "forged"}, {}),
                          ({"active": "false", "csrf": csrf_of(page)}, {"sec-fetch-site": "cross-site"}),
                          ({"active": "false", "csrf": csrf_of(page)}, {"sec-fetch-site": "same-site"})):
        r = await dash.post(f"/deployments/{dep.id}/schedule", data=data, headers=headers)
        assert r.status_code == 403, (data, headers)
    assert "Pause schedule" in (await dash.get(f"/deployments/{dep.id}")).text, "nothing changed"
    # The header form (htmx sends it from <body hx-headers>) is accepted, same-origin.
    r = await dash.post(f"/deployments/{dep.id}/schedule", data={"active": "false"},
                        headers={"x-csrf-token": csrf_of(page), "sec-fetch-site": "same-origin"})
    assert r.status_code == 303


async def test_every_post_route_checks_csrf(dash, seed):
    from flowdeck.server.dashboard.app import ROUTES

    dep = seed.deployment("d")
    run = seed.run(dep)
    ids = {"dep_id": dep.id, "run_id": run.id, "queue_id": dep.id, "name": "x"}
    posts = [r for r in ROUTES if "POST" in (getattr(r, "methods", None) or ())]
    assert len(posts) >= 8
    for route in posts:
        path = route.path.format(**ids)
        r = await dash.post(path, data={"csrf": "nope"})
        assert r.status_code == 403 and "CSRF" in r.text, path
    assert seed.get_run(run.id).state.type == 1, "still scheduled: the cancel was refused"


async def test_auth_login_required_and_wrong_key(auth_dash):
    r = await auth_dash.get("/runs?state=FAILED")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fruns%3Fstate%3DFAILED"
    r = await auth_dash.get("/deployments", headers={"hx-request": "true"})
    assert r.headers["hx-redirect"] == "/login?next=%2Fdeployments"
    assert (await auth_dash.get("/live/runs")).status_code == 401
    r = await login(auth_dash, "fd_not-a-real-key")
    assert r.status_code == 401 and "refused" in r.text
    r = await login(auth_dash, auth_dash.keys["revoked"])
    assert r.status_code == 401 and "revoked" in r.text
    assert (await auth_dash.get("/")).status_code == 303


async def test_login_asks_the_api_which_key_it_is(auth_dash, caplog):
    """The session's scope is the API's answer (GetCurrentApiKey): no call is
    tried to see whether it is refused, so the server logs no refusal."""
    caplog.set_level(logging.INFO, logger="flowdeck.server.auth")
    for scope in ("read", "agent", "write", "admin"):
        r = await login(auth_dash, auth_dash.keys[scope])
        assert r.status_code == 303, scope
        page = await auth_dash.get("/")
        assert soup(page).select_one("header .scope").text == f"{scope} key"
        await auth_dash.post("/logout", data={"csrf": csrf_of(page)})
    assert not [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]


async def test_auth_read_key_sees_pages_but_cannot_write(auth_dash, admin_seed):
    dep = admin_seed.deployment("d", interval=3600)
    run = admin_seed.run(dep)
    r = await login(auth_dash, auth_dash.keys["read"], f"/deployments/{dep.id}")
    assert r.status_code == 303 and r.headers["location"] == f"/deployments/{dep.id}"
    for path in ["/", "/deployments", "/runs", f"/deployments/{dep.id}", f"/runs/{run.id}", "/storage"]:
        assert (await auth_dash.get(path)).status_code == 200, path
    page = soup(await auth_dash.get("/deployments"))
    button = page.select_one("#deployment-rows button")
    assert button.text == "Quick Run" and button.has_attr("disabled")
    assert button["title"] == "needs an API key with scope write"
    detail = soup(await auth_dash.get(f"/deployments/{dep.id}"))
    assert detail.select_one('form[action$="/schedule"] button').has_attr("disabled")
    assert "needs an API key with scope write" in detail.text
    assert not soup(await auth_dash.get("/")).select_one('a[href="/api-keys"]'), "API keys are for admins"
    # A forged POST (valid session and CSRF token) is still the API's to refuse.
    form = await auth_dash.get(f"/deployments/{dep.id}/run")
    r = await auth_dash.post(f"/deployments/{dep.id}/run", data={"csrf": csrf_of(form), "__json__": "{}"})
    assert r.status_code == 403 and "scope write" in r.text
    r = await auth_dash.post(f"/runs/{run.id}/cancel", data={"csrf": csrf_of(form)})
    assert r.status_code == 403
    assert len(admin_seed.runs_of(dep)) == 1 + len([x for x in admin_seed.runs_of(dep) if x.auto_scheduled])
    assert admin_seed.get_run(run.id).state.type == 1
    assert (await auth_dash.get("/api-keys")).status_code == 403


async def test_auth_write_key_runs_and_admin_manages_keys(auth_dash, admin_seed):
    dep = admin_seed.deployment("d")
    await login(auth_dash, auth_dash.keys["write"])
    form = await auth_dash.get(f"/deployments/{dep.id}/run")
    r = await auth_dash.post(f"/deployments/{dep.id}/run", data={"csrf": csrf_of(form), "__json__": '{"x": 1}'})
    assert r.status_code == 303 and r.headers["location"].startswith("/runs/")
    await auth_dash.post("/logout", data={"csrf": csrf_of(form)})
    await login(auth_dash, auth_dash.keys["admin"])
    page = await auth_dash.get("/api-keys")
    assert "test-read" in page.text
    r = await auth_dash.post("/api-keys", data={"csrf": csrf_of(page), "name": "ci-bot", "scope": "write"})
    secret = soup(r).select_one("pre.secret").text
    assert secret.startswith("fd_") or len(secret) > 20
    again = await auth_dash.get("/api-keys")
    assert "ci-bot" in again.text and secret not in again.text, "the key is shown once"
    r = await auth_dash.post("/api-keys/ci-bot/revoke", data={"csrf": csrf_of(again)})
    assert r.status_code == 303
    row = [tr for tr in soup(await auth_dash.get("/api-keys")).select("table.keys tr") if "ci-bot" in tr.text][0]
    assert row.find_all("td")[4].find("time"), "revoked, with its time"


async def test_logout_ends_the_session_and_login_rotates_it(auth_dash):
    before = (await auth_dash.get("/login")).cookies.get("flowdeck_session") or auth_dash.cookies["flowdeck_session"]
    await login(auth_dash, auth_dash.keys["read"])
    after = auth_dash.cookies["flowdeck_session"]
    assert after != before
    page = await auth_dash.get("/")
    assert page.status_code == 200 and "read key" in page.text
    r = await auth_dash.post("/logout", data={"csrf": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    auth_dash.cookies.set("flowdeck_session", after)  # the old id is worth nothing now
    assert (await auth_dash.get("/")).status_code == 303


async def test_revoked_key_ends_the_session(auth_dash, admin_seed):
    from flowdeck.v1 import api_key_service_pb2 as kpb
    from flowdeck.v1 import api_key_service_pb2_grpc as kgrpc

    await login(auth_dash, auth_dash.keys["write"])
    assert (await auth_dash.get("/runs")).status_code == 200
    kgrpc.ApiKeyServiceStub(admin_seed.channel).RevokeApiKey(kpb.RevokeApiKeyRequest(name="test-write"),
                                                             metadata=admin_seed.md, timeout=20)
    r = await auth_dash.get("/runs")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_secrets_are_masked(dash, seed):
    from flowdeck.v1 import common_pb2
    from flowdeck.v1 import storage_service_pb2 as stpb
    from flowdeck.v1 import storage_service_pb2_grpc as stgrpc

    block = common_pb2.StorageBlock(type="s3")
    block.config.update({"bucket": "my-bucket", "aws_access_key_id": "AKIAEXAMPLEKEYID",
                         "aws_secret_access_key": "very-secret-value-123"})
    made = stgrpc.StorageServiceStub(seed.channel).CreateStorageBlock(
        stpb.CreateStorageBlockRequest(storage_block=block), timeout=20)
    blob = json.dumps({"block_id": made.id, "data": "flows/x.py"})
    dep = seed.deployment("stored", flow_data=common_pb2.FlowData(encoding="blockstorage", blob=blob))
    for path in ("/storage", f"/deployments/{dep.id}"):
        text = (await dash.get(path)).text
        assert "my-bucket" in text and "********" in text, path
        assert "very-secret-value-123" not in text and "AKIAEXAMPLEKEYID" not in text, path


async def test_what_users_and_flows_write_is_escaped(dash, seed):
    dep = seed.deployment("<img src=x onerror=alert(1)>", tags=["<b>bold</b>"], description="<i>x</i>")
    run = seed.run(dep)
    seed.log(run, "<script>alert(1)</script>")
    for path in ("/deployments", f"/deployments/{dep.id}", f"/runs/{run.id}", "/runs", f"/deployments/{dep.id}/run"):
        r = await dash.get(path)
        page = soup(r)
        assert not page.find("img") and not page.find("b") and not page.find("i"), path
        assert all(s.get("src") for s in page.find_all("script")), path
        assert "<img src=x" not in r.text and "<script>alert" not in r.text, path
    run_page = await dash.get(f"/runs/{run.id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run_page.text
    assert soup(run_page).select_one("#logs .msg").text == "<script>alert(1)</script>"
