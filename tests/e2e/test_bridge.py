"""The shell and the canopy.js bridge in a real browser (docs/bridge.md).

The customer opens sh.deals in the host's shell: its page runs in a sandboxed frame on the
plugin's own origin (http://sh.deals.mp.localhost:<port>), logs in through the bridge, buys a
paid coupon and pays on the bank's sheet — a host page above the frame — with the PIN.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

DEALS = "/mp/sh.deals/?branch=SH001&lang=en"
PIN = "147258"  # the payment PIN of 13800000001 (host/demo.py)
PAID_COUPON = "bund-night-cruise"

READ_COOKIE = """() => { try { return "read: " + document.cookie; } catch (error) { return error.name; } }"""


def _frame(page, plugin_origin):
    frame = page.frame_locator("iframe.mp-frame")
    expect(frame.get_by_role("heading", level=1)).to_have_text("Shanghai neighbourhood deals")
    found = [f for f in page.frames if f.url.startswith(plugin_origin("sh.deals"))]
    assert len(found) == 1, [f.url for f in page.frames]
    return frame, found[0]


def test_a_customer_buys_a_coupon_and_pays_on_the_banks_sheet(page, sign_in, plugin_origin, shoot):
    sign_in(page, DEALS)
    expect(page.locator(".shell-title h1")).to_have_text("Shanghai Neighbourhood Deals")
    expect(page.locator(".shell-publisher")).to_contain_text("SH001")
    frame, _ = _frame(page, plugin_origin)
    shoot(page, "shell-sh-deals")
    card = frame.locator(f'[data-deal="{PAID_COUPON}"]')
    card.get_by_role("button", name=re.compile("^Buy for")).click()
    # The bank's sheet: above the frame, on the host's origin.
    sheet = page.frame_locator("iframe.sheet-frame")
    expect(page.locator(".sheet")).to_be_visible()
    expect(sheet.get_by_role("heading", name="Confirm payment")).to_be_visible()
    shoot(page, "shell-payment-sheet")
    sheet.get_by_label("Payment PIN").fill(PIN)
    sheet.get_by_role("button", name=re.compile("^Pay")).click()
    # A browser the bank has not seen: the risk centre asks to check and enter the PIN again.
    acknowledge = sheet.locator("input[name=acknowledge]")
    expect(acknowledge.or_(sheet.locator("section.payment[data-state=succeeded]"))).to_be_visible()
    if acknowledge.count():
        shoot(page, "shell-payment-sheet-challenge")
        acknowledge.check()
        sheet.locator("input[name=pin]").fill(PIN)
        sheet.locator("button[type=submit]").click()
    expect(sheet.locator("section.payment")).to_have_attribute("data-state", "succeeded")
    shoot(page, "shell-payment-sheet-paid")
    page.get_by_role("button", name="Close").click()
    expect(page.locator(".sheet")).to_be_hidden()
    expect(card.locator(".code strong")).to_have_text(re.compile(r"BNC-[A-Z2-9]{8}"))
    shoot(page, "shell-coupon-bought")


def test_the_plugins_frame_cannot_read_the_hosts_cookies(page, context, live_server, sign_in, plugin_origin):
    sign_in(page, DEALS)
    _, frame = _frame(page, plugin_origin)
    session = [c for c in context.cookies(live_server.url) if c["name"] == "canopy_session"]
    assert session and session[0]["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    assert frame.evaluate("self.origin") == "null"
    assert frame.evaluate(READ_COOKIE) == "SecurityError"
    assert not [c for c in context.cookies(plugin_origin("sh.deals")) if c["name"] == "canopy_session"]
    # Even a script of the plugin's origin opened on its own reads no host cookie.
    page.goto(plugin_origin("sh.deals") + "/?branch=SH001&lang=en")
    assert page.evaluate(READ_COOKIE) == "SecurityError"
    assert page.evaluate("window.canopy.available") is False


def test_login_gives_a_code_the_plugins_back_end_exchanges(page, sign_in, plugin_origin):
    sign_in(page, DEALS)
    _, frame = _frame(page, plugin_origin)
    answer = frame.evaluate("canopy.login()")
    assert re.fullmatch(r"[A-Za-z0-9_-]{30,}", answer["code"]) and answer["expires_in"] == 60
    exchanged = frame.evaluate("""code => fetch("/_canopy/session", {method: "POST",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({code})})
        .then(async r => ({status: r.status, body: await r.json()}))""", answer["code"])
    assert exchanged["status"] == 200 and exchanged["body"]["session_token"]
    again = frame.evaluate("""code => fetch("/_canopy/session", {method: "POST",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({code})}).then(r => r.status)""",
                           answer["code"])
    assert again == 400  # used once
    claims = frame.evaluate("""() => canopy.fetch(document.querySelector("main").dataset.claimsApi)
        .then(async r => ({status: r.status, body: await r.json()}))""")
    assert claims["status"] == 200 and isinstance(claims["body"]["claims"], list)  # as the customer


def test_an_anonymous_visitor_is_told_to_sign_in(page, plugin_origin):
    page.goto(DEALS)
    _, frame = _frame(page, plugin_origin)
    error = frame.evaluate("canopy.login().then(() => 'no error', e => e.code)")
    assert error == "sign_in_required"


def test_messages_from_elsewhere_are_ignored(page, sign_in, plugin_origin):
    sign_in(page, DEALS)
    _, frame = _frame(page, plugin_origin)
    shell = page.locator("[data-canopy-shell]")
    # From the host's own window (not the frame): ignored and counted.
    page.evaluate("window.postMessage({canopy: 1, id: 'x1', method: 'login', params: {}}, '*')")
    expect(shell).to_have_attribute("data-ignored", "1")
    # From the frame, but without the shell's secret, with an unknown version or method: ignored.
    replies = frame.evaluate("""host => new Promise(resolve => {
        const seen = [];
        // Only answers to these forged calls count: the page's own bridge calls get theirs meanwhile.
        addEventListener("message", event => { if (/^x/.test(event.data && event.data.id)) seen.push(event.data); });
        parent.postMessage({canopy: 1, id: "x2", method: "login", params: {}, nonce: "0".repeat(48)}, host);
        parent.postMessage({canopy: 2, id: "x3", method: "login", params: {}}, host);
        parent.postMessage({canopy: 1, id: "x4", method: "stealCookies", params: {}}, host);
        parent.postMessage({canopy: 1, id: "x5", method: "login", params: {pad: "x".repeat(20000)}}, host);
        setTimeout(() => resolve(seen), 1000);
    })""", page.evaluate("location.origin"))
    assert replies == []
    expect(shell).to_have_attribute("data-ignored", "5")
    # The real bridge still works.
    assert frame.evaluate("canopy.track('deal.viewed', {coupon: 'bund-cruise'})") == {"recorded": True}


def test_navigate_and_authorize(page, sign_in, plugin_origin, live_server):
    sign_in(page, DEALS)
    _, frame = _frame(page, plugin_origin)
    # No consent needed for payments: granted at once, no sheet.
    assert frame.evaluate("canopy.authorize(['payments:create'])")["granted"] is True
    error = frame.evaluate("canopy.authorize(['profile.phone:read']).then(() => 'no error', e => e.code)")
    assert error == "refused"  # not in the manifest
    # Not awaited: the shell replaces the page, and this frame with it, while the call is under way.
    frame.evaluate(f"() => {{ canopy.navigate('/deal?id={PAID_COUPON}'); }}")
    expect(page).to_have_url(re.compile(re.escape(live_server(f"/mp/sh.deals/deal?id={PAID_COUPON}"))))
    expect(page.frame_locator("iframe.mp-frame").get_by_role("heading", level=1)).to_contain_text("cruise")


def test_a_customer_claims_a_free_coupon(page, sign_in, plugin_origin, shoot):
    sign_in(page, DEALS)
    frame, _ = _frame(page, plugin_origin)
    claim = frame.get_by_role("button", name="Claim", exact=True).first
    card = frame.locator("article.deal", has=claim).first
    deal = card.get_attribute("data-deal")
    claim.click()
    mine = frame.locator(f'[data-deal="{deal}"] .code strong')
    expect(mine).to_be_visible()
    code = mine.inner_text().strip()
    assert code
    shoot(page, "shell-coupon-claimed")
    page.reload()  # kept: the plugin's back end holds the claim for this customer
    expect(page.frame_locator("iframe.mp-frame").locator(f'[data-deal="{deal}"] .code strong')).to_have_text(code)
