"""The storefront page ``/s/<branch>``: one zone per installed, active, loaded plugin."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from host.db import get_database
from host.demo import BRANCHES, seed
from host.runtime import get_runtime
from host.runtime.models import PluginState, PluginVersion
from host.runtime.registry import sync_registry
from host.storefront.models import Installation

ROOT = Path(__file__).resolve().parents[3]
ZONE = re.compile(r'<section class="zone" data-plugin="([^"]*)">(.*?)</section>', re.S)


def write_plugin(root: Path, plugin_id: str, code: str) -> None:
    """A bank plugin in ``root`` whose module ``impl`` holds ``code``."""
    folder = root / plugin_id.replace(".", "_")
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(
        f'id = "{plugin_id}"\n'
        f'name = {{ zh = "测试{plugin_id}", en = "Test {plugin_id}" }}\n'
        'version = "1.0.0"\n'
        'publisher = { kind = "bank", id = "HQ" }\n'
        'entry = "impl"\n'
        'pages = [{ path = "/", title = { zh = "首页", en = "Home" } }]\n',
        encoding="utf-8",
    )
    (folder / "impl.py").write_text(
        "import threading\nfrom canopy_sdk import Tile, hookimpl\nRELEASE = threading.Event()\n" + textwrap.dedent(code),
        encoding="utf-8",
    )


def zones(html: str) -> list[tuple[str, str]]:
    return ZONE.findall(html)


def zone_ids(html: str) -> list[str]:
    return [plugin_id for plugin_id, _ in zones(html)]


def setup(app, installs: dict[str, list[tuple[str, int]]] | None = None) -> None:
    """Register and approve every plugin, seed the demo, then install ``installs``
    (plugin id → [(branch, position)])."""
    database = get_database(app)
    with database.transaction(write=True) as session:
        sync_registry(session, get_runtime(app), approve=True)
    with app.app_context(), database.transaction(write=True) as session:
        seed(session)
        for plugin_id, places in (installs or {}).items():
            for branch, position in places:
                session.add(Installation(branch_code=branch, plugin_id=plugin_id, version="1.0.0", position=position))


def expected_zones(app, branch: str) -> list[str]:
    """Installed in ``branch``, active in the registry and loaded, by position."""
    runtime = get_runtime(app)
    with get_database(app).transaction() as session:
        rows = session.execute(
            select(Installation.plugin_id, PluginVersion.state)
            .join(PluginVersion, (PluginVersion.plugin_id == Installation.plugin_id) & (PluginVersion.version == Installation.version))
            .where(Installation.branch_code == branch)
            .order_by(Installation.position)
        ).all()
    return [plugin_id for plugin_id, state in rows if state == PluginState.ACTIVE and plugin_id in runtime.plugins]


GOOD = """
@hookimpl
def canopy_storefront_tiles(ctx):
    return [Tile(title="Hello from " + ctx.branch.code, subtitle="<b>bold</b>", link="/hello?x=1&branch=EVIL", badge="new")]
"""
RAISES = """
@hookimpl
def canopy_storefront_tiles(ctx):
    raise RuntimeError("tile service down: password=hunter2")
"""
HANGS = """
@hookimpl
def canopy_storefront_tiles(ctx):
    RELEASE.wait(30)
    return [Tile(title="too late")]
"""
JUNK = """
@hookimpl
def canopy_storefront_tiles(ctx):
    return [{"title": "a dict is not a Tile"}]
"""
NO_TILES = """
@hookimpl
def canopy_page(ctx, path, query):
    return None
"""


@pytest.fixture
def plugin_root(tmp_path) -> Path:
    root = tmp_path / "test_plugins"
    root.mkdir()
    return root


def build(app_factory, plugin_root, **overrides):
    return app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(plugin_root)], **overrides)


@pytest.mark.parametrize("branch", [code for code, *_ in BRANCHES])
def test_each_demo_branch_shows_its_zones_in_position_order(client, demo_app, branch):
    response = client.get(f"/s/{branch}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'data-branch="{branch}"' in html
    assert zone_ids(html) == expected_zones(demo_app, branch)
    assert zone_ids(html)[0] == "wealth.checkup"  # installed everywhere, first in the grid


def test_the_shanghai_storefront_has_its_own_deals_and_no_partner_zone(client):
    ids = zone_ids(client.get("/s/SH001").get_data(as_text=True))
    assert ids[:2] == ["wealth.checkup", "sh.deals"]
    assert "city.utilities" not in ids  # partner plugins are refused until the sandbox exists
    assert "sh.deals" not in zone_ids(client.get("/s/BJ001").get_data(as_text=True))


def test_zones_follow_positions_not_ids_or_install_order(app_factory, plugin_root):
    write_plugin(plugin_root, "aa.last", GOOD)
    write_plugin(plugin_root, "zz.first", GOOD)
    app = build(app_factory, plugin_root)
    setup(app, {"aa.last": [("SH001", 50)], "zz.first": [("SH001", -5)]})
    html = app.test_client().get("/s/SH001").get_data(as_text=True)
    assert zone_ids(html) == ["zz.first", "wealth.checkup", "sh.deals", "aa.last"]


def test_a_zone_shows_the_plugins_tiles_escaped_and_linked_inside_the_plugin(app_factory, plugin_root):
    write_plugin(plugin_root, "test.good", GOOD)
    app = build(app_factory, plugin_root)
    setup(app, {"test.good": [("BJ001", 5)]})
    html = app.test_client().get("/s/BJ001?lang=en").get_data(as_text=True)
    body = dict(zones(html))["test.good"]
    assert "Hello from BJ001" in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body and "<b>bold</b>" not in body
    assert 'href="/mp/test.good/hello?x=1&amp;branch=BJ001&amp;lang=en"' in body
    assert 'href="/mp/test.good/?branch=BJ001&amp;lang=en"' in body  # the zone's heading opens the start page


def test_a_plugin_not_installed_or_not_active_has_no_zone(app_factory, plugin_root):
    write_plugin(plugin_root, "test.good", GOOD)
    app = build(app_factory, plugin_root)
    setup(app, {"test.good": [("HQ", 5)]})
    client = app.test_client()
    assert "test.good" not in zone_ids(client.get("/s/BJ001").get_data(as_text=True))
    assert "test.good" in zone_ids(client.get("/s/HQ").get_data(as_text=True))
    with get_database(app).transaction(write=True) as session:
        session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == "test.good")).one().state = PluginState.DISABLED
    assert "test.good" not in zone_ids(client.get("/s/HQ").get_data(as_text=True))


def test_an_installed_version_that_is_not_the_loaded_one_has_no_zone(app_factory, plugin_root):
    write_plugin(plugin_root, "test.good", GOOD)
    app = build(app_factory, plugin_root)
    setup(app, {"test.good": [("HQ", 5)]})
    with get_database(app).transaction(write=True) as session:
        version = session.scalars(select(PluginVersion).where(PluginVersion.plugin_id == "test.good")).one()
        version.checksum = "sha256:" + "0" * 64  # the files on disk are not what was registered
    html = app.test_client().get("/s/HQ").get_data(as_text=True)
    assert "test.good" not in zone_ids(html)
    assert "wealth.checkup" in zone_ids(html)


@pytest.mark.parametrize("code", [RAISES, HANGS, JUNK])
def test_a_failing_plugin_loses_only_its_own_zone(app_factory, plugin_root, code):
    write_plugin(plugin_root, "test.bad", code)
    write_plugin(plugin_root, "test.good", GOOD)
    # a budget generous enough for the sound zones on a loaded machine; the hung one never answers
    budgets = {"canopy_storefront_tiles": 1000, "canopy_page": 1000, "canopy_api": 1000, "canopy_on_event": 1000, "canopy_search": 300}
    app = build(app_factory, plugin_root, HOOK_BUDGET_MS=budgets)
    setup(app, {"test.bad": [("HQ", 1)], "test.good": [("HQ", 2)]})
    try:
        response = app.test_client().get("/s/HQ?lang=en")
    finally:
        get_runtime(app).plugins["test.bad"].plugin.RELEASE.set()
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    found = dict(zones(html))
    assert list(found) == ["wealth.checkup", "test.bad", "test.good"]
    assert "zone-unavailable" in found["test.bad"] and '<li class="tile">' not in found["test.bad"]
    assert "Hello from HQ" in found["test.good"] and "zone-unavailable" not in found["test.good"]
    assert "2-minute wealth check-up" in found["wealth.checkup"]
    assert "hunter2" not in html and "too late" not in html


def test_a_plugin_without_tiles_has_an_empty_zone_not_a_failed_one(app_factory, plugin_root):
    write_plugin(plugin_root, "test.quiet", NO_TILES)
    app = build(app_factory, plugin_root)
    setup(app, {"test.quiet": [("HQ", 1)]})
    body = dict(zones(app.test_client().get("/s/HQ").get_data(as_text=True)))["test.quiet"]
    assert "zone-unavailable" not in body
    assert '<li class="tile">' not in body


def test_a_branch_with_nothing_installed_says_so(app_factory, plugin_root):
    app = build(app_factory, plugin_root)
    setup(app)
    with get_database(app).transaction(write=True) as session:
        for installation in session.scalars(select(Installation).where(Installation.branch_code == "GZ001")):
            session.delete(installation)
    html = app.test_client().get("/s/GZ001?lang=en").get_data(as_text=True)
    assert zone_ids(html) == []
    assert "No mini-programs here yet." in html


def test_unknown_branch_is_404(client):
    response = client.get("/s/XX999", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "XX999" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "code",
    ["sh001", "HQ%00", "%00", "A" * 17, "B" * 5000, "%E4%B8%8A%E6%B5%B7", "%F0%9F%8F%A6", "HQ'%20OR%20'1'='1", "..%2F..%2Fetc"],
)
def test_hostile_branch_codes_are_404(client, code):
    response = client.get(f"/s/{code}", headers={"Accept": "text/html"})
    assert response.status_code == 404


def test_a_branch_code_with_markup_is_escaped_on_the_error_page(client):
    html = client.get("/s/%3Cscript%3E", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_home_sends_visitors_to_head_office(client):
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/s/HQ")


@pytest.mark.parametrize(
    ("query", "headers", "lang", "name"),
    [
        ("?lang=en", {}, "en", "Shanghai Branch"),
        ("?lang=zh-CN", {"Accept-Language": "en"}, "zh-CN", "上海分行"),
        ("", {"Accept-Language": "en-GB,en;q=0.9"}, "en", "Shanghai Branch"),
        ("", {"Accept-Language": "zh-CN"}, "zh-CN", "上海分行"),
        ("", {}, "zh-CN", "上海分行"),
    ],
)
def test_the_locale_comes_from_lang_then_accept_language(client, query, headers, lang, name):
    html = client.get(f"/s/SH001{query}", headers=headers).get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    assert f'data-branch="SH001">{name}</span>' in html
    # links into mini-programs carry the same locale
    assert f"branch=SH001&amp;lang={lang}" in html
