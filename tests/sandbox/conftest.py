"""Fixtures for the sandbox tests: real bubblewrap jails, real processes, real sockets.

Tests that need isolation take the ``isolation`` fixture: without bubblewrap (or where it
cannot isolate) they skip, saying why — except under ``CI=true``, where that fails the
run (``make test`` installs bubblewrap). The fixture plugins under ``plugins/`` are
partner plugins written to attack the host.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandbox import jail
from sandbox.supervisor import FaultPolicy, PluginSupervisor

HERE = Path(__file__).resolve().parent
FIXTURE_PLUGINS = HERE / "plugins"
BUNDLED = HERE.parents[1] / "plugins"


@pytest.fixture
def isolation(unavailable) -> jail.Probe:
    """The probe of this machine; skips (fails under CI=true) when partner plugins cannot be isolated."""
    probe = jail.probe()
    if not probe.ok or probe.unsafe:
        unavailable(f"the sandbox cannot isolate plugins here: {probe.reason}")
    return probe


FACTS = {"plugin_id": "", "branch": {"code": "SH001", "name": "Shanghai", "parent": None}, "locale": "en",
         "scopes": [], "customer": None}


def facts(plugin_id: str, **changes) -> dict:
    """The ctx facts of a call for ``plugin_id``."""
    return {**FACTS, "plugin_id": plugin_id, **changes}


@pytest.fixture(name="facts")
def facts_fixture():
    """``facts(plugin_id, **changes)``: the ctx facts of a call (test modules cannot import conftest)."""
    return facts


@pytest.fixture
def supervisor_for(isolation):
    """``supervisor_for(folder, plugin_id, **options)``: a supervisor of a fixture plugin; stopped at the end."""
    made = []

    def build(folder: Path, plugin_id: str, **options) -> PluginSupervisor:
        options.setdefault("policy", FaultPolicy(backoff=0.01))
        supervisor = PluginSupervisor(jail.JailSpec(plugin_id, folder), **options)
        made.append(supervisor)
        return supervisor

    yield build
    for supervisor in made:
        supervisor.shutdown()


def soon(seconds: float = 5.0) -> float:
    """A monotonic deadline ``seconds`` from now."""
    return time.monotonic() + seconds


@pytest.fixture(name="soon")
def soon_fixture():
    """``soon(seconds=5.0)``: a monotonic deadline."""
    return soon


#: Budgets for the app-level tests: generous for everything (a cold worker start is inside
#: the first call's budget), short for the API so the attacks that hang are cut off soon.
BUDGETS = {"canopy_storefront_tiles": 5000, "canopy_page": 5000, "canopy_api": 1500, "canopy_on_event": 5000,
           "canopy_search": 5000}


@pytest.fixture
def sandbox_app(app_factory, isolation):
    """``sandbox_app(*folders, **config)``: an app serving the fixture plugin folders (and
    ``good.neighbour``), registry synced, restarts after a fault almost at once."""

    def build(*folders: Path, **config):
        config.setdefault("HOOK_BUDGET_MS", BUDGETS)
        config.setdefault("SANDBOX_BACKOFF", 0.01)
        config.setdefault("SANDBOX", "auto")
        paths = [str(folder) for folder in (*folders, FIXTURE_PLUGINS / "good_neighbour")]
        return app_factory(PLUGIN_PATHS=paths, **config)

    return build


class Host:
    """An app and its runtime, with the calls the tests make."""

    def __init__(self, app) -> None:
        from canopy_sdk import BranchInfo

        from host.runtime import get_runtime

        self.app = app
        self.runtime = get_runtime(app)
        self.branch = BranchInfo(code="SH001", name="Shanghai Branch", parent="HQ")

    def ctx(self, plugin_id: str, *, customer: str | None = None, scopes=()):
        return self.runtime.context(plugin_id, branch=self.branch, locale="en", approved_scopes=list(scopes),
                                    customer_id=customer)

    def api(self, plugin_id: str, path: str, body=None, **ctx):
        """The outcome of ``POST path`` to the plugin's back end; a good one's value is decoded."""
        import json

        outcome = self.runtime.api(self.ctx(plugin_id, **ctx), "POST", path, body)
        return outcome, (json.loads(outcome.value) if outcome.ok else None)

    def supervisor(self, plugin_id: str):
        return self.runtime.sandbox.supervisor(plugin_id)

    def assert_healthy(self) -> None:
        """The host answers /healthz and the neighbouring plugin's zone still fills."""
        assert self.app.test_client().get("/healthz").status_code == 200
        [outcome] = self.runtime.tiles([self.ctx("good.neighbour")])
        assert outcome.ok, outcome
        assert outcome.value[0].title == "Hello from good.neighbour"


@pytest.fixture
def sandbox_host(sandbox_app):
    """``sandbox_host(*folders, **config)``: the :class:`Host` of :func:`sandbox_app`'s app."""
    return lambda *folders, **config: Host(sandbox_app(*folders, **config))


@pytest.fixture
def evil(sandbox_app) -> Host:
    """The app with ``evil.probe`` and its neighbour."""
    return Host(sandbox_app(FIXTURE_PLUGINS / "evil_probe"))
