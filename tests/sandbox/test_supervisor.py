"""Supervising workers: start, lend, restart with backoff after faults, disable after too many."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sandbox import client, jail
from sandbox.supervisor import FaultPolicy, PluginDisabled, PluginSupervisor, SandboxUnavailable

NEIGHBOUR = "good.neighbour"


@pytest.fixture
def neighbour_folder():
    return Path(__file__).parent / "plugins" / "good_neighbour"


def test_backoff_doubles_up_to_its_cap():
    policy = FaultPolicy(backoff=1.0, max_backoff=5.0)
    assert [policy.delay(n) for n in range(5)] == [0.0, 1.0, 2.0, 4.0, 5.0]


def test_the_third_fault_within_the_window_disables_with_the_reason():
    now = [1000.0]
    disabled = []
    supervisor = PluginSupervisor(jail.JailSpec("x.y", Path(".")), policy=FaultPolicy(window=3600),
                                  on_disable=lambda plugin, reason: disabled.append((plugin, reason)),
                                  clock=lambda: now[0])
    supervisor.record_fault("died of signal SIGKILL")
    now[0] += 3601  # the first fault leaves the window
    supervisor.record_fault("exited with status 3")
    supervisor.record_fault("no answer within its budget")
    assert supervisor.disabled_reason is None and not disabled
    supervisor.record_fault("exited with status 4")
    assert disabled == [("x.y", supervisor.disabled_reason)]
    assert "3 faults within 60 minutes" in supervisor.disabled_reason and "status 4" in supervisor.disabled_reason
    with pytest.raises(PluginDisabled, match="status 4"):
        supervisor.acquire(now[0] + 1)


def test_a_fault_delays_the_next_start():
    supervisor = PluginSupervisor(jail.JailSpec("x.y", Path(".")), policy=FaultPolicy(backoff=60))
    supervisor.record_fault("exited with status 1")
    with pytest.raises(SandboxUnavailable, match="restarting after a fault"):
        supervisor.acquire(time.monotonic())


def test_a_worker_starts_in_the_jail_and_serves_calls(supervisor_for, neighbour_folder, facts, soon):
    supervisor = supervisor_for(neighbour_folder, NEIGHBOUR)
    answer = client.call_hook(supervisor, "canopy_storefront_tiles", facts(NEIGHBOUR), {}, deadline=soon(),
                              answer=lambda method, args: None)
    assert answer == [{"title": "Hello from good.neighbour", "subtitle": "SH001", "link": "/", "badge": None,
                       "icon": None}]
    again = client.call_hook(supervisor, "canopy_api", facts(NEIGHBOUR, customer="sub-1"),
                             {"method": "GET", "path": "/x", "body": [1]}, deadline=soon(), answer=lambda m, a: None)
    assert again == {"method": "GET", "path": "/x", "body": [1], "customer": "sub-1"}
    assert supervisor.status()["starts"] == 1  # the same worker served both


def test_ctx_questions_go_to_the_answerer_and_errors_come_back_as_sdk_errors(supervisor_for, neighbour_folder, facts,
                                                                           soon):
    from canopy_sdk.errors import QuotaExceeded

    asked = []

    def answer(method, args):
        asked.append((method, dict(args)))
        if method == "storage.set":
            return 4
        return {"value": "hi", "version": 4, "expires_at": None}

    supervisor = supervisor_for(neighbour_folder, NEIGHBOUR)
    result = client.call_hook(supervisor, "canopy_api", facts(NEIGHBOUR), {"method": "POST", "path": "/storage",
                                                                          "body": "hi"}, deadline=soon(), answer=answer)
    assert result == {"version": 4, "read": "hi"}
    assert asked == [("storage.set", {"key": "greeting", "value": "hi", "ttl": None}),
                     ("storage.get_item", {"key": "greeting"})]

    def full(method, args):
        raise QuotaExceeded("the plugin's namespace is full")

    with pytest.raises(client.HookRaised) as raised:
        client.call_hook(supervisor, "canopy_api", facts(NEIGHBOUR), {"method": "POST", "path": "/storage",
                                                                     "body": "hi"}, deadline=soon(), answer=full)
    assert raised.value.error["type"] == "QuotaExceeded"


def test_a_killed_worker_is_a_fault_and_is_replaced(supervisor_for, neighbour_folder, facts, soon):
    supervisor = supervisor_for(neighbour_folder, NEIGHBOUR)
    worker = supervisor.acquire(soon())
    supervisor.release(worker)
    os.kill(worker.pid, 9)
    worker.process.wait()
    answer = client.call_hook(supervisor, "canopy_storefront_tiles", facts(NEIGHBOUR), {}, deadline=soon(),
                              answer=lambda m, a: None)
    assert answer[0]["title"] == "Hello from good.neighbour"
    status = supervisor.status()
    assert status["faults"] == 1 and "SIGKILL" in status["last_fault"] and status["starts"] == 2


def test_a_plugin_that_cannot_be_imported_does_not_start(supervisor_for, soon):
    supervisor = supervisor_for(Path(__file__).parent / "plugins" / "evil_import", "evil.import")
    with pytest.raises(SandboxUnavailable, match="could not start"):
        supervisor.acquire(soon())
    assert supervisor.status()["faults"] == 1


def test_under_the_development_flag_a_worker_runs_without_isolation_and_says_so(neighbour_folder, facts, soon, caplog):
    unsafe = jail.Probe(True, "UNSAFE: no isolation (test)", unsafe=True)
    supervisor = PluginSupervisor(jail.JailSpec(NEIGHBOUR, neighbour_folder), probe=lambda: unsafe)
    try:
        answer = client.call_hook(supervisor, "canopy_storefront_tiles", facts(NEIGHBOUR), {}, deadline=soon(),
                                  answer=lambda m, a: None)
    finally:
        supervisor.shutdown()
    assert answer[0]["title"] == "Hello from good.neighbour"
    assert any(r.levelname == "CRITICAL" and "WITHOUT isolation" in r.getMessage() for r in caplog.records)


def test_a_plugin_is_not_started_where_isolation_fails(neighbour_folder, soon):
    supervisor = PluginSupervisor(jail.JailSpec(NEIGHBOUR, neighbour_folder),
                                  probe=lambda: jail.Probe(False, "bubblewrap (bwrap) is not installed"))
    with pytest.raises(SandboxUnavailable, match="cannot be isolated here: bubblewrap"):
        supervisor.acquire(soon())
    assert supervisor.status()["faults"] == 0 and supervisor.status()["workers"] == 0
