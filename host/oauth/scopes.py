"""The scope catalog: every scope a plugin may ask for, in plain words.

Definitions come from the ``canopy_scope_definitions`` host hook; the host's own
set is the default plugin :mod:`host.oauth.default_scopes`, and the bank's trusted
extensions may add more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

SENSITIVITIES = ("low", "medium", "high")
_NAME = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*:[a-z][a-z0-9_]*\Z")


class ScopeCatalogError(ValueError):
    """A scope definition is malformed or defined twice."""


@dataclass(frozen=True, slots=True)
class ScopeDefinition:
    """One scope: its name, what it lets a plugin do, and whether a customer must consent."""

    name: str
    description: Mapping[str, str]
    sensitivity: str
    needs_consent: bool

    def describe(self, locale: str) -> str:
        """The plain-words description in ``locale``."""
        return self.description["en" if locale.startswith("en") else "zh"]


class ScopeCatalog:
    """All known scopes by name."""

    def __init__(self, definitions: Iterable[ScopeDefinition]) -> None:
        self._by_name: dict[str, ScopeDefinition] = {}
        for definition in definitions:
            if definition.name in self._by_name:
                raise ScopeCatalogError(f"scope {definition.name!r} is defined twice")
            self._by_name[definition.name] = definition

    @classmethod
    def from_hook_results(cls, results: Iterable[Iterable[Mapping[str, Any]]]) -> "ScopeCatalog":
        """Build the catalog from ``canopy_scope_definitions`` results, checking each definition."""
        return cls(_definition(item) for result in results for item in (result or []))

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> ScopeDefinition:
        return self._by_name[name]

    def __iter__(self):
        return iter(sorted(self._by_name.values(), key=lambda d: d.name))

    def needs_consent(self, name: str) -> bool:
        """Whether a customer must consent before a plugin may use ``name``."""
        return self._by_name[name].needs_consent

    def unknown(self, names: Iterable[str]) -> list[str]:
        """Return the names that are not in the catalog, in their given order."""
        return [name for name in names if name not in self._by_name]


def _definition(item: Mapping[str, Any]) -> ScopeDefinition:
    try:
        name = item["name"]
        description = dict(item["description"])
        sensitivity = item["sensitivity"]
        needs_consent = item["needs_consent"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ScopeCatalogError(f"malformed scope definition {item!r}: {exc!r}") from None
    if not isinstance(name, str) or not _NAME.match(name):
        raise ScopeCatalogError(f"scope name {name!r} must look like 'resource:action'")
    if set(description) != {"zh", "en"} or not all(isinstance(v, str) and v for v in description.values()):
        raise ScopeCatalogError(f"scope {name!r} needs a description in zh and en")
    if sensitivity not in SENSITIVITIES:
        raise ScopeCatalogError(f"scope {name!r} sensitivity must be one of {SENSITIVITIES}")
    if not isinstance(needs_consent, bool):
        raise ScopeCatalogError(f"scope {name!r} needs_consent must be true or false")
    return ScopeDefinition(name, description, sensitivity, needs_consent)
