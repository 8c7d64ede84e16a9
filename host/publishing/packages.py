"""Mini-program packages: one zip archive per version, read without trusting a byte of it.

A package is a plugin folder zipped: ``plugin.toml`` at the archive's root (or inside one
top-level folder, as zipping a folder makes it), the entry module and the rest of the plugin's
code, ``templates/`` and ``static/``. :func:`read_package` checks everything from the archive's
central directory **before** anything is decompressed, then decompresses each member with a
hard cap on its size, so a hostile archive is refused with the reason and costs at most the
limits: no path that leaves the folder (``..``, absolute, drive letters, backslashes), no links
or device files, no duplicate or case-clashing names, no encrypted members, no member, total or
compression ratio past the limits (zip bombs), only the file types a mini-program has. The
manifest is validated as the runtime validates a folder's, and the package's checksum is the
folder checksum the registry records (``host.runtime.loader.tree_checksum``), so the files a
reviewer approved are exactly the files the runtime loads.

:func:`store` writes an accepted package into the instance's package store as
``<plugin id>/<version>/``: once there, a version never changes (the same files again are
accepted as the same version; other files under the same version are refused).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from canopy_sdk.manifest import MANIFEST_NAME, Manifest, ManifestError, read_manifest_text

from ..runtime.loader import SKIPPED_NAMES, tree_checksum


class PackageRefused(ValueError):
    """The archive is not an acceptable package; the message says why (safe to show the publisher)."""


@dataclass(frozen=True)
class Limits:
    """What one package may hold."""

    archive_bytes: int = 5 * 1024 * 1024  #: the uploaded archive
    members: int = 500  #: entries in the archive (files and folders)
    file_bytes: int = 2 * 1024 * 1024  #: one file, decompressed
    total_bytes: int = 20 * 1024 * 1024  #: all files, decompressed
    ratio: int = 100  #: a file's decompressed size ÷ its compressed size (past this: a bomb)
    path_chars: int = 200  #: one path
    depth: int = 8  #: folders deep


#: The file types a mini-program is made of (lower-case suffixes).
ALLOWED_SUFFIXES = frozenset({
    ".py", ".toml", ".html", ".jinja", ".css", ".js", ".json", ".txt", ".md", ".svg", ".png", ".jpg", ".jpeg",
    ".gif", ".webp", ".ico", ".woff", ".woff2", ".po", ".mo",
})
_FORBIDDEN_CHARS = frozenset('\\:*?"<>|') | {chr(n) for n in range(32)} | {"\x7f"}


@dataclass(frozen=True)
class Package:
    """An accepted package: its manifest, its files (relative POSIX path → bytes) and checksums."""

    manifest: Manifest
    files: dict[str, bytes] = field(repr=False)
    checksum: str  #: the plugin folder's checksum, as the registry records it
    archive_sha256: str  #: of the uploaded archive's bytes, for the publisher's receipt
    size: int  #: all files, decompressed


def read_package(data: bytes, *, limits: Limits = Limits()) -> Package:
    """Check ``data`` (a zip archive) and return its :class:`Package`; :class:`PackageRefused`
    naming the first problem otherwise. Nothing is written anywhere."""
    if not isinstance(data, (bytes, bytearray)):
        raise PackageRefused("the package must be a zip archive")
    if len(data) > limits.archive_bytes:
        raise PackageRefused(f"the archive is {len(data):,} bytes; at most {limits.archive_bytes:,} are accepted")
    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise PackageRefused("the package is not a readable zip archive") from None
    if len(entries) > limits.members:
        raise PackageRefused(f"the archive has {len(entries):,} entries; at most {limits.members} are accepted")
    files = _plan(entries, limits)
    prefix = _root_prefix(files)
    contents: dict[str, bytes] = {}
    with archive:
        for name, info in files.items():
            relative = name[len(prefix):]
            if relative.split("/", 1)[0] in SKIPPED_NAMES or "/__pycache__/" in f"/{relative}":
                continue
            contents[relative] = _extract(archive, info, limits)
    manifest = _manifest(contents)
    size = sum(len(content) for content in contents.values())
    checksum = tree_checksum((path, hashlib.sha256(content).digest()) for path, content in contents.items())
    return Package(manifest, contents, checksum, hashlib.sha256(data).hexdigest(), size)


def _plan(entries: list[zipfile.ZipInfo], limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """The archive's files by name, every entry checked from the central directory alone."""
    files: dict[str, zipfile.ZipInfo] = {}
    seen: set[str] = set()
    total = 0
    for info in entries:
        name = info.filename
        shown = name[:80].encode("unicode_escape").decode("ascii")
        _check_path(name, shown, limits)
        folded = name.rstrip("/").casefold()
        if folded in seen:
            raise PackageRefused(f"{shown}: the archive names it twice (names may not differ only in case)")
        seen.add(folded)
        if info.flag_bits & 0x1:
            raise PackageRefused(f"{shown}: encrypted entries are not accepted")
        kind = stat.S_IFMT(info.external_attr >> 16)  # Unix file type, when the archiver recorded one
        if info.create_system == 3 and kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise PackageRefused(f"{shown}: only files and folders are accepted (no links or special files)")
        if info.is_dir():
            continue
        if PurePosixPath(name).suffix.lower() not in ALLOWED_SUFFIXES:
            raise PackageRefused(f"{shown}: this type of file is not accepted in a mini-program "
                                 f"(accepted: {', '.join(sorted(ALLOWED_SUFFIXES))})")
        if info.file_size > limits.file_bytes:
            raise PackageRefused(f"{shown}: {info.file_size:,} bytes; a file may have at most {limits.file_bytes:,}")
        if info.file_size > max(info.compress_size, 1) * limits.ratio:
            raise PackageRefused(f"{shown}: compressed more than {limits.ratio} to 1; not accepted")
        total += info.file_size
        if total > limits.total_bytes:
            raise PackageRefused(f"the files add up to more than {limits.total_bytes:,} bytes")
        files[name] = info
    return files


def _check_path(name: str, shown: str, limits: Limits) -> None:
    """Refuse a name that could leave the plugin's folder or that no file system stores alike."""
    if not name or len(name) > limits.path_chars:
        raise PackageRefused(f"{shown or 'an entry'}: a path must have 1 to {limits.path_chars} characters")
    if _FORBIDDEN_CHARS.intersection(name):
        raise PackageRefused(f"{shown}: a path may not hold backslashes, colons, control characters or *?\"<>|")
    if name.startswith("/"):
        raise PackageRefused(f"{shown}: absolute paths are not accepted")
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise PackageRefused(f"{shown}: a path may not hold empty, '.' or '..' parts")
    if len(parts) > limits.depth:
        raise PackageRefused(f"{shown}: folders may be at most {limits.depth} deep")


def _root_prefix(files: dict[str, zipfile.ZipInfo]) -> str:
    """``""`` when ``plugin.toml`` is at the archive's root, or ``"<folder>/"`` when the whole
    package sits in one top-level folder that holds it."""
    if MANIFEST_NAME in files:
        return ""
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):
        prefix = f"{tops.pop()}/"
        if f"{prefix}{MANIFEST_NAME}" in files:
            return prefix
    raise PackageRefused(f"the archive has no {MANIFEST_NAME} at its root (or in its one top-level folder)")


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bytes:
    """A member's bytes, reading at most what its entry announced (a lying header is refused)."""
    try:
        with archive.open(info) as member:
            content = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, EOFError, OSError) as exc:
        raise PackageRefused(f"{info.filename[:80]!r} cannot be read: {exc.__class__.__name__}") from None
    if len(content) != info.file_size:
        raise PackageRefused(f"{info.filename[:80]!r}: its size differs from what the archive says")
    return content


def _manifest(contents: dict[str, bytes]) -> Manifest:
    try:
        text = contents[MANIFEST_NAME].decode("utf-8")
    except UnicodeDecodeError:
        raise PackageRefused(f"{MANIFEST_NAME} is not UTF-8 text") from None
    try:
        manifest = read_manifest_text(text)
    except ManifestError as exc:
        raise PackageRefused(str(exc)) from None
    entry_module = manifest.entry.split(":", 1)[0].replace(".", "/")
    if f"{entry_module}.py" not in contents and f"{entry_module}/__init__.py" not in contents:
        raise PackageRefused(f"{MANIFEST_NAME}: entry {manifest.entry!r} names a module the package does not hold")
    return manifest


def store(package: Package, root: Path) -> Path:
    """Write ``package`` to ``root/<plugin id>/<version>/`` and return that folder.

    Written into a temporary folder beside it and renamed into place, so a folder is there
    whole or not at all. A version already stored with the same checksum is left as it is;
    with another, :class:`PackageRefused` (a published version never changes).
    """
    from ..runtime.loader import folder_checksum

    folder = root / package.manifest.id / package.manifest.version
    if folder.exists():
        if folder_checksum(folder) == package.checksum:
            return folder
        raise PackageRefused(f"{package.manifest.id} {package.manifest.version} is already stored with other files; "
                             f"a version never changes — publish a new version number")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=folder.parent))
    os.chmod(staging, 0o755)  # readable by the sandbox's workers, which run as users of their own
    try:
        for relative, content in package.files.items():
            target = staging.joinpath(*relative.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as handle:  # never through a link: the folder is new and ours
                handle.write(content)
            os.chmod(target, 0o444)
        try:
            staging.rename(folder)
        except OSError:  # stored meanwhile by a concurrent upload: the same files, or refused
            if folder.exists() and folder_checksum(folder) == package.checksum:
                return folder
            raise PackageRefused(f"{package.manifest.id} {package.manifest.version} was stored meanwhile with "
                                 f"other files") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder
