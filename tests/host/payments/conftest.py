"""Fixtures of the payment tests: the demo app with a shop mini-program (in-process, branch
SH001's) that may take payments, its registered OAuth client, and signed-in customers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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


def _write(root: Path, plugin_id: str) -> None:
    folder = root / plugin_id.replace(".", "_").replace("-", "_")
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(textwrap.dedent(f"""\
        id = "{plugin_id}"
        name = {{ zh = "测试商店", en = "Test shop" }}
        version = "1.0.0"
        publisher = {{ kind = "branch", id = "SH001" }}
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
        _write(folder, plugin_id)
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
