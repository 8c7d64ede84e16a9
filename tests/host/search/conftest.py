"""Fixtures of the search tests: the demo app, and apps with test plugins installed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from host.db import get_database
from host.demo import seed
from host.runtime import get_runtime
from host.runtime.registry import sync_registry
from host.storefront.models import Installation

ROOT = Path(__file__).resolve().parents[3]


def write_plugin(root: Path, plugin_id: str, code: str, *, name=("测试", "Test"), keywords=()) -> None:
    """A bank plugin in ``root`` whose module ``impl`` holds ``code``."""
    folder = root / plugin_id.replace(".", "_")
    folder.mkdir(parents=True)
    words = ", ".join(f'"{word}"' for word in keywords)
    (folder / "plugin.toml").write_text(
        f'id = "{plugin_id}"\n'
        f'name = {{ zh = "{name[0]}", en = "{name[1]}" }}\n'
        'version = "1.0.0"\n'
        'publisher = { kind = "bank", id = "HQ" }\n'
        'entry = "impl"\n'
        'pages = [{ path = "/", title = { zh = "首页", en = "Home" } }]\n'
        f"keywords = [{words}]\n",
        encoding="utf-8",
    )
    (folder / "impl.py").write_text(
        "import threading\nfrom canopy_sdk import SearchHit, hookimpl\nRELEASE = threading.Event()\n"
        + textwrap.dedent(code),
        encoding="utf-8",
    )


@pytest.fixture
def plugin_root(tmp_path) -> Path:
    root = tmp_path / "search_plugins"
    root.mkdir()
    return root


@pytest.fixture
def installed(app_factory, plugin_root):
    """``installed({plugin_id: code}, branches=("SH001",), **config)``: an app with the bundled
    plugins and these test plugins, the demo seeded and the test plugins installed."""

    def build(plugins: dict[str, str | tuple], branches=("SH001",), **overrides):
        for plugin_id, spec in plugins.items():
            code, options = (spec, {}) if isinstance(spec, str) else spec
            write_plugin(plugin_root, plugin_id, code, **options)
        app = app_factory(PLUGIN_PATHS=[str(ROOT / "plugins"), str(plugin_root)], **overrides)
        database = get_database(app)
        with database.transaction(write=True) as session:
            sync_registry(session, get_runtime(app), approve=True)
        with app.app_context(), database.transaction(write=True) as session:
            seed(session)
            for position, plugin_id in enumerate(plugins, start=10):
                for branch in branches:
                    session.add(Installation(branch_code=branch, plugin_id=plugin_id, version="1.0.0", position=position))
        return app

    return build
