"""``/api/v1/plugins``: the registry, read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.api.schemas import PluginDetailSchema, PluginListSchema
from host.db import get_database
from host.problems import PROBLEM_JSON
from host.runtime import get_runtime
from host.runtime.models import PluginState, PluginVersion
from host.runtime.registry import sync_registry

ROOT = Path(__file__).resolve().parents[3]

PARTNER_MANIFEST = """\
id = "city.partner-test"
name = { zh = "城市缴费测试", en = "City bills test" }
version = "0.3.0"
publisher = { kind = "partner", id = "CITYPAY" }
entry = "bills:plugin"
scopes = ["payments:create"]
pages = [{ path = "/", title = { zh = "缴费", en = "Pay bills" } }]
"""


@pytest.fixture
def registry_client(app_factory, tmp_path):
    """The bundled plugins plus a partner plugin (refused: no sandbox), all registered."""
    folder = tmp_path / "extra" / "city_partner_test"
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(PARTNER_MANIFEST, encoding="utf-8")
    (folder / "bills.py").write_text("raise SystemExit('partner code must never be imported by the host')\n")
    app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(tmp_path / "extra")])
    with get_database(app).transaction(write=True) as session:
        sync_registry(session, get_runtime(app), approve=True)
    return app.test_client()


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


def test_the_list_has_the_shape_of_its_schema(registry_client):
    response = registry_client.get("/api/v1/plugins")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert PluginListSchema().validate(body) == {}
    assert body["count"] == len(body["items"])
    assert "wealth.checkup" in ids(response) and "city.partner-test" in ids(response)
    assert ids(response) == sorted(ids(response))


def test_each_entry_describes_its_newest_version(registry_client):
    items = {item["id"]: item for item in registry_client.get("/api/v1/plugins").get_json()["items"]}
    partner = items["city.partner-test"]
    assert partner["name"] == {"zh": "城市缴费测试", "en": "City bills test"}
    assert partner["publisher"] == {"kind": "partner", "id": "CITYPAY"}
    latest = partner["latest"]
    assert latest["version"] == "0.3.0"
    assert latest["state"] == PluginState.REFUSED
    assert "sandbox" in latest["state_reason"]
    assert latest["scopes"] == ["payments:create"]
    assert latest["approved_scopes"] == ["payments:create"]
    assert latest["checksum"].startswith("sha256:") and len(latest["checksum"]) == 71
    assert items["wealth.checkup"]["latest"]["state"] == PluginState.ACTIVE
    assert items["wealth.checkup"]["latest"]["state_reason"] == ""


@pytest.mark.parametrize(
    ("query", "included", "excluded"),
    [
        ("kind=partner", {"city.partner-test"}, {"wealth.checkup", "sh.deals"}),
        ("kind=bank", {"wealth.checkup"}, {"city.partner-test", "sh.deals"}),
        ("kind=branch", {"sh.deals"}, {"city.partner-test", "wealth.checkup"}),
        ("state=refused", {"city.partner-test"}, {"wealth.checkup", "sh.deals"}),
        ("state=active", {"wealth.checkup", "sh.deals"}, {"city.partner-test"}),
        ("kind=partner&state=active", set(), {"city.partner-test", "wealth.checkup", "sh.deals"}),
    ],
)
def test_filters(registry_client, query, included, excluded):
    response = registry_client.get(f"/api/v1/plugins?{query}")
    found = set(ids(response))
    assert included <= found
    assert not (excluded & found)
    assert response.get_json()["count"] == len(found)


def test_the_state_filter_sees_disabled_versions(registry_client):
    app = registry_client.application
    with get_database(app).transaction(write=True) as session:
        version = session.query(PluginVersion).filter_by(plugin_id="wealth.checkup").one()
        version.state = PluginState.DISABLED
        version.state_reason = "switched off by head office"
    assert ids(registry_client.get("/api/v1/plugins?state=disabled")) == ["wealth.checkup"]
    assert "wealth.checkup" not in ids(registry_client.get("/api/v1/plugins?state=active"))


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("kind=alien", {"kind"}),
        ("state=zombie", {"state"}),
        ("kind=", {"kind"}),
        ("state=ACTIVE", {"state"}),
        ("colour=red", {"colour"}),
        ("kind=bank&page=2&limit=5", {"page", "limit"}),
        ("kind=alien&state=zombie", {"kind", "state"}),
    ],
)
def test_unknown_parameters_and_bad_values_are_422(registry_client, query, fields):
    response = registry_client.get(f"/api/v1/plugins?{query}")
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json(force=True)
    assert body["type"] == "/problems/validation"
    assert set(body["errors"]) == fields


def test_an_empty_registry_lists_nothing(app):
    response = app.test_client().get("/api/v1/plugins")
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "count": 0}


def test_one_plugin_with_every_version(client):
    response = client.get("/api/v1/plugins/wealth.checkup")
    assert response.status_code == 200
    body = response.get_json()
    assert PluginDetailSchema().validate(body) == {}
    assert body["id"] == "wealth.checkup"
    assert body["publisher"] == {"kind": "bank", "id": "HQ"}
    assert [v["version"] for v in body["versions"]] == ["1.1.0"]
    assert body["latest"] == body["versions"][-1]


def test_the_detail_shows_versions_in_registration_order(client, demo_app):
    from datetime import timedelta

    with get_database(demo_app).transaction(write=True) as session:
        first = session.query(PluginVersion).filter_by(plugin_id="wealth.checkup").one()
        session.add(
            PluginVersion(
                plugin_id="wealth.checkup",
                version="1.2.0",
                manifest={**first.manifest, "version": "1.2.0"},
                checksum="sha256:" + "0" * 64,
                source="test",
                registered_at=first.registered_at + timedelta(seconds=1),
            )
        )
    body = client.get("/api/v1/plugins/wealth.checkup").get_json()
    assert [v["version"] for v in body["versions"]] == ["1.1.0", "1.2.0"]
    assert body["latest"]["version"] == "1.2.0"


@pytest.mark.parametrize(
    "plugin_id",
    [
        "no.such.plugin",
        "WEALTH.CHECKUP",
        "wealth.checkup ",
        "x" * 65,
        "a" * 10_000,
        "..",
        "%2e%2e",
        "%00",
        "wealth.checkup%00",
        "%E8%B4%A2%E5%AF%8C",  # 财富
        "%F0%9F%92%B0",  # an emoji
        "wealth.checkup%0d%0aSet-Cookie:%20x=1",
        "'%20OR%20'1'='1",
    ],
)
def test_unknown_and_hostile_ids_are_404(client, plugin_id):
    response = client.get(f"/api/v1/plugins/{plugin_id}")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json(force=True)
    assert body["status"] == 404
    assert "Set-Cookie" not in response.headers
    assert len(body["detail"]) < 200  # a long id is not echoed back whole in the message


@pytest.mark.parametrize("path", ["/api/v1/plugins/../../etc/passwd", "/api/v1/plugins/..%2F..%2Fetc%2Fpasswd"])
def test_traversal_in_the_id_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "root:" not in response.get_data(as_text=True)
