"""A mini-program's page in a real browser, opened on its own origin (outside the shell):
an opaque origin that cannot reach the host.

The host serves a mini-program's pages on ``http://<id>.mp.localhost:<port>`` with
``Content-Security-Policy: sandbox allow-scripts allow-forms`` (docs/bridge.md). These tests
check what Chromium makes of it: the page's scripts run, its own files load, its API answers
it, and it can read neither the host's cookies nor the host's pages — also while the
customer is signed in in the same browser. tests/e2e/test_bridge.py covers the shell.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

DEALS = "/?branch=SH001&lang=en"  # on sh.deals's own origin
STOREFRONT = "/s/SH001?lang=en"

READ_COOKIE = """() => {
  try { return "read: " + document.cookie; } catch (error) { return error.name; }
}"""
#: Fetch a host page (as a script would by default, or with the browser's cookies) and say
#: what the script got to see.
FETCH_SIGNIN = """([url, credentials]) => fetch(url, {credentials}).then(
  async response => "read " + response.status + ": " + (await response.text()).slice(0, 60),
  error => error.name + ": " + error.message)"""
CLAIM = """() => {
  const api = document.querySelector("main[data-claim-api]").dataset.claimApi;
  return fetch(api, {
    method: "POST",
    headers: {"Content-Type": "application/json", "Accept": "application/json"},
    body: JSON.stringify({coupon_id: "wukang-coffee"}),
  }).then(async response => ({
    status: response.status, type: response.headers.get("content-type"), body: await response.json(),
  }));
}"""


@pytest.fixture
def deals(plugin_origin):
    return plugin_origin("sh.deals") + DEALS


def _assert_sealed_off(page, host: str) -> None:
    assert page.evaluate("self.origin") == "null"
    assert page.evaluate(READ_COOKIE) == "SecurityError"
    for credentials in ("same-origin", "include"):
        outcome = page.evaluate(FETCH_SIGNIN, [host + "/signin", credentials])
        assert outcome.startswith("TypeError"), f"the mini-program read a host page ({credentials}): {outcome}"


def test_page_runs_in_an_opaque_origin(page, shoot, deals, live_server):
    page.goto(deals)
    expect(page.get_by_role("heading", level=1)).to_have_text("Shanghai neighbourhood deals")
    shoot(page, "sh-deals")
    _assert_sealed_off(page, live_server.url)


def test_page_cannot_read_the_host_even_with_the_customer_signed_in(page, context, live_server, sign_in, shoot, deals):
    sign_in(page, STOREFRONT, screenshot="sandbox-signin")
    assert any(cookie["httpOnly"] for cookie in context.cookies(live_server.url)), "no session cookie to protect"
    shoot(page, "sandbox-signed-in-storefront")
    # The control: the host's own page, same browser, same session, reads /signin.
    assert page.evaluate(FETCH_SIGNIN, ["/signin", "include"]).startswith("read 200")
    page.goto(deals)
    expect(page.get_by_role("heading", level=1)).to_have_text("Shanghai neighbourhood deals")
    shoot(page, "sh-deals-signed-in")
    _assert_sealed_off(page, live_server.url)


def test_page_loads_its_own_stylesheet_and_script(page, context, browser_log, shoot, deals):
    # Function call counts show that deals.js ran, not only that it was fetched.
    devtools = context.new_cdp_session(page)
    devtools.send("Profiler.enable")
    devtools.send("Profiler.startPreciseCoverage", {"callCount": True, "detailed": False})
    statuses = {}
    page.on("response", lambda response: statuses.__setitem__(urlsplit(response.url).path, response.status))
    page.goto(deals)
    # deals.css: the masthead in the bank's red.
    expect(page.locator("header.masthead")).to_have_css("background-color", "rgb(200, 16, 46)")
    expect(page.locator("article.deal").first).to_have_css("border-radius", "12px")
    scripts = devtools.send("Profiler.takePreciseCoverage")["result"]
    ran = [script for script in scripts if urlsplit(script["url"]).path == "/static/deals.js"]
    assert ran, "deals.js never ran"
    called = [function for function in ran[0]["functions"] if function["ranges"][0]["count"] > 0]
    assert len(called) >= 2, "deals.js was parsed but its body did not run"  # the script and its IIFE
    shoot(page, "sh-deals-assets")
    assert statuses.get("/static/deals.css") == 200
    assert statuses.get("/static/deals.js") == 200
    assert browser_log.failed == []
    assert browser_log.console_errors == []  # a CSP refusal would be reported here


def test_page_calls_its_api_and_gets_the_plugins_json(page, deals):
    page.goto(deals)
    answer = page.evaluate(CLAIM)
    # Anonymous (the page's calls never carry the session): sh.deals asks to sign in.
    assert answer["status"] == 401
    assert answer["type"] == "application/problem+json"
    assert answer["body"]["title"] == "Sign in first"
    assert answer["body"]["detail"] == "Sign in to claim and see your coupons."
