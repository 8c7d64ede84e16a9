"""host.runtime.loader: finding plugin folders and entry points, checksums, refusing what may not load."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import py_compile
import shutil
import sys
import textwrap

import pytest

from host.runtime import loader
from host.runtime.loader import (
    ENTRY_POINT_GROUP,
    FolderProblem,
    discover_folders,
    folder_checksum,
    load_entry_points,
    load_folder,
)

#: Module code that leaves a marker file when it is imported.
WRITES_MARKER = """\
from pathlib import Path

Path({marker!r}).write_text("imported")

from canopy_sdk import hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return []


plugin = Plugin()
"""


# -- discovery ------------------------------------------------------------------------------------


def test_discover_a_folder_of_plugin_folders(plugins_dir, make_plugin):
    b = make_plugin(plugins_dir, "b.plugin")
    a = make_plugin(plugins_dir, "a.plugin")
    (plugins_dir / "not_a_plugin").mkdir()
    (plugins_dir / "README.md").write_text("notes")

    assert discover_folders([plugins_dir]) == [a, b]


def test_discover_a_plugin_folder_itself(plugins_dir, make_plugin):
    folder = make_plugin(plugins_dir, "a.plugin")
    nested = make_plugin(folder, "nested.plugin")  # a plugin's own subfolders are not scanned

    assert discover_folders([folder]) == [folder]
    assert nested not in discover_folders([folder])


def test_discover_several_paths_and_skip_missing_ones(tmp_path, make_plugin, caplog):
    one = make_plugin(tmp_path / "one", "a.plugin")
    two = make_plugin(tmp_path / "two", "b.plugin")
    missing = tmp_path / "nowhere"

    with caplog.at_level(logging.WARNING, logger="canopy.runtime"):
        found = discover_folders([tmp_path / "one", missing, two])

    assert found == [one, two]
    assert str(missing) in caplog.text


def test_discover_lists_a_linked_plugin_folder_so_it_is_refused(tmp_path, plugins_dir, make_plugin):
    real = make_plugin(tmp_path / "elsewhere", "linked.plugin")
    (plugins_dir / "linked").symlink_to(real, target_is_directory=True)

    [found] = discover_folders([plugins_dir])
    loaded = load_folder(found)

    assert not loaded.ok
    assert "link" in loaded.problem
    assert loaded.plugin is None


# -- checksums ------------------------------------------------------------------------------------


def test_checksum_is_stable_and_independent_of_location(tmp_path, make_plugin):
    folder = make_plugin(tmp_path / "a", "a.plugin", files={"templates/index.html": "<p>hi</p>"})
    copy = tmp_path / "b" / "elsewhere"
    shutil.copytree(folder, copy)

    checksum = folder_checksum(folder)
    assert checksum.startswith("sha256:") and len(checksum) == len("sha256:") + 64
    assert folder_checksum(folder) == checksum
    assert folder_checksum(copy) == checksum


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: (f / "main.py").write_text((f / "main.py").read_text() + "\n# changed\n"), id="edit"),
        pytest.param(lambda f: (f / "templates" / "extra.html").write_text("new"), id="add"),
        pytest.param(lambda f: (f / "templates" / "index.html").rename(f / "templates" / "home.html"), id="rename"),
        pytest.param(lambda f: (f / "templates" / "index.html").unlink(), id="remove"),
        pytest.param(lambda f: (f / "templates" / "index.html").write_bytes(b""), id="empty"),
    ],
)
def test_checksum_changes_when_the_files_change(tmp_path, make_plugin, change):
    folder = make_plugin(tmp_path, "a.plugin", files={"templates/index.html": "<p>hi</p>"})
    before = folder_checksum(folder)

    change(folder)

    assert folder_checksum(folder) != before


def test_checksum_cannot_be_forged_by_moving_bytes_between_files(tmp_path):
    # One file holding "X\0b\0Y" must not read like two files "a" = X and "b" = Y.
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "a").write_bytes(b"X\0b\0Y")
    (two / "a").write_bytes(b"X")
    (two / "b").write_bytes(b"Y")

    assert folder_checksum(one) != folder_checksum(two)


def test_checksum_ignores_bytecode_caches(tmp_path, make_plugin):
    folder = make_plugin(tmp_path, "a.plugin")
    before = folder_checksum(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0cache")
    (folder / ".pytest_cache").mkdir()
    (folder / ".pytest_cache" / "README.md").write_text("cache")

    assert folder_checksum(folder) == before


def test_checksum_counts_a_lone_compiled_module_python_would_import(tmp_path, make_plugin):
    folder = make_plugin(
        tmp_path,
        "pyc.plugin",
        code="from . import helper\nplugin = helper\n",
    )
    source = tmp_path / "helper_source.py"
    source.write_text("GREETING = 'reviewed'\n")
    py_compile.compile(str(source), cfile=str(folder / "helper.pyc"))
    loaded = load_folder(folder)
    assert loaded.ok and loaded.plugin.GREETING == "reviewed"  # Python does import it
    before = loaded.checksum

    source.write_text("GREETING = 'swapped after review'\n")
    py_compile.compile(str(source), cfile=str(folder / "helper.pyc"))

    assert folder_checksum(folder) != before


# -- links and special files ----------------------------------------------------------------------


def test_a_linked_file_is_refused(tmp_path, make_plugin):
    folder = make_plugin(tmp_path / "p", "a.plugin")
    (tmp_path / "secret.txt").write_text("outside")
    (folder / "data.txt").symlink_to(tmp_path / "secret.txt")

    with pytest.raises(FolderProblem, match="data.txt is a link"):
        folder_checksum(folder)
    loaded = load_folder(folder)
    assert not loaded.ok and "data.txt is a link" in loaded.problem
    assert loaded.plugin is None


def test_a_linked_subfolder_is_refused(tmp_path, make_plugin):
    folder = make_plugin(tmp_path / "p", "a.plugin")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "x.html").write_text("outside")
    (folder / "templates").symlink_to(tmp_path / "shared", target_is_directory=True)

    loaded = load_folder(folder)

    assert not loaded.ok and "templates is a link" in loaded.problem


def test_a_linked_plugin_folder_is_refused(tmp_path, make_plugin):
    real = make_plugin(tmp_path / "real", "a.plugin")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)

    loaded = load_folder(tmp_path / "link")

    assert not loaded.ok
    assert loaded.problem == "the plugin folder is a link; plugin folders may not be links"
    assert loaded.manifest is None and loaded.plugin is None


def test_a_special_file_is_refused(tmp_path, make_plugin):
    folder = make_plugin(tmp_path, "a.plugin")
    os.mkfifo(folder / "pipe")

    with pytest.raises(FolderProblem, match="pipe is not a regular file"):
        folder_checksum(folder)


# -- loading folders ------------------------------------------------------------------------------


def test_a_sound_folder_loads(tmp_path, make_plugin):
    folder = make_plugin(tmp_path, "good.plugin")

    loaded = load_folder(folder)

    assert loaded.ok and loaded.problem is None
    assert loaded.id == "good.plugin"
    assert loaded.source == str(folder)
    assert loaded.checksum == folder_checksum(folder)
    assert hasattr(loaded.plugin, "canopy_storefront_tiles")


def test_a_partner_plugin_is_refused_without_running_its_code(tmp_path, make_plugin):
    marker = tmp_path / "partner-code-ran"
    folder = make_plugin(
        tmp_path / "p",
        "acme.bills",
        code=WRITES_MARKER.format(marker=str(marker)),
        publisher={"kind": "partner", "id": "acme"},
    )

    loaded = load_folder(folder)

    assert not loaded.ok
    assert "sandbox" in loaded.problem
    assert loaded.manifest is not None and loaded.checksum is not None  # known, so it can be registered
    assert loaded.plugin is None
    assert not marker.exists()
    assert not any(name.startswith("canopy_plugin_acme") for name in sys.modules)


def test_import_code_false_validates_without_importing(tmp_path, make_plugin):
    marker = tmp_path / "ran"
    folder = make_plugin(tmp_path / "p", "a.plugin", code=WRITES_MARKER.format(marker=str(marker)))

    loaded = load_folder(folder, import_code=False)

    assert loaded.problem is None and loaded.plugin is None and not loaded.ok
    assert not marker.exists()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("def broken(:\n", "SyntaxError", id="syntax-error"),
        pytest.param("raise RuntimeError('no config at import')\n", "no config at import", id="raises"),
        pytest.param("import module_that_does_not_exist_anywhere\n", "module_that_does_not_exist_anywhere", id="bad-import"),
        pytest.param("something_else = 1\n", "has no attribute 'plugin'", id="no-attribute"),
    ],
)
def test_import_errors_become_problems(tmp_path, make_plugin, code, expected):
    folder = make_plugin(tmp_path, "bad.plugin", code=code)

    loaded = load_folder(folder)

    assert not loaded.ok
    assert loaded.plugin is None
    assert expected in loaded.problem
    assert "bad.plugin" in loaded.problem


def test_a_bad_manifest_lists_every_problem_with_its_path(tmp_path, make_plugin):
    folder = make_plugin(tmp_path, "good.plugin", version="one", pages=[{"path": "/x", "title": {"zh": "x", "en": "x"}}])

    loaded = load_folder(folder)

    assert not loaded.ok and loaded.manifest is None and loaded.checksum is None
    paths = {path for path, _ in loaded.problems}
    assert {"version", "pages"} <= paths
    assert "version" in loaded.problem


def test_a_folder_without_a_manifest_is_a_problem(tmp_path):
    (tmp_path / "empty").mkdir()

    loaded = load_folder(tmp_path / "empty")

    assert not loaded.ok and "missing" in loaded.problem


# -- entry points ---------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for installed-looking packages; their modules are forgotten afterwards."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    before = set(sys.modules)
    yield path
    for name in [n for n in sys.modules if n not in before and n.startswith("cnp_")]:
        del sys.modules[name]


@pytest.fixture
def entry_points(monkeypatch):
    """Make ``importlib.metadata.entry_points`` list the given entry points of the plugin group."""
    listed: list[importlib.metadata.EntryPoint] = []

    def fake(**params):
        assert params == {"group": ENTRY_POINT_GROUP}
        return importlib.metadata.EntryPoints(listed)

    monkeypatch.setattr(loader.importlib.metadata, "entry_points", fake)

    def add(name: str, value: str) -> None:
        listed.append(importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP))

    return add


def make_package(site, package: str, plugin_id: str, manifest_text, *, init: str = "", code: str | None = None, **manifest):
    folder = site / package
    folder.mkdir()
    (folder / "__init__.py").write_text(init)
    (folder / "main.py").write_text(
        textwrap.dedent(
            code
            or """\
            from canopy_sdk import Tile, hookimpl

            class Plugin:
                @hookimpl
                def canopy_storefront_tiles(self, ctx):
                    return [Tile(title="installed")]

            plugin = Plugin()
            """
        )
    )
    (folder / "plugin.toml").write_text(manifest_text(plugin_id, **manifest))
    return folder


def test_an_installed_entry_point_is_loaded(site, entry_points, manifest_text):
    folder = make_package(site, "cnp_installed", "installed.plugin", manifest_text)
    entry_points("installed", "cnp_installed.main:plugin")

    [loaded] = load_entry_points()

    assert loaded.ok, loaded.problem
    assert loaded.id == "installed.plugin"
    assert loaded.folder == folder
    assert loaded.source == "entry point installed = cnp_installed.main:plugin"
    assert loaded.checksum == folder_checksum(folder)
    assert loaded.plugin is sys.modules["cnp_installed.main"].plugin  # the real import, not a copy


def test_an_entry_point_whose_module_is_missing_is_a_problem(site, entry_points):
    entry_points("ghost", "cnp_ghost.main:plugin")

    [loaded] = load_entry_points()

    assert not loaded.ok and "module not found" in loaded.problem
    assert loaded.folder is None


def test_an_entry_point_that_fails_to_import_is_a_problem(site, entry_points, manifest_text):
    make_package(site, "cnp_broken", "broken.plugin", manifest_text, code="raise ImportError('needs a driver')\n")
    entry_points("broken", "cnp_broken.main:plugin")

    [loaded] = load_entry_points()

    assert not loaded.ok and "needs a driver" in loaded.problem
    assert loaded.manifest is not None


def test_an_installed_partner_plugin_is_refused_without_running_its_code(tmp_path, site, entry_points, manifest_text):
    marker_init = tmp_path / "package-init-ran"
    marker_main = tmp_path / "main-ran"
    make_package(
        site,
        "cnp_partner",
        "acme.partner",
        manifest_text,
        init=f"from pathlib import Path\nPath({str(marker_init)!r}).write_text('ran')\n",
        code=WRITES_MARKER.format(marker=str(marker_main)),
        publisher={"kind": "partner", "id": "acme"},
    )
    entry_points("partner", "cnp_partner.main:plugin")

    [loaded] = load_entry_points()

    assert not loaded.ok and "sandbox" in loaded.problem
    assert loaded.id == "acme.partner"
    assert not marker_main.exists()
    assert not marker_init.exists()
    assert "cnp_partner" not in sys.modules


def test_a_bad_entry_point_does_not_stop_the_others(site, entry_points, manifest_text):
    make_package(site, "cnp_good", "good.installed", manifest_text)
    entry_points("ghost", "cnp_ghost:plugin")
    entry_points("good", "cnp_good.main:plugin")

    loaded = load_entry_points()

    assert [item.ok for item in loaded] == [False, True]
