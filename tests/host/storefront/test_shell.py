"""The mini-program shell, routing by origin, the bridge's helpers and its session (docs/bridge.md)."""

from __future__ import annotations

import re

import pytest

from host.storefront.origins import OriginSettingError, build
from host.storefront.shell import check_event
from host.problems import Problem

HOST = "http://127.0.0.1:8000"
DEALS = "http://sh.deals.mp.localhost:8000"
SHELL = "/mp/sh.deals/?branch=SH001&lang=en"


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, phone: str = "13800000001", password: str = "canopy-demo-1") -> None:
    page = client.get("/signin")
    response = client.post("/signin", data={"phone": phone, "password": password,
                                            "csrf_token": form_token(page.get_data(as_text=True))})
    assert response.status_code == 303


@pytest.fixture
def customer(client):
    sign_in(client)
    return client


# -- origins ---------------------------------------------------------------------------------

def test_the_origins_of_the_default_settings():
    found = build(HOST, "http://{plugin}.mp.localhost:{port}")
    assert found.host == HOST
    assert found.plugin("sh.deals") == DEALS
    assert found.plugin_for_host("sh.deals.mp.localhost:8000") == "sh.deals"
    assert found.plugin_for_host("SH.DEALS.mp.localhost:8000") == "sh.deals"
    for other in ("127.0.0.1:8000", "sh.deals.mp.localhost:8001", "sh.deals.mp.localhost", "evil.example",
                  "a..b.mp.localhost:8000", "x.sh.deals.mp.localhost.evil:8000", "", None, "a" * 400):
        assert build(HOST, "http://{plugin}.mp.localhost:{port}").plugin_for_host(other) is None, other


def test_the_production_form():
    found = build("https://bank.example", "https://{plugin}.mp.bank-apps.example")
    assert found.host == "https://bank.example"
    assert found.plugin("sh.deals") == "https://sh.deals.mp.bank-apps.example"
    assert found.plugin_for_host("sh.deals.mp.bank-apps.example") == "sh.deals"
    assert found.plugin_for_host("sh.deals.mp.bank-apps.example:443") is None


@pytest.mark.parametrize("template", [
    "http://mp.localhost:{port}",                    # no {plugin}
    "http://{plugin}.{plugin}.localhost",            # twice
    "http://{plugin}.mp.localhost:{port}/pages",     # not an origin
    "ftp://{plugin}.mp.localhost",
    "http://{plugin}.mp.{who}.localhost",            # unknown placeholder
    "http://127.0.0.1:{port}/{plugin}",              # not in the host name
])
def test_a_wrong_setting_is_refused(template):
    with pytest.raises(OriginSettingError):
        build(HOST, template)


def test_the_host_may_not_look_like_a_plugins_origin():
    with pytest.raises(OriginSettingError):
        build("http://bank.mp.localhost:8000", "http://{plugin}.mp.localhost:{port}")


# -- routing by origin -------------------------------------------------------------------------

def test_plugin_content_is_served_on_its_origin_only(client):
    assert client.get(DEALS + "/?branch=SH001&lang=en").status_code == 200
    assert client.get(DEALS + "/static/deals.js").status_code == 200
    # Never on the host's origin (the internal routes answer nothing there) …
    for path in ("/_mp/sh.deals/?branch=SH001", "/_mp/sh.deals/static/deals.js", "/_mp/sh.deals/api/claims"):
        assert client.get(path).status_code == 404, path
    # … nor on another plugin's origin.
    assert client.get("http://wealth.checkup.mp.localhost:8000/_mp/sh.deals/static/deals.js").status_code == 404


def test_host_pages_are_not_served_on_a_plugins_origin(client):
    for path in ("/signin", "/s/SH001", "/pay/pi_x", "/me/authorisations", "/api/v1/plugins", "/bridge/canopy.js",
                 "/mp/sh.deals/", "/metrics"):
        response = client.get(DEALS + path)
        assert response.status_code == 404, path
        assert "canopy_session" not in response.headers.get("Set-Cookie", "")


def test_the_shell_frames_the_plugins_origin(client):
    response = client.get(SHELL)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and f"frame-src 'self' {DEALS};" in csp and "frame-ancestors 'none'" in csp
    html = response.get_data(as_text=True)
    # The frame's address carries the version the shell chose for this visitor (docs/publishing.md).
    assert f'data-src="{DEALS}/?branch=SH001&amp;lang=en&amp;canopy_version=1.2.0"' in html
    frame = re.search(r"<iframe class=\"mp-frame\"[^>]*>", html).group(0)
    assert 'sandbox="allow-scripts allow-forms"' in frame and "allow-same-origin" not in html
    assert 'href="/me/authorisations?lang=en"' in html  # where consent is withdrawn
    assert "Provided by SH001" in html
    assert "frame-src" in csp and "'unsafe-inline'" not in csp


def test_the_shell_keeps_the_page_and_its_query(client):
    html = client.get("/mp/sh.deals/deal?id=bund-night-cruise&branch=SH001&lang=en").get_data(as_text=True)
    assert f'data-src="{DEALS}/deal?id=bund-night-cruise&amp;branch=SH001&amp;lang=en&amp;canopy_version=1.2.0"' in html


@pytest.mark.parametrize("url", ["/mp/no.such/", "/mp/sh.deals/?branch=BJ001", "/mp/sh.deals/?branch=%00",
                                 "/mp/" + "p" * 300 + "/", "/mp/city.utilities/?branch=SH001"])
def test_the_shell_of_something_missing_is_404(client, url):
    assert client.get(url).status_code == 404


def test_a_plugin_page_may_be_framed_by_the_host_only(client):
    response = client.get(DEALS + "/?branch=SH001&lang=en")
    csp = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors {HOST};" in csp
    assert f"script-src 'self' {HOST}/bridge/canopy.js;" in csp
    assert csp.startswith("sandbox allow-scripts allow-forms;")
    html = response.get_data(as_text=True)
    assert f'<head>\n  <script src="{HOST}/bridge/canopy.js"></script>' in html or \
        re.search(r"<head[^>]*><script src=\"" + re.escape(HOST) + r"/bridge/canopy.js\"></script>", html)


def test_the_bridge_scripts_are_served_on_the_host(client):
    for name in ("canopy.js", "shell.js", "shell.css"):
        assert client.get(f"/bridge/{name}").status_code == 200


# -- the session cookie ---------------------------------------------------------------------------

def test_the_session_cookie_is_host_only(client):
    page = client.get("/signin")
    response = client.post("/signin", data={"phone": "13800000001", "password": "canopy-demo-1",
                                            "csrf_token": form_token(page.get_data(as_text=True))})
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("canopy_session=")][0]
    assert "domain" not in cookie.lower()  # never sent to *.mp.localhost or any other host
    assert "HttpOnly" in cookie


# -- login, the bridge session and the API as the customer -------------------------------------

def _code(client) -> str:
    response = client.post("/mp/sh.deals/login-code?branch=SH001", json={})
    assert response.status_code == 200
    return response.get_json()["code"]


def test_a_login_code_becomes_a_session_of_the_plugins_api(customer):
    code = _code(customer)
    exchanged = customer.post(DEALS + "/_canopy/session", json={"code": code})
    assert exchanged.status_code == 200 and exchanged.headers["Access-Control-Allow-Origin"] == "*"
    token = exchanged.get_json()["session_token"]
    again = customer.post(DEALS + "/_canopy/session", json={"code": code})
    assert again.status_code == 400  # once only
    claims = customer.get(DEALS + "/api/claims?branch=SH001", headers={"Authorization": f"Bearer {token}"})
    assert claims.status_code == 200 and claims.get_json() == {"claims": []}
    anonymous = customer.get(DEALS + "/api/claims?branch=SH001")
    assert anonymous.status_code == 401  # the plugin's own "sign in first"


def test_a_code_of_another_plugin_or_a_bad_token_is_refused(customer):
    code = _code(customer)
    other = customer.post("http://wealth.checkup.mp.localhost:8000/_canopy/session", json={"code": code})
    assert other.status_code == 400
    for body in ({}, {"code": ""}, {"code": 1}, {"code": "x", "more": 1}, ["x"]):
        assert customer.post(DEALS + "/_canopy/session", json=body).status_code == 400
    assert customer.post(DEALS + "/_canopy/session", data="code=x",
                         content_type="application/x-www-form-urlencoded").status_code == 415
    for header in ("Bearer nope", "Basic abc", "Bearer " + "x" * 600):
        response = customer.get(DEALS + "/api/claims?branch=SH001", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_the_session_preflight_allows_the_opaque_origin(client):
    response = client.options(DEALS + "/_canopy/session", headers={"Origin": "null", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


# -- the shell's helpers ---------------------------------------------------------------------------

def test_payment_state_needs_the_customer_and_the_plugins_own_intent(client, customer):
    assert customer.get("/shell/sh.deals/payments/pi_nope?branch=SH001").status_code == 404
    assert customer.get("/shell/sh.deals/payments/%00?branch=SH001").status_code == 404


def test_grants_and_the_consent_sheet(customer):
    answer = customer.get("/shell/sh.deals/grants?branch=SH001&scope=payments:create")
    assert answer.status_code == 200 and answer.get_json() == {"scopes": {"payments:create": True}, "granted": True}
    for query in ("", "&scope=profile.phone:read", "&scope=a&scope=a", "".join(f"&scope=s{i}" for i in range(11))):
        assert customer.get("/shell/sh.deals/grants?branch=SH001" + query).status_code == 400, query
    sheet = customer.get("/shell/sh.deals/consent?branch=SH001&scope=payments:create&lang=en")
    assert sheet.status_code == 200 and sheet.headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")
    decided = customer.post("/shell/sh.deals/consent?branch=SH001&scope=payments:create&lang=en",
                            data={"decision": "allow", "csrf_token": form_token(sheet.get_data(as_text=True))})
    assert decided.status_code == 200 and 'data-consent="allow"' in decided.get_data(as_text=True)
    assert customer.post("/shell/sh.deals/consent?branch=SH001&scope=payments:create",
                         data={"decision": "maybe", "csrf_token": form_token(sheet.get_data(as_text=True))}).status_code == 400


def test_the_helpers_need_a_signed_in_customer(client):
    assert client.get("/shell/sh.deals/grants?branch=SH001&scope=payments:create").status_code == 401
    assert client.get("/shell/sh.deals/payments/pi_x?branch=SH001").status_code == 401
    assert client.get("/shell/sh.deals/consent?branch=SH001&scope=payments:create").status_code == 303


# -- analytics events ----------------------------------------------------------------------------

def test_a_valid_event_is_counted(client):
    response = client.post("/shell/sh.deals/events?branch=SH001", json={"event": "deal.viewed", "props": {"coupon": "x", "n": 2}})
    assert response.status_code == 204
    from host.storefront.shell import event_counts

    assert event_counts(client.application)[("sh.deals", "deal.viewed")] == 1


@pytest.mark.parametrize("body", [
    None, [], {"event": "Deal"}, {"event": ""}, {"event": "a" * 65}, {"event": "ok", "props": []},
    {"event": "ok", "props": {f"k{i}": 1 for i in range(21)}}, {"event": "ok", "props": {"k": {"nested": 1}}},
    {"event": "ok", "props": {"k": "x" * 201}}, {"event": "ok", "props": {"bad key": 1}},
    {"event": "ok", "props": {"k": float("inf")}}, {"event": "ok", "extra": 1},
    {"event": "ok", "props": {f"k{i}": "x" * 150 for i in range(15)}},
])
def test_a_bad_event_is_refused_naming_the_field(body):
    with pytest.raises(Problem) as refused:
        check_event(body)
    assert refused.value.status == 400 and refused.value.extra["errors"]


def test_host_event_names_are_reserved(client):
    assert client.post("/shell/sh.deals/events?branch=SH001", json={"event": "canopy.fake"}).status_code == 400
    assert client.post("/shell/sh.deals/events?branch=SH001",
                       json={"event": "canopy.ignored", "props": {"reason": "nonce"}}).status_code == 204
    assert client.post("/shell/sh.deals/events?branch=SH001", data="x").status_code == 415
