"""city.utilities, a partner plugin, end to end in the sandbox: its tile in a storefront, its
pages, its API as a signed-in customer, and a payment intent made through ``ctx.payments``.
Everything goes through HTTP on the demo app; the plugin's code runs only in its workers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from host.db import get_database
from host.runtime import get_runtime
from host.runtime.sandboxed import SandboxedPlugin

CITY = "http://city.utilities.mp.localhost:8000"
PLUGIN = "city.utilities"
PHONE, PASSWORD = "13800000001", "canopy-demo-1"


@pytest.fixture
def demo(app_factory, isolation):
    """The seeded demo app, with the sandbox on (as it is by default)."""
    from host.db import get_database
    from host.demo import seed
    from host.runtime.registry import sync_registry

    app = app_factory(SANDBOX="auto")
    with app.app_context():
        with get_database(app).transaction(write=True) as session:
            sync_registry(session, get_runtime(app), approve=True)
        with get_database(app).transaction(write=True) as session:
            seed(session)
    get_runtime(app).sandbox.warm(wait=True)  # as a forked server process does in the background
    return app


def sign_in(client) -> None:
    page = client.get("/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/signin", data={"phone": PHONE, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303


def api_session(client) -> dict[str, str]:
    """Log in to the mini-program as the bridge does; return the API's Authorization header."""
    code = client.post(f"/mp/{PLUGIN}/login-code?branch=SH001", json={})
    assert code.status_code == 200, code.get_data(as_text=True)
    exchanged = client.post(f"{CITY}/_canopy/session", json={"code": code.get_json()["code"]})
    assert exchanged.status_code == 200
    return {"Authorization": "Bearer " + exchanged.get_json()["session_token"]}


def test_it_is_served_through_a_sandbox_proxy_never_imported_and_registered_active(demo, app_factory, monkeypatch):
    from host.runtime import loader
    from host.runtime.models import PluginState
    from host.runtime.registry import get_version

    runtime = get_runtime(demo)
    assert isinstance(runtime.plugins[PLUGIN].plugin, SandboxedPlugin)
    assert runtime.pm.get_plugin(PLUGIN) is runtime.plugins[PLUGIN].plugin
    with get_database(demo).transaction() as session:
        assert get_version(session, PLUGIN).state == PluginState.ACTIVE

    imported = []
    real = loader.import_entry
    monkeypatch.setattr(loader, "import_entry", lambda folder, manifest, **kw: imported.append(manifest.id) or real(folder, manifest, **kw))
    again = get_runtime(app_factory(SANDBOX="auto"))
    assert PLUGIN in again.plugins and PLUGIN not in imported and "sh.deals" in imported


def test_a_forked_server_process_uses_workers_of_its_own(demo):
    import os
    import time

    supervisor = get_runtime(demo).sandbox.supervisor(PLUGIN)
    parents = supervisor.acquire(time.monotonic() + 30)
    supervisor.release(parents)
    child = os.fork()
    if child == 0:  # as a gunicorn worker forked from a preloading master
        try:
            worker = supervisor.acquire(time.monotonic() + 30)
            os._exit(0 if worker.pid != parents.pid and worker.alive() else 1)
        finally:
            os._exit(2)
    assert os.waitpid(child, 0)[1] == 0
    assert parents.alive()  # the child never touched (or killed) its parent's worker


def test_its_tile_fills_its_zone_in_the_storefront(demo):
    html = demo.test_client().get("/s/SH001?lang=en").get_data(as_text=True)
    assert 'data-plugin="city.utilities"' in html
    assert "Link your utility accounts" in html


def test_its_pages_render_from_its_templates(demo):
    client = demo.test_client()
    for path, title in (("/", "City utilities"), ("/bills", "Bills due"), ("/link", "Link an account")):
        response = client.get(f"{CITY}{path}?branch=SH001&lang=en")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert title in response.get_data(as_text=True)
    assert client.get(f"{CITY}/no-such-page?branch=SH001").status_code == 404
    assert client.get(f"{CITY}/static/utilities.css").status_code == 200


def test_its_api_links_an_account_lists_bills_and_asks_for_a_payment_through_ctx_payments(demo):
    from host.identity.models import Customer
    from host.payments.models import PaymentIntent

    client = demo.test_client()
    sign_in(client)
    headers = api_session(client)
    assert client.get(f"{CITY}/api/bills?branch=SH001").status_code == 401  # the plugin's own "sign in first"

    linked = client.post(f"{CITY}/api/accounts?branch=SH001&lang=en", headers=headers,
                         json={"utility": "gas", "account_no": "55554444"})
    assert linked.status_code == 200, linked.get_data(as_text=True)
    bill = linked.get_json()["bill"]
    statement = client.get(f"{CITY}/api/bills?branch=SH001", headers=headers).get_json()
    assert [b["id"] for b in statement["bills"]] == [bill["id"]] and statement["total_due"] == bill["amount"]
    duplicate = client.post(f"{CITY}/api/accounts?branch=SH001&lang=en", headers=headers,
                            json={"utility": "gas", "account_no": "55554444"})
    assert duplicate.status_code == 409  # the plugin's ApiError crosses the boundary as a problem

    with get_database(demo).transaction() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.phone == PHONE))
    paid = client.post(f"{CITY}/api/bills/{bill['id']}/pay?branch=SH001&lang=en", headers=headers)
    assert paid.status_code == 200, paid.get_data(as_text=True)
    answer = paid.get_json()
    assert answer["amount"] == bill["amount"] and answer["currency"] == "CNY" and answer["confirm_url"]
    with get_database(demo).transaction() as session:
        intent = session.get(PaymentIntent, answer["intent_id"])
        assert (intent.plugin_id, intent.customer_id, intent.amount) == (PLUGIN, customer_id, bill["amount"])
        assert intent.state == "requires_confirmation"
    again = client.post(f"{CITY}/api/bills/{bill['id']}/pay?branch=SH001&lang=en", headers=headers)
    assert again.get_json()["intent_id"] == answer["intent_id"]  # the same intent, never a second charge

    # Its zone, for this customer (as the shell asks for it), shows the bill due.
    from canopy_sdk import BranchInfo

    runtime = get_runtime(demo)
    ctx = runtime.context(PLUGIN, branch=BranchInfo(code="SH001", name="Shanghai"), locale="en",
                          approved_scopes=["payments:create", "payments:read"], customer_id=customer_id)
    [zone] = runtime.tiles([ctx])
    assert zone.ok and zone.value[0].link == "/bills" and zone.value[0].badge == "1 bill"

    # The bank reports the payment: the event reaches the plugin in its worker, which marks the bill paid.
    import dataclasses

    from canopy_sdk import Event

    with demo.app_context():
        intent = ctx.payments.get(answer["intent_id"])
    event = Event(id="evt_sandbox_1", type="payment_intent.succeeded", plugin_id=PLUGIN,
                  occurred_at="2026-11-23T08:00:00+00:00", data={"intent": dataclasses.replace(intent, state="succeeded").to_wire()},
                  branch="SH001", customer=ctx.customer.subject)
    delivered = runtime.event(runtime.context(PLUGIN, branch=ctx.branch, locale="en", approved_scopes=[],
                                              customer_id=customer_id), event)
    assert delivered.ok, delivered
    statement = client.get(f"{CITY}/api/bills?branch=SH001", headers=headers).get_json()
    assert statement["bills"][0]["status"] == "paid" and statement["total_due"] == 0


def test_loading_leaves_no_thread_or_process_of_the_sandbox_behind(app_factory, isolation, monkeypatch):
    """gunicorn loads the app in its master and forks: loading must leave no thread or worker running."""
    import threading

    from host.runtime import sandboxed

    monkeypatch.setattr(sandboxed, "_inspected", {})  # inspect again: a worker starts and stops
    before = {t.ident for t in threading.enumerate()}
    runtime = get_runtime(app_factory(SANDBOX="auto"))
    assert isinstance(runtime.plugins[PLUGIN].plugin, SandboxedPlugin)
    assert (PLUGIN, runtime.plugins[PLUGIN].checksum) in sandboxed._inspected
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []
    assert runtime.sandbox.status()[0]["workers"] == 0
