"""Demo data: head office, branches and the bundled mini-programs installed; idempotent."""

from __future__ import annotations

import tomllib

import pytest
from sqlalchemy import select

from host.db import get_database
from host.demo import BRANCHES, CUSTOMERS, INSTALLATIONS, PARTNERS, STAFF, ensure_secret, seed

PEOPLE = len(CUSTOMERS) + len(STAFF) + len(PARTNERS)
from host.runtime import get_runtime
from host.runtime.models import PluginVersion
from host.runtime.registry import sync_registry
from host.storefront.models import Branch, Installation

CODES = [code for code, *_ in BRANCHES]


def registered(app) -> set[str]:
    with get_database(app).transaction() as session:
        return set(session.scalars(select(PluginVersion.plugin_id)))


def installations(app) -> list[tuple[str, str, str, int]]:
    with get_database(app).transaction() as session:
        rows = session.execute(
            select(Installation.branch_code, Installation.plugin_id, Installation.version, Installation.position)
        ).all()
    return sorted(tuple(row) for row in rows)


def expected_installations(app) -> list[tuple[str, str, str, int]]:
    """What INSTALLATIONS asks for, for the plugins registered (others are skipped)."""
    with get_database(app).transaction() as session:
        versions = {v.plugin_id: v.version for v in session.scalars(select(PluginVersion))}
    rows = []
    for position, (plugin_id, where) in enumerate(INSTALLATIONS):
        if plugin_id in versions:
            rows += [(code, plugin_id, versions[plugin_id], position) for code in (CODES if where == "*" else where)]
    return sorted(rows)


def test_seed_creates_the_branch_tree(demo_app):
    with get_database(demo_app).transaction() as session:
        branches = {b.code: b for b in session.scalars(select(Branch))}
    assert {"HQ", "SH001", "BJ001"} <= set(branches)
    assert set(branches) == set(CODES)
    assert branches["HQ"].parent_code is None
    assert (branches["SH001"].name_zh, branches["SH001"].name_en, branches["SH001"].parent_code) == ("上海分行", "Shanghai Branch", "HQ")
    assert branches["BJ001"].parent_code == "HQ"
    assert branches["SH001-PD"].parent_code == "SH001"


def test_seed_installs_the_named_plugins(demo_app):
    assert {"wealth.checkup", "sh.deals"} <= registered(demo_app)
    found = installations(demo_app)
    assert found == expected_installations(demo_app)
    assert {code for code, plugin_id, *_ in found if plugin_id == "wealth.checkup"} == set(CODES)
    assert {code for code, plugin_id, *_ in found if plugin_id == "sh.deals"} == {"SH001", "SH001-PD"}


def test_seed_approves_the_installed_plugins_scopes(app):
    with get_database(app).transaction(write=True) as session:
        sync_registry(session, get_runtime(app), approve=False)
    with get_database(app).transaction(write=True) as session:
        for version in session.scalars(select(PluginVersion)):
            version.manifest = {**version.manifest, "scopes": ["payments:read"]}
    with app.app_context(), get_database(app).transaction(write=True) as session:
        seed(session)
    with get_database(app).transaction() as session:
        installed = set(session.scalars(select(Installation.plugin_id)))
        assert "wealth.checkup" in installed
        for version in session.scalars(select(PluginVersion)):
            if version.plugin_id in installed:
                assert version.approved_scopes == ["payments:read"]


def test_seed_is_idempotent(demo_app):
    before = installations(demo_app)
    with demo_app.app_context(), get_database(demo_app).transaction(write=True) as session:
        added = seed(session)
    assert added == {"branches": 0, "installations": 0, "people": 0, "funded accounts": 0}
    assert installations(demo_app) == before


def test_seed_on_an_empty_database_reports_what_it_added(app):
    with get_database(app).transaction(write=True) as session:
        sync_registry(session, get_runtime(app), approve=True)
    with app.app_context(), get_database(app).transaction(write=True) as session:
        added = seed(session)
    assert added == {"branches": len(BRANCHES), "installations": len(expected_installations(app)), "people": PEOPLE,
                     "funded accounts": len(CUSTOMERS)}


def test_seed_skips_plugins_that_are_not_registered(app):
    with app.app_context(), get_database(app).transaction(write=True) as session:
        added = seed(session)  # nothing registered yet
    assert added == {"branches": len(BRANCHES), "installations": 0, "people": PEOPLE, "funded accounts": len(CUSTOMERS)}
    assert installations(app) == []


def test_seed_keeps_what_staff_changed(demo_app):
    with get_database(demo_app).transaction(write=True) as session:
        session.scalars(select(Branch).where(Branch.code == "BJ001")).one().name_en = "Beijing Main Branch"
        wealth = session.scalars(
            select(Installation).where(Installation.branch_code == "BJ001", Installation.plugin_id == "wealth.checkup")
        ).one()
        session.delete(wealth)
    with demo_app.app_context(), get_database(demo_app).transaction(write=True) as session:
        added = seed(session)
    assert added == {"branches": 0, "installations": 1, "people": 0, "funded accounts": 0}  # the removed installation comes back
    with get_database(demo_app).transaction() as session:
        assert session.get(Branch, "BJ001").name_en == "Beijing Main Branch"


def test_ensure_secret_writes_once_and_keeps_other_settings(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "canopy.toml").write_text('DEFAULT_LOCALE = "en"', encoding="utf-8")
    assert ensure_secret(instance) is True
    first = (instance / "canopy.toml").read_text(encoding="utf-8")
    assert first.startswith('DEFAULT_LOCALE = "en"\nSECRET_KEY = "')
    assert ensure_secret(instance) is False
    assert (instance / "canopy.toml").read_text(encoding="utf-8") == first

    from host.config import load_config, require_secret

    config = load_config({"INSTANCE_PATH": str(instance)}, environ={})
    assert config["DEFAULT_LOCALE"] == "en"
    assert len(require_secret(config)) >= 32


def test_ensure_secret_is_not_fooled_by_a_comment(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "canopy.toml").write_text("# SECRET_KEY goes here one day\n", encoding="utf-8")
    assert ensure_secret(instance) is True
    assert len(tomllib.loads((instance / "canopy.toml").read_text(encoding="utf-8"))["SECRET_KEY"]) >= 32


def test_ensure_secret_creates_the_instance_folder(tmp_path):
    assert ensure_secret(tmp_path / "new" / "instance") is True
    assert (tmp_path / "new" / "instance" / "canopy.toml").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("code", ["HQ", "SH001", "BJ001"])
def test_the_demo_storefronts_answer(client, code):
    assert client.get(f"/s/{code}").status_code == 200
