"""Shared fixtures for the canopy_sdk tests: valid manifests and plugin folders in tmp_path.

With ``--import-mode=importlib`` test modules cannot import this file, so helpers are
handed out as fixtures. The helper fixtures are session-scoped (they hold no state)
so hypothesis tests may use them too.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

#: A small, valid plugin: one hook, one tile.
MAIN_PY = '''\
from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="Hello", link="/")]


plugin = Plugin()
'''

VALID_MANIFEST: dict[str, Any] = {
    "id": "acme.bills",
    "version": "1.2.0",
    "entry": "main:plugin",
    "scopes": ["payments:create", "profile.basic:read"],
    "keywords": ["bills"],
    "name": {"zh": "账单", "en": "Bills"},
    "publisher": {"kind": "partner", "id": "acme"},
    "pages": [
        {"path": "/", "title": {"zh": "首页", "en": "Home"}},
        {"path": "/bills", "title": {"zh": "账单", "en": "Bills"}},
    ],
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    """Write a mapping as TOML (one ``key = value`` line per top-level key)."""
    return "".join(f"{json.dumps(key)} = {_toml_value(value)}\n" for key, value in data.items())


def make_plugin(
    root: Path,
    manifest_text: str | bytes | None = None,
    files: dict[str, str | bytes] | None = None,
    *,
    name: str = "plugin",
) -> Path:
    """Create ``root/name`` holding ``plugin.toml`` (the valid manifest by default) and
    ``files`` (``{"main.py": MAIN_PY}`` by default); return the folder."""
    folder = root / name
    folder.mkdir(parents=True)
    text = to_toml(VALID_MANIFEST) if manifest_text is None else manifest_text
    for relative, content in {"plugin.toml": text, **(files if files is not None else {"main.py": MAIN_PY})}.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def valid_manifest() -> Callable[..., dict[str, Any]]:
    """Return a function giving a fresh copy of a valid manifest mapping, with overrides."""

    def build(**changes: Any) -> dict[str, Any]:
        data = copy.deepcopy(VALID_MANIFEST)
        data.update(changes)
        return data

    return build


@pytest.fixture(scope="session", name="to_toml")
def to_toml_fixture() -> Callable[[dict[str, Any]], str]:
    return to_toml


@pytest.fixture(scope="session", name="make_plugin")
def make_plugin_fixture() -> Callable[..., Path]:
    """``make_plugin(tmp_path, manifest_text=None, files=None, *, name="plugin")``."""
    return make_plugin


@pytest.fixture(scope="session")
def main_py() -> str:
    return MAIN_PY


@pytest.fixture(autouse=True)
def _forget_plugin_modules():
    """Drop the synthetic ``canopy_plugin_*`` packages a test imported, so tests stay independent."""
    before = {name for name in sys.modules if name.startswith("canopy_plugin_")}
    yield
    for name in [n for n in sys.modules if n.startswith("canopy_plugin_") and n not in before]:
        del sys.modules[name]
