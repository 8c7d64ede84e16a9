"""canopy_sdk.manifest: the plugin.toml schema and loading it from a folder."""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canopy_sdk.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestError,
    PageSpec,
    load_manifest,
    parse_manifest,
    read_manifest_text,
)


def problems_of(text: str) -> dict[str, list[str]]:
    """Return ``{field_path: [messages]}`` for a manifest text that must be refused."""
    with pytest.raises(ManifestError) as caught:
        read_manifest_text(text)
    found: dict[str, list[str]] = {}
    for path, message in caught.value.problems:
        found.setdefault(path, []).append(message)
    return found


def load_problems(folder) -> dict[str, list[str]]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    found: dict[str, list[str]] = {}
    for path, message in caught.value.problems:
        found.setdefault(path, []).append(message)
    return found


def page(path: str) -> dict:
    return {"path": path, "title": {"zh": "页", "en": "Page"}}


# -- a valid manifest -----------------------------------------------------------


def test_valid_manifest_loads_from_a_folder(tmp_path, make_plugin):
    folder = make_plugin(tmp_path)

    manifest = load_manifest(folder)

    assert isinstance(manifest, Manifest)
    assert manifest.id == "acme.bills"
    assert manifest.version == "1.2.0"
    assert manifest.name == {"zh": "账单", "en": "Bills"}
    assert (manifest.publisher_kind, manifest.publisher_id) == ("partner", "acme")
    assert (manifest.entry_module, manifest.entry_attribute) == ("main", "plugin")
    assert manifest.scopes == ("payments:create", "profile.basic:read")
    assert manifest.pages == (
        PageSpec("/", {"zh": "首页", "en": "Home"}),
        PageSpec("/bills", {"zh": "账单", "en": "Bills"}),
    )
    assert manifest.slots == ("tile",)  # the default zone
    assert manifest.keywords == ("bills",)
    assert manifest.description is None


def test_optional_parts_are_read(valid_manifest, to_toml):
    text = to_toml(
        valid_manifest(
            entry="main",
            description={"zh": "缴费", "en": "Pay your bills"},
            zone={"slots": ["banner", "tile", "banner"]},
        )
    )

    manifest = read_manifest_text(text)

    assert manifest.entry_attribute is None
    assert manifest.description == {"zh": "缴费", "en": "Pay your bills"}
    assert manifest.slots == ("banner", "tile")  # duplicates dropped, order kept


def test_a_package_can_be_the_entry_module(tmp_path, make_plugin, valid_manifest, to_toml, main_py):
    folder = make_plugin(
        tmp_path, to_toml(valid_manifest(entry="app.core:plugin")), {"app/__init__.py": "", "app/core.py": main_py}
    )

    assert load_manifest(folder).entry_module == "app.core"


@pytest.mark.parametrize("version", ["0.0.1", "10.20.30", "1.2.3-beta.1", "1.2.3+build.5", "1.0.0-rc.1+sha.abc"])
def test_semantic_versions_are_accepted(valid_manifest, to_toml, version):
    assert read_manifest_text(to_toml(valid_manifest(version=version))).version == version


# -- every problem, with its field path -----------------------------------------


def test_missing_required_fields_are_all_reported():
    found = problems_of("")

    assert set(found) == {"id", "name", "version", "publisher", "entry", "pages"}
    assert all(messages == ["Missing data for required field."] for messages in found.values())


def test_missing_nested_fields_are_reported_with_their_path(valid_manifest, to_toml):
    data = valid_manifest(publisher={"kind": "bank"}, name={"en": "Bills"})
    data["pages"][1] = {"path": "/bills"}

    assert set(problems_of(to_toml(data))) == {"publisher.id", "name.zh", "pages[1].title"}


def test_mistyped_fields_are_all_reported_at_once(valid_manifest, to_toml):
    data = valid_manifest(
        id=42,
        name="Bills",
        pages="/",
        scopes=["payments create", "Payments:create", "payments:", "payments:create"],
    )

    found = problems_of(to_toml(data))

    assert set(found) == {"id", "name", "pages", "scopes[0]", "scopes[1]", "scopes[2]"}
    assert found["id"] == ["Not a valid string."]
    assert "resource:action" in found["scopes[0]"][0]


def test_unknown_fields_are_reported_where_they_are(valid_manifest, to_toml):
    data = valid_manifest(colour="green", publisher={"kind": "bank", "id": "hq", "website": "x"})
    data["pages"][1]["icon"] = "star"

    found = problems_of(to_toml(data))

    assert found == {
        "colour": ["is not a manifest field"],
        "publisher.website": ["is not a manifest field"],
        "pages[1].icon": ["is not a manifest field"],
    }


def test_duplicate_scopes_are_refused(valid_manifest, to_toml):
    found = problems_of(to_toml(valid_manifest(scopes=["payments:create", "payments:create"])))

    assert found == {"scopes": ["lists a scope more than once"]}


def test_duplicate_page_paths_are_refused(valid_manifest, to_toml):
    found = problems_of(to_toml(valid_manifest(pages=[page("/"), page("/bills"), page("/bills")])))

    assert found == {"pages": ["lists a page path more than once"]}


def test_a_start_page_is_required(valid_manifest, to_toml):
    found = problems_of(to_toml(valid_manifest(pages=[page("/bills")])))

    assert found == {"pages": ["must include the start page '/'"]}


def test_pages_must_not_be_empty(valid_manifest, to_toml):
    assert set(problems_of(to_toml(valid_manifest(pages=[])))) == {"pages"}


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/static", "/static/css"])
def test_reserved_page_prefixes_are_refused(valid_manifest, to_toml, path):
    found = problems_of(to_toml(valid_manifest(pages=[page("/"), page(path)])))

    prefix = "/" + path.split("/")[1]
    assert found == {"pages[1].path": [f"'{prefix}' is reserved for the host"]}


@pytest.mark.parametrize("path", ["/apis", "/static-info", "/help/api"])
def test_paths_that_only_look_reserved_are_accepted(valid_manifest, to_toml, path):
    manifest = read_manifest_text(to_toml(valid_manifest(pages=[page("/"), page(path)])))

    assert manifest.pages[1].path == path


def test_reserved_page_is_reported_at_its_own_index_after_a_broken_page(valid_manifest, to_toml):
    found = problems_of(to_toml(valid_manifest(pages=[page("/"), page("bills"), page("/api")])))

    assert set(found) == {"pages[1].path", "pages[2].path"}
    assert found["pages[2].path"] == ["'/api' is reserved for the host"]
    assert not any("reserved" in message for message in found["pages[1].path"])


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "/..",
        "/bills/../admin",
        "/a//b",
        "/a/",
        "/a\\b",
        "\\evil",
        "https://evil.example/",
        "//evil.example",
        "javascript:alert(1)",
        "bills",
        "",
        "/a b",
        "/a?x=1",
        "/\n",
        "/bills\n",
    ],
)
def test_bad_page_paths_are_refused(valid_manifest, to_toml, path):
    found = problems_of(to_toml(valid_manifest(pages=[page("/"), page(path)])))

    assert set(found) == {"pages[1].path"}


@pytest.mark.parametrize("version", ["1.0", "1", "01.0.0", "1.0.0.0", "v1.0.0", "1.0.0-", "1.0.0+", "", "1.0.0\n"])
def test_bad_semver_is_refused(valid_manifest, to_toml, version):
    assert set(problems_of(to_toml(valid_manifest(version=version)))) == {"version"}


@pytest.mark.parametrize("plugin_id", ["ab", "Acme", "-acme", "acme-", "acme..bills", "acme_bills", "acme.bills\n", "a" * 65])
def test_bad_plugin_ids_are_refused(valid_manifest, to_toml, plugin_id):
    assert set(problems_of(to_toml(valid_manifest(id=plugin_id)))) == {"id"}


def test_bad_publisher_kind_is_refused(valid_manifest, to_toml):
    found = problems_of(to_toml(valid_manifest(publisher={"kind": "vendor", "id": "acme"})))

    assert set(found) == {"publisher.kind"}
    assert "bank" in found["publisher.kind"][0]


@pytest.mark.parametrize("publisher_id", ["", "a" * 33, "ac me", "acme\n", "ac/me"])
def test_bad_publisher_id_is_refused(valid_manifest, to_toml, publisher_id):
    assert set(problems_of(to_toml(valid_manifest(publisher={"kind": "bank", "id": publisher_id})))) == {"publisher.id"}


@pytest.mark.parametrize("scope", ["payments:create\n", "payments", ":create", "pay-ments:create", "payments:create:all"])
def test_bad_scope_syntax_is_refused(valid_manifest, to_toml, scope):
    assert set(problems_of(to_toml(valid_manifest(scopes=["profile.basic:read", scope])))) == {"scopes[1]"}


def test_many_problems_are_reported_together_and_sorted(valid_manifest, to_toml):
    data = valid_manifest(
        id="X",
        version="one",
        entry="../main",
        publisher={"kind": "vendor", "id": "acme"},
        scopes=["a:b", "a:b"],
        pages=[page("/bills"), page("/static"), page("/a//b")],
        extra=True,
    )

    with pytest.raises(ManifestError) as caught:
        read_manifest_text(to_toml(data), source="plugins/acme/plugin.toml")

    error = caught.value
    paths = [path for path, _ in error.problems]
    assert set(paths) == {
        "id",
        "version",
        "entry",
        "publisher.kind",
        "scopes",
        "pages",
        "pages[1].path",
        "pages[2].path",
        "extra",
    }
    assert error.problems == sorted(error.problems)
    assert error.source == "plugins/acme/plugin.toml"
    message = str(error)
    assert message.startswith(f"plugins/acme/plugin.toml: {len(error.problems)} problem(s)")
    assert "  pages[1].path: '/static' is reserved for the host" in message.splitlines()


# -- the file itself ------------------------------------------------------------


def test_toml_syntax_error_is_a_manifest_problem():
    assert list(problems_of('id = "acme.bills\nversion = 1.0')) == [""]
    assert "is not valid TOML" in problems_of("id = ")[""][0]


def test_duplicate_toml_keys_are_refused(valid_manifest, to_toml):
    text = to_toml(valid_manifest()) + 'id = "other.plugin"\n'

    found = problems_of(text)

    assert list(found) == [""]
    assert "is not valid TOML" in found[""][0]


def test_deeply_nested_toml_is_a_manifest_problem():
    # A RecursionError from the TOML parser must not escape as anything but ManifestError.
    assert list(problems_of("a = " + "[" * 20_000 + "]" * 20_000)) == [""]
    assert list(problems_of("a = " + "{b = " * 5_000 + "1" + "}" * 5_000)) == [""]


def test_parse_manifest_refuses_a_non_table():
    with pytest.raises(ManifestError) as caught:
        parse_manifest(["id", "acme"])

    assert caught.value.problems == [("", "must be a TOML table")]


def test_manifest_size_is_counted_in_utf8_bytes(valid_manifest, to_toml):
    base = to_toml(valid_manifest())
    # '#' + padding + '\n'; each '汉' is 3 bytes in UTF-8.
    room = MAX_MANIFEST_BYTES - len(base.encode("utf-8")) - 2
    fits = base + "#" + "a" * room + "\n"
    too_big = base + "#" + "汉" * (room // 3 + 1) + "\n"
    assert len(fits.encode("utf-8")) == MAX_MANIFEST_BYTES
    assert len(too_big) < MAX_MANIFEST_BYTES < len(too_big.encode("utf-8"))

    assert read_manifest_text(fits).id == "acme.bills"
    assert problems_of(too_big) == {"": [f"is larger than {MAX_MANIFEST_BYTES} bytes"]}


def test_oversized_manifest_file_is_refused(tmp_path, make_plugin, valid_manifest, to_toml):
    folder = make_plugin(tmp_path, to_toml(valid_manifest()) + "#" + "x" * MAX_MANIFEST_BYTES + "\n")

    assert load_problems(folder) == {"": [f"is larger than {MAX_MANIFEST_BYTES} bytes"]}


def test_non_utf8_manifest_is_refused(tmp_path, make_plugin, valid_manifest, to_toml):
    text = to_toml(valid_manifest()).encode("utf-8") + b"# caf\xe9\n"
    folder = make_plugin(tmp_path, text)

    assert load_problems(folder) == {"": ["is not UTF-8 text"]}


def test_missing_manifest_is_reported(tmp_path, make_plugin):
    folder = make_plugin(tmp_path)
    (folder / "plugin.toml").unlink()

    assert load_problems(folder) == {"": ["is missing"]}


def test_manifest_that_is_a_symlink_is_refused(tmp_path, make_plugin, valid_manifest, to_toml):
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(to_toml(valid_manifest()), encoding="utf-8")
    folder = make_plugin(tmp_path)
    (folder / "plugin.toml").unlink()
    os.symlink(elsewhere, folder / "plugin.toml")

    assert load_problems(folder) == {"": ["must be a regular file, not a link"]}


# -- the entry point --------------------------------------------------------------


@pytest.mark.parametrize(
    "entry", ["../main", "/abs", "/abs/main", "a/b", "main.py/x", "..main", "main..x", "main:", "main:1x", "main:a.b", "1main", "main\n"]
)
def test_entry_must_name_a_module_not_a_path(valid_manifest, to_toml, entry):
    assert set(problems_of(to_toml(valid_manifest(entry=entry)))) == {"entry"}


def test_missing_entry_module_is_refused(tmp_path, make_plugin, valid_manifest, to_toml):
    folder = make_plugin(tmp_path, to_toml(valid_manifest(entry="missing:plugin")))

    found = load_problems(folder)

    assert list(found) == ["entry"]
    assert "'missing'" in found["entry"][0]


@pytest.mark.parametrize("target", ["inside", "outside"])
def test_entry_module_that_is_a_symlink_is_refused(tmp_path, make_plugin, main_py, target):
    outside = tmp_path / "outside.py"
    outside.write_text(main_py, encoding="utf-8")
    folder = make_plugin(tmp_path, files={"real.py": main_py})
    os.symlink(folder / "real.py" if target == "inside" else outside, folder / "main.py")
    assert (folder / "main.py").is_file()  # the link itself resolves

    assert list(load_problems(folder)) == ["entry"]


def test_entry_module_inside_a_symlinked_folder_is_refused(tmp_path, make_plugin, valid_manifest, to_toml, main_py):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "__init__.py").write_text("", encoding="utf-8")
    (outside / "core.py").write_text(main_py, encoding="utf-8")
    folder = make_plugin(tmp_path, to_toml(valid_manifest(entry="app.core:plugin")), files={})
    os.symlink(outside, folder / "app", target_is_directory=True)

    assert list(load_problems(folder)) == ["entry"]


def test_entry_package_init_that_is_a_symlink_is_refused(tmp_path, make_plugin, valid_manifest, to_toml, main_py):
    folder = make_plugin(tmp_path, to_toml(valid_manifest(entry="app")), files={"real.py": main_py, "app/x.txt": ""})
    os.symlink(folder / "real.py", folder / "app" / "__init__.py")

    assert list(load_problems(folder)) == ["entry"]


# -- property ----------------------------------------------------------------------

_VALID_LINES = [
    'id = "acme.bills"',
    'version = "1.2.0"',
    'entry = "main:plugin"',
    'scopes = ["payments:create"]',
    'name = {zh = "账单", en = "Bills"}',
    'publisher = {kind = "bank", id = "hq"}',
    'pages = [{path = "/", title = {zh = "首页", en = "Home"}}]',
    "[zone]",
    'slots = ["tile"]',
    "[[pages]]",
    'path = "/api"',
    'title = {zh = "a", en = "b"}',
    "scopes = []",
    'pages = [1, "/", {path = "/x"}]',
    'id = 1979-05-27T07:32:00Z',
    "keywords = [[], {}, 1.5]",
]

toml_like = st.lists(
    st.one_of(st.sampled_from(_VALID_LINES), st.text(alphabet=string.printable, max_size=30)), max_size=12
).map("\n".join)


@given(st.one_of(st.text(), toml_like))
def test_read_manifest_text_returns_a_manifest_or_raises_manifest_error(text):
    try:
        result = read_manifest_text(text)
    except ManifestError as exc:
        assert exc.problems, "a ManifestError must say what is wrong"
        assert all(isinstance(path, str) and isinstance(message, str) for path, message in exc.problems)
    else:
        assert isinstance(result, Manifest)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.just("acme.bills"), json_like),
            "version": st.one_of(st.just("1.0.0"), json_like),
            "entry": st.one_of(st.just("main"), json_like),
            "name": st.one_of(st.just({"zh": "a", "en": "b"}), json_like),
            "publisher": st.one_of(st.just({"kind": "bank", "id": "hq"}), json_like),
            "scopes": st.one_of(st.lists(st.sampled_from(["a:b", "c:d", "bad"]), max_size=3), json_like),
            "pages": st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {"path": st.sampled_from(["/", "/x", "/api", "/static/y", "x", "//"]), "title": st.just({"zh": "a", "en": "b"})}
                    ),
                    json_like,
                ),
                max_size=4,
            ),
            "zone": json_like,
            "keywords": json_like,
            "description": json_like,
        },
    )
)
def test_parse_manifest_on_any_values_returns_a_manifest_or_raises_manifest_error(data):
    try:
        result = parse_manifest(data)
    except ManifestError as exc:
        assert exc.problems
    else:
        assert isinstance(result, Manifest)
