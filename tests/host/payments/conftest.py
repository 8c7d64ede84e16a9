"""Fixtures of the payment tests: the demo app with a shop mini-program (in-process, branch
SH001's) that may take payments, its registered OAuth client, and signed-in customers."""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from host.db import utcnow
from host.payments.models import Account, IntentState, PaymentIntent, Posting, Refund, Transfer, TransferKind
from tests.host.oauth.conftest import ISSUER, Browser, Partner, PartnerKey

ROOT = Path(__file__).resolve().parents[3]
SHOP = "test.shop"
OTHER = "test.other-shop"
PIN = "147258"  # the demo customers' payment PIN
SHOP_CODE = """\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title=ctx.plugin_id)]

    @hookimpl
    def canopy_on_event(self, ctx, event):
        ctx.storage.set("event:" + event.id, {"type": event.type, "intent": event.data["intent"]["id"],
                                              "customer": event.customer})


plugin = Plugin()
"""


def write_shop(root: Path, plugin_id: str, branch: str = "SH001") -> None:
    """A shop mini-program's folder under ``root``, published by ``branch`` (its settlement account)."""
    folder = root / plugin_id.replace(".", "_").replace("-", "_")
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(textwrap.dedent(f"""\
        id = "{plugin_id}"
        name = {{ zh = "测试商店", en = "Test shop" }}
        version = "1.0.0"
        publisher = {{ kind = "branch", id = "{branch}" }}
        entry = "main:plugin"
        scopes = ["payments:create", "payments:read", "refunds:create"]
        pages = [{{ path = "/", title = {{ zh = "首页", en = "Home" }} }}]
        """), encoding="utf-8")
    (folder / "main.py").write_text(SHOP_CODE, encoding="utf-8")


@pytest.fixture
def pay_app(app_factory, tmp_path, seed_demo):
    """The demo app (customers funded with 10,000.00 CNY) plus two shops, approved."""
    from host.db import get_database
    from host.runtime.registry import approve_scopes

    folder = tmp_path / "shops"
    for plugin_id in (SHOP, OTHER):
        write_shop(folder, plugin_id)
    app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(folder)], OAUTH_ISSUER=ISSUER)
    seed_demo(app)
    with app.app_context(), get_database(app).transaction(write=True) as session:
        for plugin_id in (SHOP, OTHER):
            approve_scopes(session, plugin_id, "1.0.0")
    return app


@pytest.fixture
def shop(pay_app):
    """The shop's back end: a registered client with its key."""
    partner = Partner(pay_app, SHOP, PartnerKey("ES256"))
    partner.register()
    return partner


@pytest.fixture
def other_shop(pay_app):
    partner = Partner(pay_app, OTHER, PartnerKey("ES256"))
    partner.register()
    return partner


@pytest.fixture
def customer(pay_app):
    """The first demo customer, signed in."""
    browser = Browser(pay_app)
    browser.sign_in()
    return browser


@pytest.fixture
def server_token():
    """``server_token(partner, scope)``: a client-credentials access token."""

    def issue(partner, scope="payments:create payments:read refunds:create"):
        response = partner.token({"grant_type": "client_credentials", "scope": scope})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    return issue


# -- ledger rows written directly (invariants, statements, the CLI) ----------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class Ledger:
    """Writes ledger rows directly, as the payment service leaves them (or, for the invariant tests,
    as it never would): ``balances=False`` skips moving the balances; ``at`` dates the rows."""

    def __init__(self, session, customer_id: str | None = None, plugin_id: str = "city.utilities") -> None:
        self.session = session
        self.customer_id = customer_id
        self.plugin_id = plugin_id

    def account(self, kind: str, owner: str, currency: str = "CNY") -> Account:
        account = Account(kind=kind, owner=owner, currency=currency, balance=0)
        self.session.add(account)
        self.session.flush()
        return account

    def transfer(self, kind: str, legs: list[tuple[Account, int]], *, amount: int | None = None,
                 currency: str | None = None, intent_id: str | None = None, refund_id: str | None = None,
                 balances: bool = True, at: datetime | None = None, description: str = "",
                 transfer_id: str | None = None) -> Transfer:
        at = at or utcnow()
        transfer = Transfer(
            id=transfer_id or new_id("tr"), kind=kind, currency=currency or legs[0][0].currency,
            amount=amount if amount is not None else sum(a for _, a in legs if a > 0),
            intent_id=intent_id, refund_id=refund_id, description=description or f"{kind} test", created_at=at,
        )
        self.session.add(transfer)
        self.session.flush()
        for account, leg in legs:
            self.session.add(Posting(transfer_id=transfer.id, account_id=account.id, currency=account.currency,
                                     amount=leg, created_at=at))
            if balances:
                account.balance += leg
        self.session.flush()
        return transfer

    def fund(self, customer: Account, clearing: Account, amount: int) -> Transfer:
        return self.transfer(TransferKind.FUNDING, [(clearing, -amount), (customer, amount)])

    def intent(self, merchant: Account, amount: int, state: str = IntentState.REQUIRES_CONFIRMATION) -> PaymentIntent:
        intent = PaymentIntent(
            id=new_id("pi"), plugin_id=self.plugin_id, merchant_account_id=merchant.id, customer_id=self.customer_id,
            amount=amount, currency=merchant.currency, description="Electricity bill", state=state,
            expires_at=utcnow() + timedelta(minutes=15),
        )
        self.session.add(intent)
        self.session.flush()
        return intent

    def pay(self, customer: Account, merchant: Account, amount: int) -> PaymentIntent:
        intent = self.intent(merchant, amount)
        transfer = self.transfer(TransferKind.PAYMENT, [(customer, -amount), (merchant, amount)], intent_id=intent.id)
        intent.state, intent.transfer_id = IntentState.SUCCEEDED, transfer.id
        self.session.flush()
        return intent

    def refund(self, intent: PaymentIntent, customer: Account, merchant: Account, amount: int,
               *, record: bool = True) -> Refund:
        refund_id = new_id("re")
        transfer = self.transfer(TransferKind.REFUND, [(merchant, -amount), (customer, amount)],
                                 intent_id=intent.id, refund_id=refund_id)
        refund = Refund(id=refund_id, intent_id=intent.id, amount=amount, currency=intent.currency,
                        transfer_id=transfer.id)
        self.session.add(refund)
        if record:
            intent.amount_refunded += amount
        self.session.flush()
        return refund
