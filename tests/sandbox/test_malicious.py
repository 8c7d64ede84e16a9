"""A hostile partner plugin tries to escape, starve or confuse the host. Each attempt fails,
is reported, and the host stays healthy (``/healthz`` and the neighbouring plugin's zone).

The attacks live in ``plugins/evil_probe/attacks.py``; each test asks for one and checks
what the plugin saw (from inside) and what the host recorded (from outside).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from host.runtime.invoke import ERROR, INVALID, OK, TIMEOUT
from sandbox import jail

EVIL = "evil.probe"
ROOT = Path(__file__).resolve().parents[2]


def eventually(condition, seconds: float = 10.0) -> bool:
    """Whether ``condition()`` becomes true within ``seconds`` (a wait for an event, not a timing check)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def failed(report: dict) -> dict:
    """The attempts of a report that succeeded (should be none)."""
    return {name: result for name, result in report.items() if result["ok"]}


# -- what the worker can see --------------------------------------------------------------------

def test_the_environment_holds_no_host_secret(evil, monkeypatch):
    monkeypatch.setenv("CANOPY_SECRET_KEY", "host-secret-never-to-be-seen")
    evil.supervisor(EVIL).shutdown()  # the next worker starts with this environment around it
    outcome, env = evil.api(EVIL, "/env")
    assert outcome.status == OK
    assert set(env) <= {"HOME", "TMPDIR", "LANG", "LC_CTYPE", "PWD"}
    assert "host-secret-never-to-be-seen" not in str(env)
    evil.assert_healthy()


def test_host_files_other_plugins_and_the_database_are_invisible(evil):
    database = make_url(evil.app.config["DATABASE_URL"]).database or ""
    targets = ["/etc/shadow", "/etc/passwd", "/root", "/home", "/proc/1/environ", str(ROOT / "host" / "config.py"),
               str(ROOT / "plugins" / "city_utilities" / "plugin.toml"), str(ROOT / "plugins"),
               str(Path(__file__).parent / "plugins" / "good_neighbour" / "neighbour.py"), database]
    outcome, report = evil.api(EVIL, "/read", {"paths": targets + ["/plugin/plugin.toml"]})
    assert outcome.status == OK
    assert set(failed(report)) == {"/plugin/plugin.toml"}  # its own folder, and nothing else
    assert 'id = "evil.probe"' in report["/plugin/plugin.toml"]["value"]
    evil.assert_healthy()


def test_its_folder_and_the_code_it_runs_on_are_read_only_and_tmp_is_its_scratch(evil):
    own_code = Path(__file__).parent / "plugins" / "evil_probe" / "attacks.py"
    before = own_code.read_bytes()
    outcome, report = evil.api(EVIL, "/write", {"paths": ["/plugin/attacks.py", "/plugin/new.py",
                                                          "/opt/canopy/lib/sandbox/worker.py", "/tmp/scratch.txt"]})
    assert outcome.status == OK
    assert set(failed(report)) == {"/tmp/scratch.txt"}
    assert own_code.read_bytes() == before and not (own_code.parent / "new.py").exists()


def test_no_network_not_even_the_hosts_loopback(evil):
    targets = [["127.0.0.1", 5432], ["127.0.0.1", 6379], ["127.0.0.1", 8000], ["1.1.1.1", 443], ["10.0.0.1", 80],
               ["::1", 5432]]
    outcome, report = evil.api(EVIL, "/connect", {"targets": targets})
    assert outcome.status == OK
    assert failed(report) == {}
    evil.assert_healthy()


def test_it_runs_as_its_own_user_and_sees_only_its_own_processes(evil):
    outcome, seen = evil.api(EVIL, "/identity")
    assert outcome.status == OK
    if os.geteuid() == 0:
        assert seen["uid"] == seen["gid"] == jail.plugin_uid(EVIL)
    assert seen["processes"] == [1, seen["pid"]]  # bubblewrap's init and itself: a PID namespace of its own
    assert seen["cwd"] == "/tmp"


# -- starving the host ----------------------------------------------------------------------------

def test_a_fork_bomb_stops_at_the_process_limit(evil):
    outcome, report = evil.api(EVIL, "/forkbomb")
    assert outcome.status == OK
    assert report["error"] == "BlockingIOError"
    assert report["children"] < jail.Limits().processes
    evil.assert_healthy()


def test_unbounded_allocation_stops_at_the_memory_limit(evil):
    # A warm worker first: the attack's budget is for filling memory, not for starting a jail.
    assert evil.api(EVIL, "/identity")[0].status == OK
    outcome, report = evil.api(EVIL, "/alloc")
    assert outcome.status == OK
    assert report["error"] == "MemoryError"
    assert report["allocated_mb"] < jail.Limits().memory_bytes // (1024 * 1024)
    evil.assert_healthy()


def test_open_files_stop_at_the_limit(evil):
    outcome, report = evil.api(EVIL, "/files")
    assert outcome.status == OK
    assert report["error"] == "OSError" and report["opened"] < jail.Limits().open_files


@pytest.mark.parametrize("attack", ["/loop", "/sleep"])
def test_a_call_that_never_ends_is_cut_off_at_its_budget_and_reported(evil, attack, caplog):
    worker = evil.supervisor(EVIL).acquire(time.monotonic() + 10)
    evil.supervisor(EVIL).release(worker)
    with caplog.at_level(logging.WARNING):
        outcome, _ = evil.api(EVIL, attack)
    assert outcome.status == TIMEOUT
    # cut off: the worker is killed just after the budget, not left spinning
    assert eventually(lambda: evil.supervisor(EVIL).status()["faults"] == 1) and not worker.alive()
    status = evil.supervisor(EVIL).status()
    assert status["faults"] == 1 and "budget" in status["last_fault"]
    assert any("evil.probe" in record.getMessage() and "budget" in record.getMessage() for record in caplog.records)
    assert evil.api(EVIL, "/identity")[0].status == OK  # restarted
    evil.assert_healthy()


def test_flooding_stdout_neither_blocks_the_worker_nor_floods_the_log(evil, caplog):
    with caplog.at_level(logging.INFO, logger="canopy.sandbox"):
        outcome, report = evil.api(EVIL, "/flood", {"chunks": 400})  # 26 MB
    assert outcome.status == OK and report == {"flooded": True}
    output = [r for r in caplog.records if "output" in r.getMessage()]
    assert sum(len(r.getMessage()) for r in output) < 64 * 1024
    evil.assert_healthy()


def test_flooding_the_log_is_cut_to_a_few_lines_per_call(evil, caplog):
    with caplog.at_level(logging.INFO):
        outcome, report = evil.api(EVIL, "/log-flood")
    assert outcome.status == OK
    lines = [r for r in caplog.records if r.getMessage().startswith("plugin evil.probe: line")]
    assert 0 < len(lines) <= 100
    assert any("rest are dropped" in r.getMessage() for r in caplog.records)


def test_a_result_over_the_size_limit_is_refused_without_harm(evil):
    outcome, _ = evil.api(EVIL, "/huge")
    assert outcome.status == INVALID and "over the limit" in str(outcome.error)
    assert evil.supervisor(EVIL).status()["faults"] == 0
    evil.assert_healthy()


def test_junk_results_are_invalid(evil):
    page = evil.runtime.page(evil.ctx(EVIL), "/junk", {})
    [search] = evil.runtime.search([evil.ctx(EVIL)], "anything")
    assert (page.status, search.status) == (INVALID, INVALID)
    assert evil.api(EVIL, "/not-json")[0].status == INVALID


# -- crashes ----------------------------------------------------------------------------------------

def test_a_crash_is_restarted_and_the_third_in_an_hour_disables_the_plugin_for_staff_to_see(evil):
    from host.db import get_database
    from host.runtime.models import PluginState
    from host.runtime import get_runtime
    from host.runtime.registry import get_version, sync_registry

    with get_database(evil.app).transaction(write=True) as session:
        sync_registry(session, get_runtime(evil.app), approve=True)
    for attempt in range(3):
        outcome, _ = evil.api(EVIL, "/exit")
        assert outcome.status == ERROR and "exited with status 3" in str(outcome.error)
        evil.assert_healthy()
    status = evil.supervisor(EVIL).status()
    assert status["faults"] == 3 and "3 faults" in status["disabled"]
    with get_database(evil.app).transaction() as session:
        version = get_version(session, EVIL)
        assert version.state == PluginState.DISABLED
        assert "exited with status 3" in version.state_reason
    outcome, _ = evil.api(EVIL, "/identity")
    assert outcome.status == ERROR and "disabled" in str(outcome.error)
    evil.assert_healthy()


def test_a_plugin_that_dies_while_imported_is_refused_with_the_reason(sandbox_app):
    from host.runtime import get_runtime

    runtime = get_runtime(sandbox_app(Path(__file__).parent / "plugins" / "evil_import"))
    [refused] = [p for p in runtime.refused if p.id == "evil.import"]
    assert "could not be started in the sandbox" in refused.problem and "exited with status 7" in refused.problem
    assert "evil.import" not in runtime.plugins


# -- forged and malformed frames ------------------------------------------------------------------

@pytest.mark.parametrize("forgery", ["other-plugin", "other-customer", "other-call", "unknown-method", "old-version",
                                     "not-json", "oversized", "forged-result"])
def test_a_forged_or_malformed_frame_kills_the_worker_and_is_reported(evil, forgery, caplog):
    worker = evil.supervisor(EVIL).acquire(time.monotonic() + 10)
    evil.supervisor(EVIL).release(worker)
    with caplog.at_level(logging.ERROR, logger="canopy.sandbox"):
        outcome, _ = evil.api(EVIL, "/forge", {"forgery": forgery, "call": 1}, customer="alice")
    assert outcome.status == ERROR
    assert "broke the protocol" in str(outcome.error)
    assert not worker.alive()
    assert "broke the protocol" in evil.supervisor(EVIL).status()["last_fault"]
    assert any("broke the protocol" in record.getMessage() for record in caplog.records)
    evil.assert_healthy()


# -- ctx outside the grant ------------------------------------------------------------------------

def test_ctx_calls_outside_the_grant_are_denied_on_the_host_and_audited(evil, caplog):
    with caplog.at_level(logging.WARNING, logger="canopy.audit"):
        outcome, report = evil.api(EVIL, "/scopes", customer="alice")
    assert outcome.status == OK
    assert report["require"] == {"denied": "payments:create", "reason": "the plugin's manifest does not request it"}
    assert report["create_intent"]["denied"] == "payments:create"
    assert report["refund"]["denied"] == "refunds:create"
    denied = [r for r in caplog.records if getattr(r, "event", None) == "scope.denied"]
    assert {r.scope for r in denied} >= {"payments:create", "refunds:create"}
    assert {r.plugin for r in denied} == {EVIL}


def test_the_customer_is_the_calls_own_pairwise_subject(evil):
    outcome, seen = evil.api(EVIL, "/customer", customer="alice")
    assert outcome.status == OK
    assert seen["customer"] not in (None, "alice")  # pairwise, never the customer's own id
    assert seen["storage"] == {"ok": True, "value": None}
    outcome, anonymous = evil.api(EVIL, "/customer")
    assert anonymous["customer"] is None and anonymous["storage"]["error"] == "NoCustomer"
