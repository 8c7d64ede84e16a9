"""The publishing tests' shared pieces: a branch mini-program with two approved versions,
installed in SH001, and helpers that act on its release and read what customers see."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from host.db import get_database
from host.identity.models import Customer
from host.publishing import lifecycle, services
from host.storefront.models import Installation

PLUGIN = "sh.coupons"
PAGE_HOST = f"http://{PLUGIN}.mp.localhost:8000"


def code(version: str) -> bytes:
    """A plugin whose tile and page say which version answered."""
    return f'''from canopy_sdk import Page, Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="coupons {version}")]

    @hookimpl
    def canopy_page(self, ctx, path, query):
        return Page(title="Home", template="index.html") if path == "/" else None

    @hookimpl
    def canopy_on_event(self, ctx, event):
        ctx.storage.set("last_event", "{version} " + event.type)


plugin = Plugin()
'''.encode()


def make_shop(app, actors, package_zip, codes: dict[str, bytes] | None = None):
    """``app`` with ``sh.coupons`` 1.0.0 and 2.0.0 uploaded and approved (neither released),
    installed in SH001's storefront, and ten more customers; ``codes`` replaces a version's code."""
    database = get_database(app)
    with app.app_context(), database.transaction(write=True) as session:
        for version in ("1.0.0", "2.0.0"):
            main = (codes or {}).get(version) or code(version)
            files = {"main.py": main, "static/app.css": f"/* {version} */",
                     "templates/index.html": f'<h1>{PLUGIN} {version}</h1><link rel="stylesheet" '
                                             "href=\"{{ static_url('app.css') }}\"><a href=\"{{ page_url('/') }}\">home</a>"}
            services.upload(session, actors["sh.admin"], PLUGIN, package_zip(PLUGIN, version, files=files),
                            services.package_store(app))
            for actor, action in (("sh.admin", "submit"), ("system", "pass_precheck"), ("hq.reviewer", "start_review"),
                                  ("hq.reviewer2", "approve")):
                lifecycle.apply(session, actors[actor], PLUGIN, version, action)
        session.add(Installation(branch_code="SH001", plugin_id=PLUGIN, version="1.0.0", position=5))
        for n in range(10):  # more customers than the demo's two, in Shanghai and Beijing
            session.add(Customer(phone=f"1370000{n:04d}", password_hash="-", nickname=f"c{n}",
                                 branch_code="SH001" if n % 2 else "BJ001"))
    return app


@pytest.fixture
def shop(demo_app, actors, package_zip):
    """The demo with ``sh.coupons`` 1.0.0 and 2.0.0 approved and installed (:func:`make_shop`)."""
    return make_shop(demo_app, actors, package_zip)


def act(app, function, actor, **kwargs):
    with app.app_context(), get_database(app).transaction(write=True) as session:
        return function(session, actor, PLUGIN, **kwargs)


def customers(app) -> dict[str, tuple[str, str]]:
    """The demo's customers: phone → (id, home branch)."""
    with get_database(app).transaction() as session:
        return {phone: (cid, branch) for cid, phone, branch in session.execute(
            select(Customer.id, Customer.phone, Customer.branch_code))}


def seen(app, customer_id: str | None, branch: str = "SH001") -> str | None:
    """The version of sh.coupons whose tile the customer's storefront shows (None: no zone)."""
    client = app.test_client()
    if customer_id is not None:
        with client.session_transaction() as cookie:
            cookie["customer_id"] = customer_id
    html = client.get(f"/s/{branch}?lang=en").get_data(as_text=True)
    found = re.findall(r"coupons (\d\.\d\.\d)", html)
    assert len(set(found)) <= 1
    return found[0] if found else None


def page(app, version_hint: str | None = None) -> tuple[int, str]:
    """The plugin's page on its own origin, as the shell's frame asks for it."""
    hint = f"&canopy_version={version_hint}" if version_hint else ""
    response = app.test_client().get(f"{PAGE_HOST}/?branch=SH001&lang=en{hint}")
    return response.status_code, response.get_data(as_text=True)


