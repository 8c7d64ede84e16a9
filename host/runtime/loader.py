"""Finding plugins (folders and the ``canopy.plugins`` entry-point group) and loading them.

Loading never raises for a bad plugin: it returns a :class:`LoadedPlugin` with
``problem`` set, so one broken folder cannot stop the host or its neighbours.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from canopy_sdk.loading import PluginImportError, import_entry
from canopy_sdk.manifest import MANIFEST_NAME, Manifest, ManifestError, load_manifest

log = logging.getLogger("canopy.runtime")

ENTRY_POINT_GROUP = "canopy.plugins"
SANDBOX_ONLY = (
    "partner plugins run only in the sandbox, which is switched off on this host (SANDBOX = \"off\"); "
    "the plugin is registered but not started"
)
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache"}


@dataclass
class LoadedPlugin:
    """A plugin found on disk or through an entry point, loaded or refused."""

    source: str
    folder: Path | None
    manifest: Manifest | None = None
    checksum: str | None = None
    plugin: Any = None
    problem: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        """The plugin id, when the manifest could be read."""
        return self.manifest.id if self.manifest else None

    @property
    def ok(self) -> bool:
        """Whether the plugin loaded and may be registered."""
        return self.problem is None and self.plugin is not None


class FolderProblem(Exception):
    """A plugin folder holds something it may not (a link, a special file)."""


def folder_checksum(folder: Path) -> str:
    """Return ``sha256:<hex>`` over every file's relative path and bytes, in sorted order.

    Refuses links and special files anywhere in the folder: a plugin's files are
    exactly what is inside it.
    """
    def digests() -> Iterator[tuple[str, bytes]]:
        for relative, path in plugin_files(folder):
            content = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    content.update(chunk)
            yield relative, content.digest()

    return tree_checksum(digests())


def tree_checksum(files: Iterable[tuple[str, bytes]]) -> str:
    """Return ``sha256:<hex>`` over files given as (relative POSIX path, SHA-256 digest of the
    bytes), in sorted order: the checksum of a plugin folder, or of a package's files."""
    digest = hashlib.sha256()
    for relative, content in sorted(files):
        # Each file adds its path and the fixed-length hash of its bytes, so no choice of
        # file contents can make one tree read like another (a file holding "\0b\0…").
        digest.update(relative.encode("utf-8") + b"\0" + content)
    return "sha256:" + digest.hexdigest()


def plugin_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every file of a plugin folder as (relative POSIX path, path), caches left out;
    :class:`FolderProblem` for a link or a special file anywhere in it."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in list(dirs):
            if name in SKIPPED_NAMES:
                dirs.remove(name)
            elif (base / name).is_symlink():
                raise FolderProblem(f"{(base / name).relative_to(folder)} is a link; plugin folders may not hold links")
        for name in files:
            path = base / name
            # Compiled files outside __pycache__ are counted: Python imports a lone
            # ``module.pyc`` as code.
            if path.is_symlink():
                raise FolderProblem(f"{path.relative_to(folder)} is a link; plugin folders may not hold links")
            if not path.is_file():
                raise FolderProblem(f"{path.relative_to(folder)} is not a regular file")
            yield path.relative_to(folder).as_posix(), path


def discover_folders(paths: Iterable[Path]) -> list[Path]:
    """Return plugin folders: each path that holds a ``plugin.toml`` itself, or its
    immediate subfolders that do. Missing paths are skipped with a warning."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            log.warning("plugin path %s is not a folder; skipped", path)
            continue
        if (path / MANIFEST_NAME).exists():
            found.append(path)
            continue
        for child in sorted(path.iterdir()):
            if (child / MANIFEST_NAME).exists() or (child.is_symlink() and child.is_dir()):
                found.append(child)
    return found


def inspect_folder(folder: Path, *, source: str | None = None) -> LoadedPlugin:
    """Validate a plugin folder — manifest, files, checksum — without importing anything."""
    result = LoadedPlugin(source=source or str(folder), folder=folder)
    if folder.is_symlink():
        result.problem = "the plugin folder is a link; plugin folders may not be links"
        return result
    try:
        result.manifest = load_manifest(folder)
        result.checksum = folder_checksum(folder)
    except ManifestError as exc:
        result.problem = str(exc)
        result.problems = exc.problems
    except FolderProblem as exc:
        result.problem = str(exc)
    return result


def load_folder(folder: Path, *, import_code: bool = True, source: str | None = None) -> LoadedPlugin:
    """Validate a plugin folder and, unless it must run in the sandbox, import its entry.

    A partner plugin is never imported: it comes back with ``problem`` :data:`SANDBOX_ONLY`,
    which the runtime's sandbox replaces with a proxy when it can isolate the plugin."""
    result = inspect_folder(folder, source=source)
    if result.problem is not None:
        return result
    assert result.manifest is not None
    if result.manifest.publisher_kind == "partner":
        result.problem = SANDBOX_ONLY
        return result
    if import_code:
        import_folder_code(result)
    return result


def import_folder_code(result: LoadedPlugin, *, package: str | None = None) -> None:
    """Import the entry of a folder plugin that validated (sets ``plugin`` or ``problem``),
    under the synthetic ``package`` when given (see ``canopy_sdk.loading.import_entry``)."""
    assert result.folder is not None and result.manifest is not None and result.problem is None
    _import(result, lambda: import_entry(result.folder, result.manifest, package=package))


def _import(result: LoadedPlugin, load) -> None:
    try:
        result.plugin = load()
    except PluginImportError as exc:
        result.problem = str(exc)
    except Exception as exc:  # an entry point's own import error
        result.problem = f"importing {result.source} failed: {exc!r}"


def load_entry_points() -> list[LoadedPlugin]:
    """Load the installed distributions of the ``canopy.plugins`` entry-point group.

    The entry point names the plugin object (``pkg.module:plugin``); its
    ``plugin.toml`` sits in the folder of the entry point's package.
    """
    loaded = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {entry_point.name} = {entry_point.value}"
        folder = _package_folder(entry_point.module)
        if folder is None:
            loaded.append(LoadedPlugin(source=source, folder=None, problem=f"{source}: module not found"))
            continue
        result = load_folder(folder, import_code=False, source=source)
        if result.problem is None:
            _import(result, entry_point.load)
        loaded.append(result)
    return loaded


def _package_folder(module: str) -> Path | None:
    # Not importlib.util.find_spec: for "pkg.main" it imports "pkg", which would run a
    # partner's package code in the host before the manifest says it is a partner's.
    spec = None
    search = None
    name = ""
    for part in module.split("."):
        name = f"{name}.{part}" if name else part
        spec = _find_spec(name, search)
        if spec is None:
            return None
        search = spec.submodule_search_locations
        if search is None and name != module:
            return None  # a module in the middle of a dotted name
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _find_spec(name: str, search: Any) -> Any:
    """Ask the import system's finders for ``name`` without importing anything."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, search)
        except (ImportError, ValueError):
            return None
        if spec is not None:
            return spec
    return None
