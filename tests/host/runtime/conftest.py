"""Fixtures for the plugin runtime tests: plugin folders in tmp_path and bare runtimes.

With ``--import-mode=importlib`` test modules cannot import this file, so the helpers
are handed out as fixtures.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

#: A plugin with one good tile; the default module of :func:`make_plugin`.
GOOD_PLUGIN = """\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="Hello from " + ctx.plugin_id)]


plugin = Plugin()
"""


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    raise TypeError(value)


def manifest_text(plugin_id: str, **changes: Any) -> str:
    """A valid ``plugin.toml`` for ``plugin_id`` (a branch plugin), with ``changes`` applied."""
    data: dict[str, Any] = {
        "id": plugin_id,
        "name": {"zh": "测试", "en": "Test"},
        "version": "1.0.0",
        "publisher": {"kind": "branch", "id": "SH001"},
        "entry": "main:plugin",
        "scopes": [],
        "pages": [{"path": "/", "title": {"zh": "首页", "en": "Home"}}],
    }
    data.update(changes)
    return "".join(f"{key} = {_toml(value)}\n" for key, value in data.items())


def make_plugin(
    root: Path,
    plugin_id: str,
    code: str = GOOD_PLUGIN,
    *,
    folder: str | None = None,
    files: dict[str, str] | None = None,
    **manifest: Any,
) -> Path:
    """Write ``root/<folder>/plugin.toml`` and ``main.py`` (``code``) plus ``files``; return the folder.

    Keyword arguments change the manifest: ``make_plugin(tmp_path, "a.b", scopes=[...])``.
    """
    path = root / (folder or plugin_id.replace(".", "_").replace("-", "_"))
    path.mkdir(parents=True)
    (path / "plugin.toml").write_text(manifest_text(plugin_id, **manifest), encoding="utf-8")
    (path / "main.py").write_text(textwrap.dedent(code), encoding="utf-8")
    for relative, content in (files or {}).items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return path


@pytest.fixture(name="make_plugin")
def make_plugin_fixture() -> Callable[..., Path]:
    """``make_plugin(root, plugin_id, code=GOOD_PLUGIN, *, folder=None, files=None, **manifest)``."""
    return make_plugin


@pytest.fixture(name="manifest_text")
def manifest_text_fixture() -> Callable[..., str]:
    return manifest_text


@pytest.fixture
def plugins_dir(tmp_path) -> Path:
    """An empty folder of plugin folders."""
    path = tmp_path / "plugins"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _forget_plugin_modules():
    """Drop the synthetic ``canopy_plugin_*`` packages a test imported, so tests stay independent."""
    before = set(sys.modules)
    yield
    for name in [n for n in sys.modules if n.startswith("canopy_plugin_") and n not in before]:
        del sys.modules[name]


def runtime_config(**overrides: Any) -> dict[str, Any]:
    """What :class:`PluginRuntime` reads from the app's configuration."""
    config: dict[str, Any] = {
        "PLUGIN_POOL_SIZE": 8,
        "PLUGIN_MAX_IN_FLIGHT": 4,
        "SECRET_KEY": "runtime-tests-secret-0123456789abcdef",
        "HOOK_BUDGET_MS": {
            "canopy_storefront_tiles": 5000,
            "canopy_page": 5000,
            "canopy_api": 5000,
            "canopy_on_event": 5000,
            "canopy_search": 5000,
        },
    }
    config.update(overrides)
    return config


@pytest.fixture
def make_runtime(tmp_path):
    """Build a :class:`PluginRuntime` without an app: ``make_runtime(*folders, start=True, database=None)``.

    Without ``database`` it gets a SQLite database that is never connected to (enough
    for loading and calling hooks that do not touch storage). Each runtime's pool is
    shut down at the end.
    """
    from host.db import Database
    from host.runtime.services import PluginRuntime

    built = []

    def build(*folders: Path, start: bool = True, database=None, **config: Any) -> PluginRuntime:
        runtime = PluginRuntime(runtime_config(**config), database or Database(f"sqlite:///{tmp_path / 'unused.db'}"))
        runtime.load(list(folders), entry_points=False)
        if start:
            runtime.start()
        built.append(runtime)
        return runtime

    yield build
    for runtime in built:
        runtime.invoker.shutdown()


@pytest.fixture
def branch():
    from canopy_sdk import BranchInfo

    return BranchInfo(code="SH001", name="Shanghai Branch", parent="HQ")
