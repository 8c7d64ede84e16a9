"""What a risk rule is, what it judges and what it answers; collecting the rules of an app.

Rules come from the ``canopy_risk_rules`` host hook (see ``host/runtime/host_hookspecs.py``):
the host's five defaults are a default plugin (:mod:`host.payments.risk.default_rules`); the
bank's own trusted extensions add more the same way. Mini-programs cannot: the runtime refuses
a mini-program that implements a host-only hook.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from marshmallow import Schema

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ...runtime.services import PluginRuntime

ALLOW, CHALLENGE, DENY = "allow", "challenge", "deny"
#: Decisions from the mildest to the strictest.
DECISIONS = (ALLOW, CHALLENGE, DENY)
#: The rule name of the combined verdict of one assessment.
OVERALL = "overall"

_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class PaymentAttempt:
    """One attempt by a customer to confirm a payment intent, as the risk centre judges it."""

    intent_id: str
    customer_id: str
    plugin_id: str  #: the mini-program asking to be paid
    merchant: str  #: the owner of the merchant settlement account, e.g. "partner:CITYPOWER"
    branch_code: str | None  #: the customer's home branch (settings: this branch, else "*")
    amount: int  #: minor units (fen for CNY), > 0
    currency: str  #: ISO 4217, e.g. "CNY"
    device: str  #: a hex digest of the device's signals, computed by the host
    at: datetime  #: aware UTC


@dataclass(frozen=True)
class Verdict:
    """A rule's (or the whole assessment's) answer: ``decision`` with a ``reason`` people can read.

    ``detail`` holds the figures behind it (limit, total, count) for the record; never secrets.
    """

    decision: str  #: "allow" | "challenge" | "deny"
    rule: str  #: the deciding rule's name, or "overall"
    reason: str  #: short plain words a customer or member of staff can read
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False)


def strictness(decision: str) -> int:
    """How strict ``decision`` is: allow 0, challenge 1, deny 2."""
    return DECISIONS.index(decision)


@dataclass(frozen=True)
class RiskRule:
    """A risk rule contributed through ``canopy_risk_rules``.

    ``check(session, attempt, params)`` returns a :class:`Verdict`, or None when it has
    nothing against the attempt; it reads with ``session`` and never writes or commits.
    ``params`` are ``defaults`` overlaid by the settings staff saved for the branch.
    ``schema`` (a marshmallow schema class) validates the params staff save; without one,
    staff can switch the rule on and off but not change its params.
    """

    name: str
    description: str
    defaults: Mapping[str, Any]
    check: Callable[["Session", PaymentAttempt, Mapping[str, Any]], Verdict | None]
    schema: type[Schema] | None = None


class RuleProblem(RuntimeError):
    """A ``canopy_risk_rules`` implementation returned something that is not a usable rule."""


def collect(results: Iterable[Any]) -> dict[str, RiskRule]:
    """Check the rules from every ``canopy_risk_rules`` result; return them by name, sorted.

    Raises :class:`RuleProblem` naming the rule when one is malformed or a name is taken twice.
    """
    rules: dict[str, RiskRule] = {}
    for result in results:
        if result is None:
            continue
        if not isinstance(result, (list, tuple)):
            raise RuleProblem(f"canopy_risk_rules must return a list of rules, not {type(result).__name__}")
        for rule in result:
            name = getattr(rule, "name", None)
            if not isinstance(name, str) or not _RULE_NAME.match(name) or name == OVERALL:
                raise RuleProblem(f"risk rule name {name!r} must match {_RULE_NAME.pattern} and not be {OVERALL!r}")
            if name in rules:
                raise RuleProblem(f"risk rule {name!r} is contributed twice")
            if not isinstance(getattr(rule, "description", None), str):
                raise RuleProblem(f"risk rule {name!r} needs a description (str)")
            if not isinstance(getattr(rule, "defaults", None), Mapping):
                raise RuleProblem(f"risk rule {name!r} needs defaults (a dict of its params)")
            if not callable(getattr(rule, "check", None)):
                raise RuleProblem(f"risk rule {name!r} needs check(session, attempt, params)")
            schema = getattr(rule, "schema", None)
            if schema is not None and not (isinstance(schema, type) and issubclass(schema, Schema)):
                raise RuleProblem(f"risk rule {name!r}: schema must be a marshmallow Schema class")
            rules[name] = rule
    return dict(sorted(rules.items()))


#: The rules of each runtime, collected once: registration is closed after start, so they never change.
_BY_RUNTIME: "weakref.WeakKeyDictionary[PluginRuntime, dict[str, RiskRule]]" = weakref.WeakKeyDictionary()


def rules_for(runtime: "PluginRuntime") -> dict[str, RiskRule]:
    """The risk rules registered on ``runtime``'s plugin manager, by name (collected once)."""
    rules = _BY_RUNTIME.get(runtime)
    if rules is None:
        rules = _BY_RUNTIME[runtime] = collect(runtime.pm.hook.canopy_risk_rules())
    return rules


def app_rules() -> dict[str, RiskRule]:
    """The risk rules of the current app."""
    from ...runtime import get_runtime  # imported here: the runtime imports the default rules

    return rules_for(get_runtime())
