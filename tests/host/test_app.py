"""The app factory and the first HTTP surface."""

from __future__ import annotations

import pytest

from host.db import get_database
from host.runtime import get_runtime


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok"}


def test_storefront_marks_each_zone_with_its_plugin(client):
    response = client.get("/s/SH001?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-plugin="wealth.checkup"' in html
    assert 'data-plugin="sh.deals"' in html
    # partner plugins are refused until the sandbox exists
    assert 'data-plugin="city.utilities"' not in html


# -- create_app --------------------------------------------------------------------------

def test_create_app_wires_the_database_runtime_and_blueprints(app):
    assert get_database(app).url == app.config["DATABASE_URL"]
    runtime = get_runtime(app)
    assert runtime.database is get_database(app)
    assert {"wealth.checkup", "sh.deals"} <= set(runtime.plugins)
    assert {"health", "api", "storefront", "miniprogram"} <= set(app.blueprints)
    assert {"db", "demo", "plugins", "storage", "serve"} <= set(app.cli.commands)


def test_plugin_registration_is_closed_once_the_app_exists(app):
    from host.runtime.manager import RegistrationClosed

    class Late:
        pass

    with pytest.raises(RegistrationClosed, match="frozen"):
        get_runtime(app).pm.register(Late(), name="late.plugin")


def test_each_app_has_its_own_plugin_manager(app_factory):
    first, second = app_factory(), app_factory()
    assert get_runtime(first) is not get_runtime(second)
    assert get_runtime(first).pm is not get_runtime(second).pm


def test_the_environment_reaches_the_app_but_the_explicit_mapping_wins(app_factory, monkeypatch):
    monkeypatch.setenv("CANOPY_DEFAULT_LOCALE", "en")
    monkeypatch.setenv("CANOPY_HEAD_OFFICE", "FROM_ENV")
    app = app_factory(HEAD_OFFICE="EXPLICIT")
    assert app.config["DEFAULT_LOCALE"] == "en"
    assert app.config["HEAD_OFFICE"] == "EXPLICIT"


def test_the_instance_file_reaches_the_app(app_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("CANOPY_DEFAULT_LOCALE", raising=False)
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "canopy.toml").write_text('DEFAULT_LOCALE = "en"\nPLUGIN_MAX_IN_FLIGHT = 2\n', encoding="utf-8")
    app = app_factory()
    assert app.instance_path == str(instance.resolve())
    assert app.config["DEFAULT_LOCALE"] == "en"
    assert get_runtime(app).invoker.max_in_flight == 2


def test_budgets_from_the_configuration_reach_the_runtime(app_factory):
    app = app_factory(HOOK_BUDGET_MS={"canopy_page": 50, "canopy_api": 75})
    invoker = get_runtime(app).invoker
    assert invoker.budget("canopy_page") == 0.05
    assert invoker.budget("canopy_api") == 0.075


def test_a_broken_plugin_folder_does_not_stop_the_app(app_factory, tmp_path):
    broken = tmp_path / "more" / "broken"
    broken.mkdir(parents=True)
    (broken / "plugin.toml").write_text('id = "x"\n', encoding="utf-8")
    app = app_factory(PLUGIN_PATHS=[str(tmp_path / "more"), str(tmp_path / "does-not-exist")])
    runtime = get_runtime(app)
    assert runtime.plugins == {}
    assert [p.source for p in runtime.refused if p.manifest is None] == [str(broken)]
    assert app.test_client().get("/healthz").status_code == 200


def test_json_answers_keep_chinese_readable(client):
    raw = client.get("/api/v1/plugins").get_data()
    assert "财富体检".encode("utf-8") in raw
