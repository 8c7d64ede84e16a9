"""The jail's recipe and the probe that decides whether partner plugins may start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import jail


def command(plugin_id="a.plugin", folder=None):
    return jail.bwrap_command(jail.JailSpec(plugin_id, folder or Path(__file__).parent / "plugins" / "good_neighbour"), 3)


def test_the_jail_has_no_network_a_clean_environment_and_dies_with_the_host():
    argv = command()
    for flag in ("--die-with-parent", "--clearenv", "--new-session", "--unshare-pid"):
        assert flag in argv
    assert "--unshare-net" in argv or "--unshare-all" in argv


def test_the_plugin_folder_is_bound_read_only_and_nothing_of_the_host_package_is():
    folder = Path(__file__).parent / "plugins" / "good_neighbour"
    argv = command(folder=folder)
    binds = [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg in ("--bind", "--ro-bind")]
    assert (str(folder.resolve()), jail.PLUGIN_DIR) in binds
    assert not any(arg == "--bind" for arg in argv)  # nothing writable but the tmpfs
    sources = {Path(source).name for source, _ in binds}
    assert {"sandbox", "canopy_sdk", "pluggy", "marshmallow"} <= sources
    assert "host" not in sources and not any("site-packages" == Path(s).name for s, _ in binds)


def test_the_worker_gets_its_limits_and_user_on_the_command_line():
    import json

    config = json.loads(command("city.utilities")[-1])
    assert config["limits"] == jail.Limits().to_wire()
    assert config["uid"] == (jail.plugin_uid("city.utilities") if os.geteuid() == 0 else None)
    assert config["plugin_dir"] == jail.PLUGIN_DIR and config["fd"] == 3


def test_each_plugin_has_a_stable_user_id_of_its_own_range():
    assert jail.plugin_uid("city.utilities") == jail.plugin_uid("city.utilities")
    assert jail.plugin_uid("city.utilities") != jail.plugin_uid("sh.deals")
    assert jail.UID_BASE <= jail.plugin_uid("x.y") < jail.UID_BASE + jail.UID_SPAN


@pytest.mark.parametrize("value, unsafe", [("", False), ("1", False), ("true", False), (jail.UNSAFE_VALUE, True)])
def test_only_the_exact_development_flag_allows_running_without_isolation(value, unsafe, caplog):
    assert jail.unsafe_requested({jail.UNSAFE_ENV: value}) is unsafe
    if value and not unsafe:
        assert "ignored" in caplog.text


def test_without_bubblewrap_the_probe_says_why(monkeypatch):
    monkeypatch.setattr(jail.shutil, "which", lambda name: None)
    monkeypatch.delenv(jail.UNSAFE_ENV, raising=False)
    probe = jail.probe(refresh=True)
    try:
        assert not probe.ok and "bubblewrap" in probe.reason and not probe.unsafe
    finally:
        monkeypatch.undo()
        jail.probe(refresh=True)


def test_the_development_flag_turns_a_failed_probe_into_a_loud_unsafe_one(monkeypatch, caplog):
    monkeypatch.setattr(jail.shutil, "which", lambda name: None)
    monkeypatch.setenv(jail.UNSAFE_ENV, jail.UNSAFE_VALUE)
    probe = jail.probe(refresh=True)
    try:
        assert probe.ok and probe.unsafe and "UNSAFE" in probe.reason
        assert any(record.levelname == "CRITICAL" and "WITHOUT isolation" in record.getMessage()
                   for record in caplog.records)
    finally:
        monkeypatch.undo()
        jail.probe(refresh=True)


def test_the_probe_finds_isolation_on_this_machine(isolation):
    assert isolation.ok and not isolation.unsafe and "bubblewrap" in isolation.reason
