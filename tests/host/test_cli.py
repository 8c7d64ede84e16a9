"""The ``canopy`` command (also ``flask --app host``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from host.db import get_database, utcnow
from host.demo import BRANCHES
from host.runtime.models import PluginRecord, PluginVersion, StorageEntry
from host.storefront.models import Branch, Installation

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
BIN = Path(sys.executable).parent


def manifest(plugin_id: str = "test.cli", *, kind: str = "bank", entry: str = "impl", scopes: str = "[]", extra: str = "") -> str:
    return (
        f'id = "{plugin_id}"\n'
        f'name = {{ zh = "命令行测试", en = "CLI test" }}\n'
        'version = "1.0.0"\n'
        f'publisher = {{ kind = "{kind}", id = "HQ" }}\n'
        f'entry = "{entry}"\n'
        f"scopes = {scopes}\n"
        'pages = [{ path = "/", title = { zh = "首页", en = "Home" } }]\n' + extra
    )


def write_plugin(folder: Path, toml: str, code: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(toml, encoding="utf-8")
    (folder / "impl.py").write_text(code, encoding="utf-8")
    return folder


@pytest.fixture
def extra_plugins(tmp_path) -> Path:
    """A partner plugin (refused: no sandbox yet), a plugin asking for scopes and a broken one."""
    root = tmp_path / "extra"
    write_plugin(root / "partner", manifest("test.partner", kind="partner", scopes='["payments:create"]'))
    write_plugin(
        root / "scoped",
        manifest("test.scoped", scopes='["payments:create", "notifications:send"]'),
        "from canopy_sdk import hookimpl\n",
    )
    write_plugin(root / "broken", 'id = "Not An Id"\nversion = "one"\n')
    return root


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


# -- db upgrade --------------------------------------------------------------------------


@pytest.mark.db
def test_db_upgrade_creates_the_tables_and_registers_the_plugins(app_factory, fresh_database_url):
    app = app_factory(DATABASE_URL=fresh_database_url)
    engine = get_database(app).engine
    assert "plugins" not in inspect(engine).get_table_names()
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert {"branches", "installations", "plugins", "plugin_versions", "plugin_storage", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )
    with get_database(app).transaction() as session:
        versions = {v.plugin_id: v for v in session.scalars(select(PluginVersion))}
    assert {"wealth.checkup", "sh.deals"} <= set(versions)
    assert versions["wealth.checkup"].state == "active"
    assert all(v.approved_scopes == [] for v in versions.values())  # db upgrade approves nothing
    assert f"plugins registered: {len(versions)} new" in result.output
    again = run(app, "db", "upgrade")
    assert again.exit_code == 0
    assert "plugins registered: 0 new" in again.output


# -- demo --------------------------------------------------------------------------------


def test_demo_seeds_and_is_idempotent(app):
    first = run(app, "demo")
    assert first.exit_code == 0, first.output
    assert f"{len(BRANCHES)} branches" in first.output

    def counts():
        with get_database(app).transaction() as session:
            return tuple(
                session.scalar(select(func.count()).select_from(model))
                for model in (Branch, Installation, PluginRecord, PluginVersion)
            )

    before = counts()
    assert before[0] == len(BRANCHES) and before[1] > 0
    second = run(app, "demo")
    assert second.exit_code == 0, second.output
    assert "0 branches, 0 installations and 0 people added, 0 payment accounts funded; 0 plugin versions registered" in second.output
    assert counts() == before


def test_init_instance_writes_a_secret_once(app):
    first = run(app, "init-instance")
    assert first.exit_code == 0 and "wrote" in first.output
    secret_file = Path(app.instance_path) / "canopy.toml"
    written = secret_file.read_text(encoding="utf-8")
    assert secret_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    second = run(app, "init-instance")
    assert "already" in second.output
    assert secret_file.read_text(encoding="utf-8") == written


# -- plugins list ---------------------------------------------------------------------------


def test_plugins_list_json(app_factory, extra_plugins):
    app = app_factory(PLUGIN_PATHS=[str(PLUGINS), str(extra_plugins)])
    assert run(app, "db", "upgrade").exit_code == 0
    result = run(app, "plugins", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    by_id = {row["id"]: row for row in rows}
    assert by_id["wealth.checkup"]["loaded"] is True
    assert by_id["wealth.checkup"]["state"] == "active"
    assert by_id["wealth.checkup"]["publisher"] == "bank:HQ"
    assert by_id["wealth.checkup"]["problem"] is None
    partner = by_id["test.partner"]
    assert (partner["loaded"], partner["state"], partner["version"]) == (False, "refused", "1.0.0")
    assert "sandbox" in partner["problem"]
    broken = by_id[None]
    assert broken["state"] == "invalid" and broken["loaded"] is False
    assert "id:" in broken["problem"] and "version:" in broken["problem"]
    assert all(row["problem"] for row in rows if not row["loaded"])
    assert set(rows[0]) == {"id", "version", "publisher", "loaded", "state", "reason", "problem", "source"}


def test_plugins_list_shows_the_bundled_partner_plugin_refused_with_its_reason(app):
    assert run(app, "db", "upgrade").exit_code == 0
    rows = {row["id"]: row for row in json.loads(run(app, "plugins", "list", "--json").stdout)}
    city = rows["city.utilities"]
    assert city["publisher"].startswith("partner:")
    assert (city["loaded"], city["state"]) == (False, "refused")
    assert "sandbox" in city["problem"]


def test_plugins_list_before_registration_says_unregistered(app_factory, extra_plugins, fresh_database_url):
    app = app_factory(PLUGIN_PATHS=[str(PLUGINS), str(extra_plugins)], DATABASE_URL=fresh_database_url)
    from host.migrations import upgrade

    upgrade(get_database(app).engine)
    rows = json.loads(run(app, "plugins", "list", "--json").stdout)
    assert {row["state"] for row in rows if row["id"]} == {"unregistered"}


def test_plugins_list_text(app_factory, extra_plugins):
    app = app_factory(PLUGIN_PATHS=[str(PLUGINS), str(extra_plugins)])
    run(app, "db", "upgrade")
    result = run(app, "plugins", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    wealth = next(line for line in lines if line.startswith("wealth.checkup"))
    assert "active" in wealth and wealth.rstrip().endswith("loaded")
    partner_index = next(i for i, line in enumerate(lines) if line.startswith("test.partner"))
    assert lines[partner_index].rstrip().endswith("NOT LOADED")
    assert "sandbox" in lines[partner_index + 1]


def disable(app, plugin_id: str, reason: str) -> None:
    """Mark the newest registered version of ``plugin_id`` disabled, as the sandbox does."""
    from host.runtime.models import PluginState
    from host.runtime.registry import get_version

    with get_database(app).transaction(write=True) as session:
        version = get_version(session, plugin_id)
        version.state, version.state_reason = PluginState.DISABLED, reason


def test_plugins_list_shows_why_the_registry_does_not_serve_a_version(app_factory, extra_plugins):
    app = app_factory(PLUGIN_PATHS=[str(PLUGINS), str(extra_plugins)])
    run(app, "db", "upgrade")
    disable(app, "wealth.checkup", "disabled by the sandbox at 2026-01-01T00:00:00+00:00: 3 faults within 60 minutes")
    rows = {row["id"]: row for row in json.loads(run(app, "plugins", "list", "--json").stdout)}
    assert rows["wealth.checkup"]["state"] == "disabled" and "3 faults" in rows["wealth.checkup"]["reason"]
    assert rows["sh.deals"]["reason"] == ""
    lines = run(app, "plugins", "list").stdout.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("wealth.checkup"))
    assert "disabled" in lines[index] and "3 faults within 60 minutes" in lines[index + 1]


# -- plugins enable ------------------------------------------------------------------------------


def test_plugins_enable_sets_a_disabled_version_active_again_and_audits_it(app):
    from host.audit.models import AuditEvent
    from host.runtime.registry import get_version

    assert run(app, "db", "upgrade").exit_code == 0
    disable(app, "wealth.checkup", "disabled by the sandbox: 3 faults")
    result = run(app, "plugins", "enable", "wealth.checkup")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(": active")
    with get_database(app).transaction() as session:
        version = get_version(session, "wealth.checkup")
        assert (version.state, version.state_reason) == ("active", "")
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "plugin.enabled"))
        assert (event.plugin_id, event.actor, event.outcome) == ("wealth.checkup", "cli", "success")
    assert run(app, "plugins", "enable", "wealth.checkup").exit_code == 0  # already active: nothing to change


def test_plugins_enable_refuses_unknown_and_refused_plugins(app):
    assert run(app, "db", "upgrade").exit_code == 0
    unknown = run(app, "plugins", "enable", "no.such.plugin")
    assert unknown.exit_code == 1 and "no plugin 'no.such.plugin'" in unknown.output
    refused = run(app, "plugins", "enable", "city.utilities")  # refused here: the suite runs without the sandbox
    assert refused.exit_code == 1 and "is refused, not disabled" in refused.output
    from host.runtime.registry import get_version

    with get_database(app).transaction() as session:
        assert get_version(session, "city.utilities").state == "refused"


# -- plugins validate ----------------------------------------------------------------------------


def test_validate_a_bundled_plugin(app):
    result = run(app, "plugins", "validate", str(PLUGINS / "wealth_checkup"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wealth.checkup 1.1.0: OK (sha256:")
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("toml", "fields"),
    [
        ('id = "test.cli"\n', ["name", "version", "publisher", "entry", "pages"]),
        (manifest(scopes='["Payments-Create", "ok:read"]'), ["scopes[0]"]),
        (manifest(scopes='["payments:create", "treasury:drain"]'), ["scopes[1]"]),
        (manifest(entry="os"), ["entry"]),
        (manifest(entry="../escape:plugin"), ["entry"]),
        (manifest(extra='homepage = "https://example.com"\n'), ["homepage"]),
        (manifest(kind="government"), ["publisher.kind"]),
        ("this is not toml", ["(plugin)"]),
    ],
    ids=["missing-fields", "bad-scope", "unknown-scope", "entry-outside", "entry-path", "unknown-field", "bad-kind", "not-toml"],
)
def test_validate_a_broken_plugin_lists_every_problem_by_field(app, tmp_path, toml, fields):
    folder = write_plugin(tmp_path / "broken", toml)
    result = run(app, "plugins", "validate", str(folder))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"{folder}:" in result.stderr
    for field in fields:
        assert f"  {field}: " in result.stderr, result.stderr


def test_validate_a_partner_plugin_says_it_runs_in_the_sandbox(app):
    result = run(app, "plugins", "validate", str(PLUGINS / "city_utilities"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("city.utilities ") and "runs in the sandbox" in result.stdout


def test_validate_reports_unknown_scopes_beside_other_problems(app, tmp_path):
    toml = manifest(scopes='["payments:create", "treasury:drain"]').replace('version = "1.0.0"', 'version = "one"')
    folder = write_plugin(tmp_path / "both", toml)
    result = run(app, "plugins", "validate", str(folder))
    assert result.exit_code == 1
    assert "  version: " in result.stderr
    assert "  scopes[1]: unknown scope 'treasury:drain'" in result.stderr


def test_validate_an_entry_linked_to_a_file_outside_the_folder(app, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("plugin = object()\n", encoding="utf-8")
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "plugin.toml").write_text(manifest(entry="impl:plugin"), encoding="utf-8")
    (folder / "impl.py").symlink_to(outside)
    result = run(app, "plugins", "validate", str(folder))
    assert result.exit_code == 1
    assert "  entry: " in result.stderr


def test_validate_a_folder_without_a_manifest(app, tmp_path):
    result = run(app, "plugins", "validate", str(tmp_path / "nothing-here"))
    assert result.exit_code == 1
    assert "missing" in result.stderr


# -- plugins show / approve -------------------------------------------------------------------------


def test_plugins_show(client, demo_app):
    client.get("/s/HQ")  # one storefront view: one tiles call
    result = run(demo_app, "plugins", "show", "wealth.checkup")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == "wealth.checkup"
    assert data["loaded"] is True and data["problem"] is None
    assert data["manifest"]["id"] == "wealth.checkup"
    assert [v["version"] for v in data["versions"]] == ["1.1.0"]
    assert data["versions"][0]["state"] == "active"
    assert data["versions"][0]["checksum"].startswith("sha256:")
    assert data["calls"] == {"canopy_storefront_tiles:ok": 1}


def test_plugins_show_of_a_registered_plugin_that_is_not_on_disk(demo_app):
    with get_database(demo_app).transaction(write=True) as session:
        session.add(PluginRecord(id="gone.plugin", publisher_kind="bank", publisher_id="HQ", name={"zh": "走了", "en": "Gone"}))
        session.add(PluginVersion(plugin_id="gone.plugin", version="0.1.0", manifest={}, checksum="sha256:" + "0" * 64, source="x"))
    data = json.loads(run(demo_app, "plugins", "show", "gone.plugin").stdout)
    assert data["loaded"] is False and data["manifest"] is None
    assert [v["version"] for v in data["versions"]] == ["0.1.0"]


@pytest.mark.parametrize("plugin_id", ["no.such.plugin", "../../etc", "x" * 500])
def test_plugins_show_of_an_unknown_id_exits_1(app, plugin_id):
    result = run(app, "plugins", "show", plugin_id)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no plugin" in result.stderr


def test_plugins_approve(app_factory, extra_plugins):
    app = app_factory(PLUGIN_PATHS=[str(PLUGINS), str(extra_plugins)])
    run(app, "db", "upgrade")

    def approved():
        with get_database(app).transaction() as session:
            return session.scalars(select(PluginVersion.approved_scopes).where(PluginVersion.plugin_id == "test.scoped")).one()

    assert approved() == []
    result = run(app, "plugins", "approve", "test.scoped")
    assert result.exit_code == 0, result.output
    assert "test.scoped 1.0.0: approved payments:create, notifications:send" in result.stdout
    assert approved() == ["payments:create", "notifications:send"]


@pytest.mark.parametrize("args", [["no.such.plugin"], ["wealth.checkup", "--version", "9.9.9"]])
def test_plugins_approve_of_an_unknown_plugin_or_version_exits_1(client, demo_app, args):
    result = run(demo_app, "plugins", "approve", *args)
    assert result.exit_code == 1
    assert "is registered" in result.stderr


# -- storage purge ------------------------------------------------------------------------------


def test_storage_purge_removes_only_expired_keys(app):
    now = utcnow()
    rows = {"expired": now - timedelta(seconds=1), "live": now + timedelta(hours=1), "forever": None}
    with get_database(app).transaction(write=True) as session:
        for key, expires in rows.items():
            session.add(
                StorageEntry(plugin_id="wealth.checkup", customer="", key=key, value="1", size=1, version=1, expires_at=expires)
            )
    result = run(app, "storage", "purge")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "removed 1 expired keys"
    with get_database(app).transaction() as session:
        assert sorted(session.scalars(select(StorageEntry.key))) == ["forever", "live"]
    assert run(app, "storage", "purge").stdout.strip() == "removed 0 expired keys"


# -- the real console scripts ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_canopy_console_script_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
    env.update(
        CANOPY_INSTANCE_PATH=str(tmp_path / "instance"),
        CANOPY_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        CANOPY_PLUGIN_PATHS=str(PLUGINS),
        CANOPY_LOAD_ENTRY_POINTS="false",
    )

    def canopy(*args: str, script: str = "canopy") -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / script), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    help_ = canopy("--help")
    assert help_.returncode == 0, help_.stderr
    for command in ("db", "demo", "plugins", "serve", "storage", "init-instance"):
        assert command in help_.stdout

    upgrade = canopy("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "database at head" in upgrade.stdout

    listed = canopy("--app", "host", "plugins", "list", script="flask")
    assert listed.returncode == 0, listed.stderr
    wealth = next(line for line in listed.stdout.splitlines() if line.startswith("wealth.checkup"))
    assert "active" in wealth

    bad = canopy("plugins", "show", "no.such.plugin")
    assert bad.returncode == 1
    assert "no plugin" in bad.stderr


@pytest.mark.slow
def test_a_bad_environment_value_stops_the_console_script_with_its_name(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
    env.update(CANOPY_INSTANCE_PATH=str(tmp_path), CANOPY_LOAD_ENTRY_POINTS="maybe")
    result = subprocess.run([str(BIN / "canopy"), "plugins", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: CANOPY_LOAD_ENTRY_POINTS must be true or false, got 'maybe'"
