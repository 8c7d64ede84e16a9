"""The risk centre: every payment attempt is judged by rules before money moves.

Rules are host-side hooks (``canopy_risk_rules``); the five defaults — single-payment limit,
daily limit, velocity, new device, blocked merchant — are a default plugin
(:mod:`host.payments.risk.default_rules`). Each verdict is allow, challenge or deny with a
reason, recorded in ``risk_decisions``; staff set rules per branch at ``/staff/risk``.
See docs/risk.md.

The confirmation flow calls :func:`assess` before posting a payment and
:func:`remember_device` once the payment succeeded.
"""

from __future__ import annotations

from .assessment import assess, remember_device
from .rules import ALLOW, CHALLENGE, DENY, OVERALL, PaymentAttempt, RiskRule, Verdict, rules_for

__all__ = [
    "ALLOW", "CHALLENGE", "DENY", "OVERALL", "PaymentAttempt", "RiskRule", "Verdict", "assess", "remember_device",
    "rules_for",
]
