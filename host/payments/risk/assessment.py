"""Judging one payment attempt with every enabled rule, and remembering devices paid from."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime
from typing import Mapping

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .models import KnownDevice, RiskDecision
from .rules import ALLOW, DECISIONS, DENY, OVERALL, PaymentAttempt, RiskRule, Verdict, app_rules, strictness
from .settings import effective_settings

log = logging.getLogger("canopy.risk")

_REASON_SIZE = 200  # the risk_decisions.reason column
#: Said when a rule fails: the attempt is denied (fail closed), and the failure logged.
RULE_FAILED = "The risk check could not be completed; try again later."
ALL_CLEAR = "No risk rule objected."
_DECISIONS = insert(RiskDecision.__table__)


def _remember(dialect) -> object:
    statement = dialect.insert(KnownDevice.__table__)
    return statement.on_conflict_do_update(index_elements=["customer_id", "device"],
                                           set_={"last_seen": statement.excluded.last_seen})


_REMEMBER = {"postgresql": _remember(postgresql), "sqlite": _remember(sqlite)}


def _judge(session: Session, rule: RiskRule, attempt: PaymentAttempt, params: Mapping) -> Verdict:
    """One rule's verdict, named after the rule; a rule that raises or answers junk denies."""
    try:
        verdict = rule.check(session, attempt, params)
    except SQLAlchemyError:
        raise  # the transaction is broken; the caller must roll back
    except Exception:
        log.exception("risk rule %s failed; the attempt is denied", rule.name)
        return Verdict(DENY, rule.name, RULE_FAILED, {"failed": True})
    if verdict is None:
        return Verdict(ALLOW, rule.name, "")
    if not isinstance(verdict, Verdict) or verdict.decision not in DECISIONS or not isinstance(verdict.reason, str):
        log.error("risk rule %s answered %r, not a Verdict; the attempt is denied", rule.name, type(verdict).__name__)
        return Verdict(DENY, rule.name, RULE_FAILED, {"failed": True})
    detail = verdict.detail
    try:
        json.dumps(dict(detail))
    except (TypeError, ValueError):
        log.error("risk rule %s gave a detail that is not JSON; it is not recorded", rule.name)
        detail = {"detail_dropped": True}
    return dataclasses.replace(verdict, rule=rule.name, reason=verdict.reason[:_REASON_SIZE], detail=detail)


def _row(attempt: PaymentAttempt, verdict: Verdict, rule: str, detail: dict) -> dict:
    return {"intent_id": attempt.intent_id, "customer_id": attempt.customer_id, "branch_code": attempt.branch_code,
            "rule": rule, "verdict": verdict.decision, "reason": verdict.reason[:_REASON_SIZE], "detail": detail,
            "at": attempt.at}


def assess(session: Session, attempt: PaymentAttempt, rules: Mapping[str, RiskRule] | None = None) -> Verdict:
    """Judge ``attempt`` with every enabled rule and return the strictest verdict.

    Settings are those of ``attempt.branch_code``, else the bank-wide ("*") ones, else each
    rule's defaults. ``rules`` (by name) defaults to the app's ``canopy_risk_rules``.
    Records, in ``session`` (the caller's transaction; nothing is committed here), one
    :class:`RiskDecision` row per rule that did not simply allow and one "overall" row. The
    strictest decision wins (deny > challenge > allow); among equals, the first rule by name.
    The returned verdict names the deciding rule and its reason, or is "overall" when all
    allow. A rule that raises or answers something other than a :class:`Verdict` denies
    (fail closed) and is logged.
    """
    rules = app_rules() if rules is None else rules
    settings = effective_settings(session, attempt.branch_code, rules)
    verdicts: list[Verdict] = []
    rows: list[dict] = []
    for name, rule in sorted(rules.items()):
        setting = settings[name]
        if not setting.enabled:
            continue
        verdict = _judge(session, rule, attempt, setting.params)
        verdicts.append(verdict)
        if verdict.decision != ALLOW:
            rows.append(_row(attempt, verdict, name, {**verdict.detail, "source": setting.source}))
    deciding = max(verdicts, key=lambda v: strictness(v.decision), default=None)
    if deciding is None or deciding.decision == ALLOW:
        overall = Verdict(ALLOW, OVERALL, ALL_CLEAR)
    else:
        overall = Verdict(deciding.decision, deciding.rule, deciding.reason, deciding.detail)
    rows.append(_row(attempt, overall, OVERALL, {
        "rule": overall.rule,
        "amount": attempt.amount,
        "currency": attempt.currency,
        "plugin_id": attempt.plugin_id,
        "merchant": attempt.merchant,
        "rules": [v.rule for v in verdicts],
    }))
    session.connection().execute(_DECISIONS, rows)
    return overall


def remember_device(session: Session, customer_id: str, device: str, at: datetime) -> None:
    """Record the device ``customer_id`` has now paid from, or refresh its ``last_seen``.

    One ``INSERT … ON CONFLICT DO UPDATE``, so two payments at once from a new device both succeed.
    Runs in ``session`` (the caller's transaction; nothing is committed here).
    """
    connection = session.connection()
    statement = _REMEMBER[connection.dialect.name]
    connection.execute(statement, {"customer_id": customer_id, "device": device, "first_seen": at, "last_seen": at})
