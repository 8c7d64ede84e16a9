"""Importing a plugin's entry point from its folder, the same way in the host and the test kit.

Each plugin folder becomes a synthetic package named after the plugin id, so two
plugins may both have a ``main.py`` and a plugin's modules can import each other
with relative imports (``from . import bills``) without touching ``sys.path``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import CanopyError
from .manifest import Manifest


class PluginImportError(CanopyError):
    """The plugin's entry module failed to import or lacks the named attribute."""


def package_name(plugin_id: str) -> str:
    """Return the synthetic package name a plugin's modules live under."""
    return "canopy_plugin_" + re.sub(r"[^a-z0-9]", "_", plugin_id)


def _ensure_package(name: str, folder: Path, plugin_id: str) -> ModuleType:
    existing = sys.modules.get(name)
    # Ids such as "a-b" and "a.b" share a package name; never let one replace the other's modules.
    owner = getattr(existing, "__canopy_plugin_id__", plugin_id)
    if owner != plugin_id:
        raise PluginImportError(f"{plugin_id}: its package name {name!r} is already used by plugin {owner!r}")
    if existing is not None and list(getattr(existing, "__path__", [])) == [str(folder)]:
        return existing
    if existing is not None:  # the same plugin from another folder: forget its old modules
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
    spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    assert spec is not None
    package = importlib.util.module_from_spec(spec)
    package.__path__ = [str(folder)]  # type: ignore[attr-defined]
    package.__canopy_plugin_id__ = plugin_id  # type: ignore[attr-defined]
    sys.modules[name] = package
    return package


def import_entry(folder: str | Path, manifest: Manifest, *, package: str | None = None) -> Any:
    """Import ``manifest.entry`` from ``folder`` and return the plugin object
    (the named attribute, or the module itself when ``entry`` names no attribute).

    ``package`` names the synthetic package (:func:`package_name` of the id when None); a host
    serving two versions of one plugin side by side imports the second under its own name."""
    folder = Path(folder).resolve()
    package = package or package_name(manifest.id)
    _ensure_package(package, folder, manifest.id)
    module_name = f"{package}.{manifest.entry_module}"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error in the plugin's import-time code
        raise PluginImportError(f"{manifest.id}: importing {manifest.entry_module!r} failed: {exc!r}") from exc
    if manifest.entry_attribute is None:
        return module
    try:
        return getattr(module, manifest.entry_attribute)
    except AttributeError:
        raise PluginImportError(
            f"{manifest.id}: module {manifest.entry_module!r} has no attribute {manifest.entry_attribute!r}"
        ) from None
