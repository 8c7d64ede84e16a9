"""host.runtime.registry: what the database records of the plugins the runtime loaded."""

from __future__ import annotations

import shutil

import pytest

from host.db import get_database
from host.runtime import get_runtime
from host.runtime.models import PluginRecord, PluginState, PluginVersion
from host.runtime.registry import UnknownPlugin, approve_scopes, get_version, list_plugins, sync_registry

SCOPED = ["payments:create", "profile.basic:read"]


@pytest.fixture
def start(app_factory, plugins_dir):
    """Start an app on this test's database serving ``plugins_dir``; a later call is a restart."""
    return lambda **config: app_factory(PLUGIN_PATHS=[str(plugins_dir)], **config)


def sync(app, **kwargs):
    with get_database(app).transaction(write=True) as session:
        return sync_registry(session, get_runtime(app), **kwargs)


def version_of(app, plugin_id: str, version: str | None = None) -> PluginVersion:
    with get_database(app).transaction() as session:
        return get_version(session, plugin_id, version)


def set_state(app, plugin_id: str, state: str, reason: str = "") -> None:
    with get_database(app).transaction(write=True) as session:
        found = get_version(session, plugin_id)
        found.state, found.state_reason = state, reason


def test_sync_records_new_plugins_and_versions(start, plugins_dir, make_plugin):
    folder = make_plugin(plugins_dir, "a.plugin", scopes=SCOPED, publisher={"kind": "bank", "id": "HQ"})
    make_plugin(plugins_dir, "b.plugin", version="2.1.0")
    app = start()

    report = sync(app)

    assert sorted(report.added) == ["a.plugin 1.0.0", "b.plugin 2.1.0"]
    assert report.refused == [] and report.unchanged == []
    with get_database(app).transaction() as session:
        record = session.get(PluginRecord, "a.plugin")
        assert (record.publisher_kind, record.publisher_id, record.name) == ("bank", "HQ", {"zh": "测试", "en": "Test"})
        [version] = record.versions
        assert version.version == "1.0.0"
        assert version.state == PluginState.ACTIVE and version.state_reason == ""
        assert version.checksum == get_runtime(app).plugins["a.plugin"].checksum
        assert version.source == str(folder)
        assert version.manifest["scopes"] == SCOPED
        assert version.approved_scopes == []  # head office has not approved anything yet
        assert [p.id for p in list_plugins(session)] == ["a.plugin", "b.plugin"]


def test_sync_with_approve_grants_the_requested_scopes(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin", scopes=SCOPED)
    app = start()

    sync(app, approve=True)

    assert version_of(app, "a.plugin").approved_scopes == SCOPED


def test_a_second_sync_changes_nothing(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin")
    app = start()
    sync(app)

    report = sync(app)
    restarted = sync(start())

    assert report.added == [] and report.unchanged == ["a.plugin 1.0.0"]
    assert restarted.added == [] and restarted.unchanged == ["a.plugin 1.0.0"]
    with get_database(app).transaction() as session:
        assert len(session.get(PluginRecord, "a.plugin").versions) == 1


def test_approval_survives_a_sync(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin", scopes=SCOPED)
    app = start()
    sync(app)
    with get_database(app).transaction(write=True) as session:
        approve_scopes(session, "a.plugin")

    sync(start(), approve=False)

    assert version_of(app, "a.plugin").approved_scopes == SCOPED


def test_changed_files_under_a_published_version_are_refused(start, plugins_dir, make_plugin):
    folder = make_plugin(plugins_dir, "a.plugin")
    first = start()
    sync(first)
    registered = version_of(first, "a.plugin")
    (folder / "main.py").write_text((folder / "main.py").read_text() + "\n# changed after review\n")

    app = start()
    runtime = get_runtime(app)
    assert "a.plugin" in runtime.plugins  # loaded fine; only the registry knows it changed
    report = sync(app)

    assert report.refused == ["a.plugin 1.0.0"] and report.added == []
    assert "a.plugin" not in runtime.plugins
    assert runtime.impl("a.plugin", "canopy_storefront_tiles") is None
    [refused] = runtime.refused
    assert refused.id == "a.plugin"
    assert registered.checksum in refused.problem and "new version" in refused.problem
    kept = version_of(app, "a.plugin")
    assert (kept.checksum, kept.state) == (registered.checksum, PluginState.ACTIVE)  # the record is not rewritten


def test_in_development_changed_files_update_the_record(start, plugins_dir, make_plugin, manifest_text):
    folder = make_plugin(plugins_dir, "a.plugin", scopes=SCOPED)
    first = start()
    sync(first, approve=True)
    (folder / "main.py").write_text((folder / "main.py").read_text() + "\n# a developer's edit\n")
    (folder / "plugin.toml").write_text(manifest_text("a.plugin", scopes=["payments:create", "payments:read"]))

    app = start()
    report = sync(app, development=True)

    assert report.refused == [] and report.unchanged == ["a.plugin 1.0.0"]
    assert "a.plugin" in get_runtime(app).plugins
    record = version_of(app, "a.plugin")
    assert record.checksum == get_runtime(app).plugins["a.plugin"].checksum
    assert record.manifest["scopes"] == ["payments:create", "payments:read"]
    # kept what is still requested; the newly requested scope waits for approval
    assert record.approved_scopes == ["payments:create"]


def test_a_plugin_id_cannot_change_publisher(start, plugins_dir, make_plugin):
    folder = make_plugin(plugins_dir, "a.plugin", publisher={"kind": "branch", "id": "SH001"})
    sync(start())
    shutil.rmtree(folder)
    make_plugin(plugins_dir, "a.plugin", version="2.0.0", publisher={"kind": "branch", "id": "BJ001"})

    app = start()
    report = sync(app)

    assert report.refused == ["a.plugin 2.0.0"] and report.added == []
    assert "a.plugin" not in get_runtime(app).plugins
    assert "belongs to publisher branch:SH001" in get_runtime(app).refused[0].problem
    with get_database(app).transaction() as session:
        assert [v.version for v in session.get(PluginRecord, "a.plugin").versions] == ["1.0.0"]


def test_a_new_version_is_added_next_to_the_old_one(start, plugins_dir, make_plugin):
    folder = make_plugin(plugins_dir, "a.plugin")
    sync(start())
    (folder / "plugin.toml").write_text((folder / "plugin.toml").read_text().replace('"1.0.0"', '"1.1.0"'))

    app = start()
    report = sync(app)

    assert report.added == ["a.plugin 1.1.0"]
    assert "a.plugin" in get_runtime(app).plugins
    assert version_of(app, "a.plugin").version == "1.1.0"
    assert version_of(app, "a.plugin", "1.0.0").version == "1.0.0"


def test_a_disabled_version_stays_disabled_across_syncs(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin")
    app = start()
    sync(app)
    set_state(app, "a.plugin", PluginState.DISABLED, "switched off by HQ")

    sync(app)
    sync(start())

    kept = version_of(app, "a.plugin")
    assert (kept.state, kept.state_reason) == (PluginState.DISABLED, "switched off by HQ")


def test_a_refused_partner_is_recorded_as_refused_with_its_reason(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "acme.bills", publisher={"kind": "partner", "id": "acme"}, scopes=SCOPED)
    app = start(SANDBOX="off")

    report = sync(app, approve=True)

    assert report.added == ["acme.bills 1.0.0"]
    version = version_of(app, "acme.bills")
    assert version.state == PluginState.REFUSED
    assert "sandbox" in version.state_reason
    assert version.state_reason == get_runtime(app).refused[0].problem


def test_a_version_that_can_run_again_becomes_active(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin")
    app = start()
    sync(app)
    set_state(app, "a.plugin", PluginState.REFUSED, "was refused once")

    sync(app)

    kept = version_of(app, "a.plugin")
    assert (kept.state, kept.state_reason) == (PluginState.ACTIVE, "")


def test_a_plugin_refused_for_unknown_scopes_is_recorded_with_the_paths(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin", scopes=["payments:create", "money:print"])
    app = start()

    sync(app)

    version = version_of(app, "a.plugin")
    assert version.state == PluginState.REFUSED
    assert version.state_reason == "scopes[1]: unknown scope 'money:print'"


def test_an_unreadable_manifest_is_not_recorded(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin", version="not-semver")
    app = start()

    report = sync(app)

    assert report == type(report)([], [], [])
    with pytest.raises(UnknownPlugin):
        version_of(app, "a.plugin")


def test_a_duplicate_folder_does_not_take_the_served_plugin_down(start, plugins_dir, make_plugin):
    folder = make_plugin(plugins_dir, "a.plugin", folder="a_first")
    shutil.copytree(folder, plugins_dir / "a_second")  # the same files twice, e.g. a stray copy
    app = start()
    runtime = get_runtime(app)
    assert [r.folder.name for r in runtime.refused] == ["a_second"]

    report = sync(app)
    again = sync(app)

    assert report.added == ["a.plugin 1.0.0"]
    assert "a.plugin" in runtime.plugins
    assert version_of(app, "a.plugin").state == PluginState.ACTIVE
    assert again.refused == []


def test_a_changed_duplicate_does_not_refuse_the_served_plugin(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin", folder="a_first")
    make_plugin(plugins_dir, "a.plugin", folder="a_second", files={"extra.txt": "different"})
    app = start()
    runtime = get_runtime(app)

    report = sync(app)

    assert report.refused == []
    assert runtime.plugins["a.plugin"].folder.name == "a_first"
    assert version_of(app, "a.plugin").checksum == runtime.plugins["a.plugin"].checksum
    assert version_of(app, "a.plugin").state == PluginState.ACTIVE


# -- look-ups --------------------------------------------------------------------------------------


def test_get_version_and_unknown_plugins(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin")
    app = start()
    sync(app)

    assert version_of(app, "a.plugin", "1.0.0").plugin_id == "a.plugin"
    with pytest.raises(UnknownPlugin, match="no plugin 'nobody' is registered"):
        version_of(app, "nobody")
    with pytest.raises(UnknownPlugin, match="no plugin 'a.plugin' version '9.9.9' is registered"):
        version_of(app, "a.plugin", "9.9.9")
    assert issubclass(UnknownPlugin, LookupError)


def test_approve_scopes_approves_what_the_manifest_requests(start, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin", scopes=SCOPED)
    app = start()
    sync(app)
    assert version_of(app, "a.plugin").approved_scopes == []

    with get_database(app).transaction(write=True) as session:
        approved = approve_scopes(session, "a.plugin", "1.0.0")
        assert approved.approved_scopes == SCOPED
    with get_database(app).transaction(write=True) as session, pytest.raises(UnknownPlugin):
        approve_scopes(session, "a.plugin", "2.0.0")

    assert version_of(app, "a.plugin").approved_scopes == SCOPED


def test_a_duplicate_with_another_changed_version_does_not_refuse_the_served_plugin(start, plugins_dir, make_plugin):
    old = make_plugin(plugins_dir, "a.plugin", folder="a_later", version="1.1.0")
    sync(start())
    shutil.rmtree(old)
    make_plugin(plugins_dir, "a.plugin", folder="a_first", version="1.0.0")
    make_plugin(plugins_dir, "a.plugin", folder="a_later", version="1.1.0", files={"extra.txt": "changed"})
    app = start()
    runtime = get_runtime(app)

    report = sync(app)

    assert report.added == ["a.plugin 1.0.0"] and report.refused == ["a.plugin 1.1.0"]
    assert runtime.plugins["a.plugin"].folder.name == "a_first"
    assert version_of(app, "a.plugin", "1.0.0").state == PluginState.ACTIVE
