"""Who gets which version: the gray rule, a customer's stable bucket, and the choice.

A gray version goes to the customers its :class:`GrayRule` selects — a branch's customers, a
customer tag, named testers, or a percentage of everyone — and every other customer gets the
stable version. The percentage is **stable per customer**: a customer's bucket is a number in
[0, 100) derived from a hash of the plugin, the gray version and the customer, so a customer
inside 5 % stays inside when the rule widens to 20 %, and the same customer gets the same
answer in every process on every request. Anonymous visitors have no bucket and are selected
only by the storefront's branch.

Pure functions: nothing here reads the database (the customer's tags are asked for only when
a rule names tags).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..storefront.models import BRANCH_CODE, CUSTOMER_ID, TAG

#: The most entries one list of a rule may have.
MAX_ENTRIES = 200
#: Buckets: a percentage is matched to 1/100 of a percent.
BUCKETS = 10_000



class RuleInvalid(ValueError):
    """A gray rule that cannot be used; ``problems`` maps each field to what is wrong."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{name}: {', '.join(texts)}" for name, texts in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class GrayRule:
    """The customers a gray version goes to: anyone matching any of the four."""

    branches: frozenset[str] = frozenset()  #: customers of these branches (home branch)
    tags: frozenset[str] = frozenset()  #: customers holding any of these tags
    testers: frozenset[str] = frozenset()  #: these customers (ids)
    percent: float = 0.0  #: this share of all customers, stable per customer

    def as_json(self) -> dict[str, Any]:
        """The rule as stored and answered (lists sorted)."""
        return {"branches": sorted(self.branches), "tags": sorted(self.tags), "testers": sorted(self.testers),
                "percent": self.percent}

    def covers(self, other: "GrayRule") -> bool:
        """Whether everyone ``other`` selects is selected by this rule too (a widening)."""
        return (self.branches >= other.branches and self.tags >= other.tags and self.testers >= other.testers
                and self.percent >= other.percent)

    @property
    def empty(self) -> bool:
        """Whether the rule selects nobody."""
        return not (self.branches or self.tags or self.testers or self.percent)


def parse_rule(data: object) -> GrayRule:
    """Read a rule from JSON-shaped ``data``; :class:`RuleInvalid` naming every problem."""
    if not isinstance(data, Mapping):
        raise RuleInvalid({"rule": ["must be an object with branches, tags, testers and percent"]})
    problems: dict[str, list[str]] = {}
    unknown = sorted(str(key)[:32] for key in data if key not in ("branches", "tags", "testers", "percent"))
    if unknown:
        problems["rule"] = [f"unknown fields: {', '.join(unknown)}"]
    lists = {}
    for name, pattern, shape in (("branches", BRANCH_CODE, "branch codes (A-Z, 0-9, -)"),
                                 ("tags", TAG, "tags (a-z, 0-9, -)"),
                                 ("testers", CUSTOMER_ID, "customer ids (32 hexadecimal digits)")):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            problems[name] = [f"must be a list of {shape}"]
            continue
        if len(value) > MAX_ENTRIES:
            problems[name] = [f"must have at most {MAX_ENTRIES} entries"]
            continue
        bad = [item[:40] for item in value if not pattern.match(item)]
        if bad:
            problems[name] = [f"not {shape}: {', '.join(map(repr, bad[:5]))}"]
            continue
        lists[name] = frozenset(value)
    percent = data.get("percent", 0)
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        problems["percent"] = ["must be a number from 0 to 100"]
    elif round(percent, 2) != percent:
        problems["percent"] = ["may have at most two decimals"]
    if problems:
        raise RuleInvalid(problems)
    return GrayRule(percent=float(percent), **lists)


def rule_from_json(data: Mapping[str, Any] | None) -> GrayRule:
    """A stored rule (already checked when it was written)."""
    if not data:
        return GrayRule()
    return GrayRule(frozenset(data.get("branches", ())), frozenset(data.get("tags", ())),
                    frozenset(data.get("testers", ())), float(data.get("percent", 0)))


def bucket(plugin_id: str, version: str, customer_id: str) -> int:
    """The customer's bucket for this gray version, 0 to ``BUCKETS - 1`` (the same everywhere)."""
    digest = hashlib.sha256(f"{plugin_id}\x00{version}\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass
class Audience:
    """Who a request is for: the customer (or nobody), their home branch — or the storefront's,
    for a visitor nobody knows — and their tags. ``home_of`` and ``tags_of`` are asked once
    each, and only when a gray rule names branches or tags: a request that meets no gray
    release reads nothing about its customer."""

    customer_id: str | None
    branch: str | None
    tags_of: Callable[[str], Iterable[str]] | None = None
    home_of: Callable[[str], str | None] | None = None
    _tags: frozenset[str] | None = field(default=None, repr=False)
    _home: str | None = field(default=None, repr=False)

    def home(self) -> str | None:
        """The customer's home branch (``branch`` when it is not known or there is no customer)."""
        if self._home is None:
            found = self.home_of(self.customer_id) if self.home_of and self.customer_id else None
            self._home = found or self.branch
        return self._home

    def tags(self) -> frozenset[str]:
        """The customer's tags (none for an anonymous visitor)."""
        if self._tags is None:
            found = self.tags_of(self.customer_id) if self.tags_of and self.customer_id else ()
            self._tags = frozenset(found)
        return self._tags


#: A request for nobody in particular: only the stable version.
NOBODY = Audience(None, None)


def selected(rule: GrayRule, plugin_id: str, version: str, audience: Audience) -> bool:
    """Whether ``rule`` gives ``audience`` the gray ``version``."""
    if rule.branches and audience.home() in rule.branches:
        return True
    if audience.customer_id is None:
        return False
    if audience.customer_id in rule.testers:
        return True
    if rule.percent and bucket(plugin_id, version, audience.customer_id) < round(rule.percent * BUCKETS / 100):
        return True
    return bool(rule.tags) and not rule.tags.isdisjoint(audience.tags())


def choose(plugin_id: str, stable: str | None, gray: str | None, rule: GrayRule, audience: Audience) -> str | None:
    """The version ``audience`` gets: ``gray`` when the rule selects them, else ``stable``."""
    if gray is not None and selected(rule, plugin_id, gray, audience):
        return gray
    return stable
