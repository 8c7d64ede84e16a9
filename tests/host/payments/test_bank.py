"""The bank test (Jepsen-style), on PostgreSQL through a real gunicorn.

Many concurrent clients pay and refund between random customers and merchants: three shops of
three branches (three settlement accounts) create intents through the API with
``Idempotency-Key``, customers confirm them on ``/pay/<id>`` with their PIN, the shops refund
parts of what was paid. Meanwhile gunicorn workers are killed with SIGKILL mid-flight; every
request that lost its answer is retried with the same key (a confirmation is simply sent
again), and some answered ones are sent again on purpose. Then:

* every invariant of ``canopy payments check`` holds (run as the command operators run);
* no key moved money twice: one intent per payment key, one refund per refund key, and every
  replay answered with the first answer;
* what the clients were told matches the ledger: each customer's balance is what they were
  funded minus what they paid plus what was refunded to them, each intent's refunded amount is
  the sum of the refunds acknowledged for it, and nothing acknowledged is missing.

Some customers have little money, so payments also fail for want of funds while others race.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.host.oauth.conftest import ISSUER, Partner, PartnerKey
from tests.host.payments.conftest import write_shop
from tests.live import LOW_ARGON2, LiveServer, canopy, environment

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SHOPS = [("bank.shop-sh", "SH001"), ("bank.shop-bj", "BJ001"), ("bank.shop-gz", "GZ001")]
#: The demo customers (PIN as host/demo.py seeds them) plus four with little money.
RICH = [("13800000001", "canopy-demo-1", "147258"), ("13900000002", "canopy-demo-2", "258369")]
POOR = [(f"137000000{n:02d}", f"bank-test-{n}", "369258") for n in range(1, 5)]
POOR_FUNDS = 30_000  # fen: a few payments each, then "insufficient funds"
CLIENTS = 12
OPERATIONS = 22  # per client
WORKERS = 3
KILLS = 4
REPLAY_SHARE = 0.25  # answered requests sent again on purpose
ATTEMPTS = 12
LOST = (http.client.HTTPException, ConnectionError, TimeoutError, OSError)

# -- the setting: shops, customers, risk rules, a live server -----------------------------------


def _add_poor_customers(session) -> None:
    from host.identity import services
    from host.identity.models import Customer, new_id
    from host.payments import rails

    for phone, password, pin in POOR:
        customer = Customer(id=new_id(), phone=phone, password_hash=services.hasher().hash(password), nickname=phone,
                            locale="zh-CN", branch_code="SH001")
        customer.pin_hash = services.pin_hasher().hash(customer.id, pin)
        session.add(customer)
        session.flush()
        rails.top_up(session, customer.id, POOR_FUNDS, "CNY")


def _risk_rules_off(session) -> None:
    """Velocity and new-device challenges would stop most of a fast run; the rules that deny
    (limits, blocked merchants) stay on."""
    from sqlalchemy import select

    from host.identity.models import Staff
    from host.payments.risk.rules import app_rules
    from host.payments.risk.settings import effective_settings, update_setting

    admin = session.scalar(select(Staff).where(Staff.username == "hq.admin"))
    current = effective_settings(session, None, app_rules())
    for rule in ("velocity", "new_device"):
        update_setting(session, admin, "*", rule, False, current[rule].params)


@dataclass
class Shop:
    """A shop's back end: its client, key and access token (client credentials, DPoP-bound)."""

    plugin_id: str
    key: PartnerKey
    token: str


@pytest.fixture
def bank(app_factory, seed_demo, tmp_path, database_url, postgres_only):
    """Three approved shops with OAuth clients, six funded customers, a gunicorn server with
    ``WORKERS`` workers on the test's PostgreSQL database."""
    from host.db import get_database
    from host.runtime.registry import approve_scopes
    from tests.conftest import SECRET

    folder = tmp_path / "shops"
    for plugin_id, branch in SHOPS:
        write_shop(folder, plugin_id, branch)
    paths = [str(ROOT / "plugins"), str(folder)]
    app = app_factory(PLUGIN_PATHS=paths, OAUTH_ISSUER=ISSUER)
    seed_demo(app)
    shops = []
    with app.app_context():
        with get_database(app).transaction(write=True) as session:
            for plugin_id, _ in SHOPS:
                approve_scopes(session, plugin_id, "1.0.0")
            _add_poor_customers(session)
            _risk_rules_off(session)
        for plugin_id, _ in SHOPS:
            partner = Partner(app, plugin_id, PartnerKey("ES256"))
            partner.register()
            answer = partner.token({"grant_type": "client_credentials",
                                    "scope": "payments:create payments:read refunds:create"})
            assert answer.status_code == 200, answer.get_json()
            shops.append(Shop(plugin_id, partner.key, answer.get_json()["access_token"]))

    home = tmp_path / "live"
    home.mkdir()
    env = environment(CANOPY_DATABASE_URL=database_url, CANOPY_SECRET_KEY=SECRET,
                      CANOPY_INSTANCE_PATH=str(home / "instance"), CANOPY_PLUGIN_PATHS=os.pathsep.join(paths),
                      CANOPY_LOAD_ENTRY_POINTS="false", CANOPY_OAUTH_ISSUER=ISSUER, CANOPY_THREADS="4",
                      CANOPY_LOG_LEVEL="WARNING", **LOW_ARGON2)
    server = LiveServer(env, home, workers=WORKERS).start()
    try:
        yield app, shops, server
    finally:
        server.stop()


# -- clients ---------------------------------------------------------------------------------------


class Lost(Exception):
    """The request's answer never came (the worker died, the connection broke): retry it."""


class Connection:
    """One keep-alive connection to the server, opened again after it breaks."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.http: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
        """(status, headers, body text); :class:`Lost` when no answer came, or a 502/503/504."""
        try:
            if self.http is None:
                self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.http.request(method, path, body=body, headers=headers)
            response = self.http.getresponse()
            text = response.read().decode("utf-8", "replace")
        except LOST as exc:
            self.close()
            raise Lost(f"{method} {path}: {exc.__class__.__name__}") from None
        if response.status in (502, 503, 504):
            self.close()
            raise Lost(f"{method} {path}: {response.status}")
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, response.headers, text

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


@dataclass
class History:
    """What the clients were told, and what went wrong."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    intents: dict[str, dict] = field(default_factory=dict)  # payment key → intent as first answered
    paid: dict[str, dict] = field(default_factory=dict)  # intent id → {"shop", "amount", "customer"}
    refunds: dict[str, dict] = field(default_factory=dict)  # refund key → refund as first answered
    refused_refunds: int = 0
    unpaid: Counter = field(default_factory=Counter)  # why an intent was not paid
    retries: int = 0
    replays: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text[:500])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, f"no CSRF field in the page: {html[:300]}"
    return found.group(1)


class Client(threading.Thread):
    """One client: pays and refunds at random, retrying what lost its answer with the same key."""

    def __init__(self, number: int, server: LiveServer, shops: list[Shop], sessions: dict[str, dict[str, str]],
                 history: History, start: threading.Barrier) -> None:
        super().__init__(name=f"bank-client-{number}", daemon=True)
        self.number = number
        self.rng = random.Random(number)
        self.conn = Connection(server.port)
        self.shops = shops
        self.cookies = {phone: dict(jar) for phone, jar in sessions.items()}  # this client's copy
        self.history = history
        self.start_line = start

    # retries ----------------------------------------------------------------------------------

    def _retrying(self, send):
        for attempt in range(ATTEMPTS):
            try:
                return send()
            except Lost:
                with self.history.lock:
                    self.history.retries += 1
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError(f"{self.name}: no answer after {ATTEMPTS} attempts")

    def _api(self, shop: Shop, method: str, path: str, body: dict | None = None, key: str | None = None):
        def send():
            headers = {"Authorization": f"DPoP {shop.token}",
                       "DPoP": shop.key.proof(method, f"{ISSUER}{path}", access_token=shop.token)}
            if key is not None:
                headers["Idempotency-Key"] = key
            data = None
            if body is not None:
                headers["Content-Type"] = "application/json"
                data = json.dumps(body).encode()
            status, _, text = self.conn.send(method, path, headers, data)
            return status, json.loads(text) if text.startswith("{") else text

        return self._retrying(send)

    def _page(self, phone: str, method: str, path: str, form: dict | None = None):
        def send():
            jar = self.cookies[phone]
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
            body = None
            if form is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                body = urlencode(form).encode()
            status, response_headers, text = self.conn.send(method, path, headers, body)
            for value in response_headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie()
                cookie.load(value)
                jar.update({name: morsel.value for name, morsel in cookie.items()})
            return status, text

        return self._retrying(send)

    # operations -------------------------------------------------------------------------------

    def pay(self, op: str) -> None:
        shop = self.rng.choice(self.shops)
        phone, _, pin = self.rng.choice(RICH + POOR)
        amount = self.rng.randint(1, 12_000)
        key = f"pay-{op}"
        body = {"amount": amount, "currency": "CNY", "description": f"bank test {op}", "metadata": {"op": key}}
        status, intent = self._api(shop, "POST", "/api/v1/payments/intents", body, key)
        if status != 201:
            return self.history.error(f"create {op}: {status} {intent}")
        with self.history.lock:
            self.history.intents[key] = {**intent, "shop": shop.plugin_id}
        if self.rng.random() < REPLAY_SHARE:
            self.replay_create(shop, key, body, intent)

        path = f"/pay/{intent['id']}"
        status, page = self._page(phone, "GET", path)
        if status != 200:
            return self.history.error(f"open {op}: {status} {page[:200]}")
        form = {"pin": pin, "csrf_token": _csrf(page), "acknowledge": "yes"}
        confirmed, page = self._page(phone, "POST", path, form)
        if confirmed >= 500 or confirmed in (400, 404):
            return self.history.error(f"confirm {op}: {confirmed} {page[:300]}")
        if confirmed == 200 and self.rng.random() < REPLAY_SHARE:  # confirming again never pays again
            again, _ = self._page(phone, "POST", path, form)
            with self.history.lock:
                self.history.replays += 1
            if again != 200:
                self.history.error(f"confirm {op} again: {again}")

        status, seen = self._api(shop, "GET", f"/api/v1/payments/intents/{intent['id']}")
        if status != 200:
            return self.history.error(f"read {op}: {status} {seen}")
        with self.history.lock:
            if seen["state"] == "succeeded":
                self.history.paid[intent["id"]] = {"shop": shop, "amount": amount, "customer": phone}
            else:
                self.history.unpaid[f"{status_name(confirmed)}:{seen['state']}"] += 1

    def replay_create(self, shop: Shop, key: str, body: dict, first: dict) -> None:
        status, again = self._api(shop, "POST", "/api/v1/payments/intents", body, key)
        with self.history.lock:
            self.history.replays += 1
        if status != 201 or again.get("id") != first["id"]:
            self.history.error(f"replayed create {key}: {status} {again} (first {first['id']})")

    def refund(self, op: str) -> None:
        with self.history.lock:
            if not self.history.paid:
                return None
            intent_id = self.rng.choice(sorted(self.history.paid))
            paid = self.history.paid[intent_id]
        shop = paid["shop"]
        amount = self.rng.randint(1, max(1, paid["amount"] // 2))
        key = f"refund-{op}"
        body = {"amount": amount, "reason": key}
        path = f"/api/v1/payments/intents/{intent_id}/refunds"
        status, refund = self._api(shop, "POST", path, body, key)
        if status == 201:
            with self.history.lock:
                self.history.refunds[key] = refund
            if self.rng.random() < REPLAY_SHARE:
                again_status, again = self._api(shop, "POST", path, body, key)
                with self.history.lock:
                    self.history.replays += 1
                if again_status != 201 or again.get("id") != refund["id"]:
                    self.history.error(f"replayed refund {key}: {again_status} {again} (first {refund['id']})")
        elif status in (409, 422) and "refund" in json.dumps(refund):  # more than is left: others refunded first
            with self.history.lock:
                self.history.refused_refunds += 1
        else:
            self.history.error(f"refund {op}: {status} {refund}")

    def run(self) -> None:
        try:
            self.start_line.wait(timeout=60)
            for n in range(OPERATIONS):
                op = f"{self.number}-{n}"
                (self.refund if self.rng.random() < 0.3 else self.pay)(op)
        except Exception as exc:  # noqa: BLE001 - reported as the test's failure
            self.history.error(f"{self.name} stopped: {exc!r}")
        finally:
            self.conn.close()


def status_name(status: int) -> str:
    return {200: "ok", 402: "insufficient", 403: "denied", 409: "closed"}.get(status, str(status))


def _sign_in(server: LiveServer, phone: str, password: str) -> dict[str, str]:
    conn = Connection(server.port)
    jar: dict[str, str] = {}

    def keep(headers) -> None:
        for value in headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(value)
            jar.update({name: morsel.value for name, morsel in cookie.items()})

    status, headers, page = conn.send("GET", "/signin", {})
    keep(headers)
    form = urlencode({"phone": phone, "password": password, "csrf_token": _csrf(page)}).encode()
    status, headers, _ = conn.send("POST", "/signin", {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
                                                     "Content-Type": "application/x-www-form-urlencoded"}, form)
    keep(headers)
    conn.close()
    assert status == 303, f"sign-in of {phone} answered {status}"
    return jar


class Killer(threading.Thread):
    """Kills a gunicorn worker with SIGKILL every so often while the clients run."""

    def __init__(self, server: LiveServer, done: threading.Event) -> None:
        super().__init__(name="bank-killer", daemon=True)
        self.server = server
        self.done = done
        self.killed: list[int] = []

    def run(self) -> None:
        rng = random.Random(7)
        while len(self.killed) < KILLS and not self.done.wait(rng.uniform(0.4, 1.0)):
            workers = self.server.worker_pids()
            victim = rng.choice(workers) if workers else None
            if victim and self.server.kill_worker(victim):
                self.killed.append(victim)


# -- the test -----------------------------------------------------------------------------------


def test_concurrent_payments_and_refunds_survive_killed_workers(bank):
    from sqlalchemy import func, select

    from host.db import get_database
    from host.identity.models import Customer
    from host.payments.models import Account, AccountKind, IntentState, PaymentIntent, Refund

    app, shops, server = bank
    sessions = {phone: _sign_in(server, phone, password) for phone, password, _ in RICH + POOR}
    with app.app_context(), get_database(app).transaction() as session:
        customer_ids = {phone: id_ for phone, id_ in session.execute(select(Customer.phone, Customer.id))}
        funded = {owner: balance for owner, balance in session.execute(
            select(Account.owner, Account.balance).where(Account.kind == AccountKind.CUSTOMER))}

    history = History()
    start = threading.Barrier(CLIENTS + 1)
    clients = [Client(n, server, shops, sessions, history, start) for n in range(CLIENTS)]
    for client in clients:
        client.start()
    done = threading.Event()
    killer = Killer(server, done)
    start.wait(timeout=60)
    killer.start()
    for client in clients:
        client.join(timeout=240)
    done.set()
    killer.join(timeout=10)
    assert not any(client.is_alive() for client in clients), "a client hung"

    log = server.output()
    assert not history.errors, "\n".join(history.errors[:20]) + "\n--- server log ---\n" + log[-3000:]
    assert len(killer.killed) == KILLS, f"only {len(killer.killed)} workers were killed"
    assert history.retries > 0, "no request lost its answer: the kills hit nothing in flight"
    print(f"paid {len(history.paid)}, refunds {len(history.refunds)} (refused {history.refused_refunds}), unpaid {dict(history.unpaid)}, retries {history.retries}, replays {history.replays}, killed {killer.killed}")
    assert len(history.paid) >= 20 and history.refunds, (len(history.paid), len(history.refunds))

    # every invariant holds, checked by the command operators run
    checked = canopy("payments", "check", env=server.env, cwd=server.cwd)
    report = json.loads(checked.stdout)
    assert report["ok"], json.dumps(report["invariants"], indent=2)[:3000]

    with app.app_context(), get_database(app).transaction() as session:
        intents = session.scalars(select(PaymentIntent).where(PaymentIntent.plugin_id.in_([s.plugin_id for s in shops]))).all()
        refunds = session.scalars(select(Refund)).all()
        balances = {owner: balance for owner, balance in session.execute(
            select(Account.owner, Account.balance).where(Account.kind == AccountKind.CUSTOMER))}
        merchants = session.scalar(select(func.count()).select_from(Account).where(Account.kind == AccountKind.MERCHANT))

    # one intent per payment key, and it is the one the client was given
    by_key = defaultdict(list)
    for intent in intents:
        by_key[intent.metadata_["op"]].append(intent.id)
    assert all(len(ids) == 1 for ids in by_key.values()), {k: v for k, v in by_key.items() if len(v) > 1}
    assert {key: ids[0] for key, ids in by_key.items()} == {key: i["id"] for key, i in history.intents.items()}

    # one refund per refund key, the one answered; each intent's refunds are those acknowledged
    refund_keys = Counter(refund.reason for refund in refunds)
    assert all(n == 1 for n in refund_keys.values()), [k for k, n in refund_keys.items() if n > 1]
    assert {refund.reason: refund.id for refund in refunds} == {key: r["id"] for key, r in history.refunds.items()}
    acknowledged = Counter()
    for refund in history.refunds.values():
        acknowledged[refund["intent_id"]] += refund["amount"]
    by_id = {intent.id: intent for intent in intents}
    assert {i.id: i.amount_refunded for i in intents if i.amount_refunded} == dict(acknowledged)

    # the intents told succeeded are exactly the succeeded ones; balances follow from them
    succeeded = {i.id for i in intents if i.state == IntentState.SUCCEEDED}
    assert succeeded == set(history.paid)
    expected = dict(funded)
    for intent_id, paid in history.paid.items():
        owner = customer_ids[paid["customer"]]
        assert by_id[intent_id].customer_id == owner
        expected[owner] -= paid["amount"] - acknowledged[intent_id]
    assert balances == expected
    assert all(balance >= 0 for balance in balances.values())
    assert merchants == len(SHOPS)
    assert history.unpaid["insufficient:requires_confirmation"] > 0, history.unpaid  # the poor ran out meanwhile
