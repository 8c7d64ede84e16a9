"""Operating the sandbox with real jails: its counts in ``/metrics``, and a plugin it disabled
for faults served again once staff enable it (``canopy plugins enable``), without a restart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from host.runtime.invoke import ERROR, OK

EVIL = "evil.probe"
FOLDER = Path(__file__).resolve().parent / "plugins" / "evil_probe"


def metric(app, name: str, plugin_id: str) -> int:
    """The value of the sandbox metric ``name`` for ``plugin_id`` in the app's ``/metrics``."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    found = re.search(rf'^{name}{{plugin="{re.escape(plugin_id)}"}} (\d+)$', text, re.MULTILINE)
    assert found, f"{name} for {plugin_id} is not in /metrics"
    return int(found.group(1))


@pytest.fixture
def registered(sandbox_host):
    """evil.probe and its neighbour, registered; a disabled plugin's registry state is looked
    at on every refused call."""
    from host.db import get_database
    from host.runtime.registry import sync_registry

    host = sandbox_host(FOLDER, SANDBOX_ENABLE_CHECK=0)
    with get_database(host.app).transaction(write=True) as session:
        sync_registry(session, host.runtime, approve=True)
    return host


def test_metrics_count_workers_starts_faults_and_disabled_per_plugin(registered):
    host, app = registered, registered.app
    assert host.api(EVIL, "/identity")[0].status == OK
    assert host.api("good.neighbour", "/hello")[0].status == OK
    assert metric(app, "canopy_sandbox_workers", EVIL) >= 1
    assert metric(app, "canopy_sandbox_worker_starts_total", EVIL) >= 1
    assert metric(app, "canopy_sandbox_faults_total", EVIL) == 0 and metric(app, "canopy_sandbox_disabled", EVIL) == 0
    starts = metric(app, "canopy_sandbox_worker_starts_total", EVIL)
    for _ in range(3):
        assert host.api(EVIL, "/exit")[0].status == ERROR
    assert metric(app, "canopy_sandbox_faults_total", EVIL) == 3
    assert metric(app, "canopy_sandbox_disabled", EVIL) == 1
    assert metric(app, "canopy_sandbox_worker_starts_total", EVIL) > starts  # restarted after each crash
    assert metric(app, "canopy_sandbox_workers", EVIL) == 0  # disabled: none kept
    # the neighbour's counts are its own
    assert metric(app, "canopy_sandbox_faults_total", "good.neighbour") == 0
    assert metric(app, "canopy_sandbox_disabled", "good.neighbour") == 0
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "exited with status" not in text  # fault reasons never become labels


def test_a_plugin_the_sandbox_disabled_is_served_again_once_staff_enable_it_without_a_restart(registered):
    from host.db import get_database
    from host.runtime.models import PluginState
    from host.runtime.registry import get_version

    host, app = registered, registered.app
    for _ in range(3):
        assert host.api(EVIL, "/exit")[0].status == ERROR
    outcome, _ = host.api(EVIL, "/identity")
    assert outcome.status == ERROR and "disabled" in str(outcome.error)  # the registry still says disabled
    with get_database(app).transaction() as session:
        assert get_version(session, EVIL).state == PluginState.DISABLED

    result = app.test_cli_runner().invoke(args=["plugins", "enable", EVIL])
    assert result.exit_code == 0, result.output
    outcome, seen = host.api(EVIL, "/identity")
    assert outcome.status == OK, outcome
    assert host.supervisor(EVIL).status()["disabled"] is None
    assert metric(app, "canopy_sandbox_disabled", EVIL) == 0
    with get_database(app).transaction() as session:
        assert get_version(session, EVIL).state == PluginState.ACTIVE
    host.assert_healthy()
