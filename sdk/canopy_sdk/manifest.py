"""The ``plugin.toml`` manifest: its schema, and loading it from a plugin folder.

Every problem is reported with its field path (``pages[1].path``), all at once, and
nothing is loaded when any is wrong. Paths in a manifest (``entry``, page paths)
cannot point outside the plugin's folder: no ``..``, no absolute paths, no links.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .errors import CanopyError

MANIFEST_NAME = "plugin.toml"
MAX_MANIFEST_BYTES = 64 * 1024

PLUGIN_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]|\.(?!\.))*[a-z0-9]\Z")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)
SCOPE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*:[a-z][a-z0-9_]*\Z")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
PAGE_PATH = re.compile(r"^/(?:[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+)*)?\Z")
PUBLISHER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}\Z")
PUBLISHER_KINDS = ("bank", "branch", "partner")
SLOTS = ("tile", "banner", "feed")
#: First path segments the host keeps for itself under a mini-program's address.
RESERVED_PAGE_PREFIXES = ("api", "static")


class ManifestError(CanopyError):
    """A manifest is wrong. ``problems`` lists ``(field_path, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = sorted(problems)
        lines = "\n".join(f"  {path or '(manifest)'}: {message}" for path, message in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class LocalizedText(_Strict):
    zh = fields.String(required=True, validate=validate.Length(1, 60))
    en = fields.String(required=True, validate=validate.Length(1, 60))


class LocalizedDescription(_Strict):
    zh = fields.String(required=True, validate=validate.Length(1, 500))
    en = fields.String(required=True, validate=validate.Length(1, 500))


class Publisher(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(PUBLISHER_KINDS))
    id = fields.String(required=True, validate=validate.Regexp(PUBLISHER_ID, error="must be 1-32 letters, digits, '_' or '-'"))


class PageEntry(_Strict):
    path = fields.String(
        required=True,
        validate=[
            validate.Length(1, 200),
            validate.Regexp(PAGE_PATH, error="must start with '/' and hold only letters, digits, '-', '_' and single '/' (no '..')"),
        ],
    )
    title = fields.Nested(LocalizedText, required=True)


class Zone(_Strict):
    slots = fields.List(
        fields.String(validate=validate.OneOf(SLOTS)), required=True, validate=validate.Length(1, len(SLOTS))
    )


class ManifestSchema(_Strict):
    """The marshmallow schema of ``plugin.toml``."""

    id = fields.String(
        required=True,
        validate=[
            validate.Length(3, 64),
            validate.Regexp(PLUGIN_ID, error="must be 3-64 of a-z, 0-9, '.', '-', starting and ending with a letter or digit"),
        ],
    )
    name = fields.Nested(LocalizedText, required=True)
    description = fields.Nested(LocalizedDescription, load_default=None)
    version = fields.String(required=True, validate=[validate.Length(1, 64), validate.Regexp(SEMVER, error="must be a semantic version such as 1.2.0")])
    publisher = fields.Nested(Publisher, required=True)
    entry = fields.String(required=True, validate=validate.Length(1, 200))
    scopes = fields.List(
        fields.String(validate=validate.Regexp(SCOPE, error="must look like 'resource:action', e.g. 'payments:create'")),
        load_default=list,
        validate=validate.Length(max=32),
    )
    pages = fields.List(fields.Nested(PageEntry), required=True, validate=validate.Length(1, 50))
    zone = fields.Nested(Zone, load_default=None)
    keywords = fields.List(fields.String(validate=validate.Length(1, 40)), load_default=list, validate=validate.Length(max=20))

    @validates_schema(skip_on_field_errors=False)
    def _check_entry_and_uniques(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        entry = data.get("entry")
        if entry is not None and _entry_problem(entry):
            errors["entry"] = [_entry_problem(entry)]  # type: ignore[list-item]
        scopes = data.get("scopes") or []
        if len(set(scopes)) != len(scopes):
            errors["scopes"] = ["lists a scope more than once"]
        pages = data.get("pages") or []  # one entry per input page, invalid fields left out
        paths = [page["path"] for page in pages if "path" in page]
        if len(set(paths)) != len(paths):
            errors["pages"] = ["lists a page path more than once"]
        elif paths and "/" not in paths:
            errors["pages"] = ["must include the start page '/'"]
        for index, page in enumerate(pages):
            path = page.get("path")
            if path is not None and path.split("/")[1] in RESERVED_PAGE_PREFIXES:
                errors[f"pages[{index}].path"] = [f"'/{path.split('/')[1]}' is reserved for the host"]
        if errors:
            raise ValidationError(errors)


def _entry_problem(entry: str) -> str | None:
    module, _, attr = entry.partition(":")
    parts = module.split(".")
    if not module or not all(IDENTIFIER.match(part) for part in parts):
        return "must be 'module' or 'module:attribute' with Python identifiers (no paths, no '..')"
    if _ and not IDENTIFIER.match(attr):
        return "the attribute after ':' must be a Python identifier"
    return None


@dataclass(frozen=True)
class PageSpec:
    """A page the manifest declares."""

    path: str
    title: dict[str, str]


@dataclass(frozen=True)
class Manifest:
    """A validated manifest."""

    id: str
    name: dict[str, str]
    version: str
    publisher_kind: str
    publisher_id: str
    entry: str
    scopes: tuple[str, ...]
    pages: tuple[PageSpec, ...]
    slots: tuple[str, ...]
    keywords: tuple[str, ...]
    description: dict[str, str] | None
    raw: dict[str, Any]

    @property
    def entry_module(self) -> str:
        """The module part of ``entry``."""
        return self.entry.partition(":")[0]

    @property
    def entry_attribute(self) -> str | None:
        """The attribute part of ``entry``, or None when the module itself is the plugin."""
        return self.entry.partition(":")[2] or None


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Turn marshmallow's nested error dict into ``(field_path, message)`` pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                path = prefix
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(value, path))
    elif isinstance(messages, list):
        for message in messages:
            out.extend(_flatten(message, prefix))
    else:
        text = str(messages)
        if text == "Unknown field.":
            text = "is not a manifest field"
        out.append((prefix, text))
    return out


def parse_manifest(data: Any, source: str = MANIFEST_NAME) -> Manifest:
    """Validate an already-parsed manifest mapping and return a :class:`Manifest`."""
    if not isinstance(data, dict):
        raise ManifestError(source, [("", "must be a TOML table")])
    try:
        loaded = ManifestSchema().load(data)
    except ValidationError as exc:
        raise ManifestError(source, _flatten(exc.messages)) from None
    zone = loaded.get("zone") or {"slots": ["tile"]}
    return Manifest(
        id=loaded["id"],
        name=dict(loaded["name"]),
        version=loaded["version"],
        publisher_kind=loaded["publisher"]["kind"],
        publisher_id=loaded["publisher"]["id"],
        entry=loaded["entry"],
        scopes=tuple(loaded["scopes"]),
        pages=tuple(PageSpec(p["path"], dict(p["title"])) for p in loaded["pages"]),
        slots=tuple(dict.fromkeys(zone["slots"])),
        keywords=tuple(loaded["keywords"]),
        description=dict(loaded["description"]) if loaded.get("description") else None,
        raw=data,
    )


def read_manifest_text(text: str, source: str = MANIFEST_NAME) -> Manifest:
    """Parse TOML text and validate it as a manifest."""
    if len(text.encode("utf-8")) > MAX_MANIFEST_BYTES:
        raise ManifestError(source, [("", f"is larger than {MAX_MANIFEST_BYTES} bytes")])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(source, [("", f"is not valid TOML: {exc}")]) from None
    except RecursionError:
        raise ManifestError(source, [("", "is nested too deeply")]) from None
    return parse_manifest(data, source)


def _inside(folder: Path, relative: Path) -> Path | None:
    """Return ``folder/relative`` if it exists as a regular file inside ``folder`` with no
    link on the way, else None."""
    current = folder
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            return None
    if not current.is_file():
        return None
    try:
        current.resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    return current


def entry_module_file(folder: Path, manifest: Manifest) -> Path | None:
    """Return the file that holds the entry module, or None when there is none inside the folder."""
    parts = manifest.entry_module.split(".")
    for candidate in (Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")):
        found = _inside(folder, candidate)
        if found is not None:
            return found
    return None


def load_manifest(folder: str | Path) -> Manifest:
    """Read and validate ``folder/plugin.toml``, checking that ``entry`` is a module
    file inside the folder (no links, nothing outside). Raises :class:`ManifestError`."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    source = str(path)
    if path.is_symlink():
        raise ManifestError(source, [("", "must be a regular file, not a link")])
    if not path.is_file():
        raise ManifestError(source, [("", "is missing")])
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(source, [("", f"is larger than {MAX_MANIFEST_BYTES} bytes")])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError(source, [("", "is not UTF-8 text")]) from None
    manifest = read_manifest_text(text, source)
    if entry_module_file(folder, manifest) is None:
        raise ManifestError(
            source,
            [("entry", f"module {manifest.entry_module!r} is not a regular file inside the plugin folder")],
        )
    return manifest
