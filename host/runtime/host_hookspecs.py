"""Hooks for the bank's own trusted, in-process extensions of the host.

These live on the same plugin manager as the mini-programs' hooks; the host's
defaults are registered as plugins that implement them (see ``host.defaults``).
"""

from __future__ import annotations

from canopy_sdk.markers import hookspec


@hookspec
def canopy_scope_definitions() -> list[dict]:
    """Return scope definitions to add to the scope catalog.

    Called once when the app starts. Each definition is a dict with ``name``
    (``resource:action``), ``description`` (``{"zh": ..., "en": ...}``),
    ``sensitivity`` (``low`` | ``medium`` | ``high``) and ``needs_consent`` (bool).
    Results of all implementations are combined; a name defined twice stops the start.
    """


@hookspec
def canopy_risk_rules() -> list:
    """Return risk rules for the risk centre to run on every payment attempt.

    Called once per app, the first time the risk centre needs its rules. Each rule is a
    :class:`host.payments.risk.RiskRule` (or has its attributes): ``name``
    (``[a-z][a-z0-9_]*``, unique), ``description``, ``defaults`` (a dict of its params),
    ``check(session, attempt, params)`` returning a ``Verdict`` or None (nothing against the
    attempt), and optionally ``schema``, a marshmallow schema of the params staff may set.
    Results of all implementations are combined; a name contributed twice is an error.
    Only the host's trusted extensions implement this: mini-programs may not.
    """


@hookspec(firstresult=True)
def canopy_payment_rail():
    """Return the core-banking rail that customers' money comes from (the first answer wins).

    Called when money enters the ledger (a top-up). The answer has a ``name`` and
    ``debit(customer_id, amount, currency, reference) -> str`` (see
    :class:`host.payments.rails.PaymentRail`). The host's default plugin answers last with the
    simulated rail; the bank's extension registered beside it answers first. Only the host's
    trusted extensions implement this: mini-programs may not.
    """
