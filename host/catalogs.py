"""The host's translation catalogs: collecting their messages, updating and compiling them.

Each package with a ``translations/`` folder owns the messages of its own files (its Python
modules and its templates), except those of a sub-package with a catalog of its own. Texts are
written in English, the source language; each other locale has
``translations/<locale>/LC_MESSAGES/messages.po`` (edited by people) and its compiled ``.mo``
(read by the app, kept in the repository so an installed host needs no build step).

``python -m host.catalogs update`` (``make translations``) adds new messages to every ``.po``
and compiles them; ``python -m host.catalogs check`` lists what is missing — a message without
a translation, a fuzzy one, a ``.mo`` older than its ``.po``, a text two catalogs translate
differently (the app merges them, so one would silently win) — and exits 1 when anything is.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

from .i18n import BABEL_LOCALES, DOMAIN, catalog_folders

#: The locales that have catalogs: all but the source language.
TRANSLATED = tuple(code for locale, code in BABEL_LOCALES.items() if locale != "en")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
PROJECT = "Canopy"


def _method(path: Path) -> str | None:
    if path.suffix == ".py":
        return "python"
    if path.suffix == ".html" and "templates" in path.parts:
        return "jinja2.ext:babel_extract"
    return None


def owned_files(translations: Path) -> list[Path]:
    """The files whose messages belong to the catalog in ``translations``."""
    package = translations.parent
    others = [folder.parent for folder in catalog_folders() if folder != translations and package in folder.parents]
    return sorted(path for path in package.rglob("*")
                  if path.is_file() and _method(path) and not any(other in path.parents for other in others))


def collect(translations: Path) -> Catalog:
    """The messages the package's files use now (a template catalog, without translations)."""
    template = Catalog(project=PROJECT, domain=DOMAIN)
    for path in owned_files(translations):
        options = {"extensions": "jinja2.ext.i18n", "trimmed": "true"} if _method(path) != "python" else {}
        for line, message, comments, context in extract_from_file(_method(path), path, keywords=KEYWORDS,
                                                                   options=options):
            where = (str(path.relative_to(translations.parent)), line)
            template.add(message, None, [where], auto_comments=comments, context=context)
    return template


def po_path(translations: Path, locale: str) -> Path:
    """The editable catalog of ``locale``."""
    return translations / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read_po(path: Path, locale: str) -> Catalog:
    if not path.exists():
        return Catalog(locale=locale, project=PROJECT, domain=DOMAIN, version="1", fuzzy=False,
                       header_comment=f"# {PROJECT}: texts of {path.parents[3].name} in {locale}.",
                       msgid_bugs_address="-", last_translator="Canopy", language_team="Canopy")
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


def _mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def update(translations: Path) -> None:
    """Add the package's new messages to each locale's ``.po`` (obsolete ones dropped), then compile."""
    template = collect(translations)
    for locale in TRANSLATED:
        path = po_path(translations, locale)
        catalog = _read_po(path, locale)
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, sort_output=True, include_previous=False)
        compile_catalog(translations, locale)


def compile_catalog(translations: Path, locale: str) -> None:
    """Write the ``.mo`` of ``locale`` from its ``.po`` (fuzzy entries left out)."""
    path = po_path(translations, locale)
    path.with_suffix(".mo").write_bytes(_mo_bytes(_read_po(path, locale)))


def _hashable(value):
    """A message's id or string; a plural's forms (a list when read from a ``.mo``) as a tuple."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def problems(translations: Path) -> list[str]:
    """What is wrong with the catalog in ``translations``, in words (empty when nothing)."""
    found = []
    used = {message.id for message in collect(translations) if message.id}
    for locale in TRANSLATED:
        path = po_path(translations, locale)
        name = path.relative_to(translations.parent.parent)
        catalog = _read_po(path, locale)
        for message_id in sorted(used, key=str):
            message = catalog.get(message_id)
            if message is None:
                found.append(f"{name}: {message_id!r} is missing (run make translations)")
            elif not message.string or (isinstance(message.string, tuple) and not all(message.string)):
                found.append(f"{name}: {message_id!r} has no translation")
            elif message.fuzzy:
                found.append(f"{name}: {message_id!r} is marked fuzzy")
        mo = path.with_suffix(".mo")
        if not mo.exists():
            found.append(f"{name}: not compiled (run make translations)")
            continue
        with mo.open("rb") as handle:
            compiled = {_hashable(m.id): _hashable(m.string) for m in read_mo(handle) if m.id}
        wanted = {_hashable(m.id): _hashable(m.string) for m in catalog if m.id and not m.fuzzy and m.string}
        if compiled != wanted:
            found.append(f"{mo.relative_to(translations.parent.parent)} is out of date (run make translations)")
    return found


def conflicts(folders: list[Path]) -> list[str]:
    """Texts that two catalogs translate differently, in words. The app merges every catalog into
    one, so a text has one translation everywhere: the catalogs must agree on it (give texts that
    mean different things different wording, or a context with ``pgettext``)."""
    seen: dict[tuple, dict[str, object]] = {}
    for folder in folders:
        for locale in TRANSLATED:
            for message in _read_po(po_path(folder, locale), locale):
                if message.id and message.string and not message.fuzzy:
                    key = (locale, message.context, _hashable(message.id))
                    seen.setdefault(key, {})[str(folder.parent.name)] = _hashable(message.string)
    return [f"{locale}: {message_id!r} is translated differently by " + ", ".join(f"{name} ({text!r})" for name, text in found.items())
            for (locale, _, message_id), found in sorted(seen.items(), key=str) if len(set(found.values())) > 1]


def main(argv: list[str] | None = None) -> int:
    """``update`` or ``check`` every catalog of the host."""
    command = (argv if argv is not None else sys.argv[1:]) or ["check"]
    if command[0] == "update":
        for folder in catalog_folders():
            update(folder)
        return 0
    if command[0] == "check":
        folders = catalog_folders()
        found = [problem for folder in folders for problem in problems(folder)] + conflicts(folders)
        print("\n".join(found) or "all catalogs complete and compiled")
        return 1 if found else 0
    print("usage: python -m host.catalogs update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
