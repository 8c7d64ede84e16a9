"""Per-branch risk rule settings: what applies where, and who may change it.

A rule's settings for a branch are the row for that branch, else the bank-wide row
(``branch_code`` "*"), else the rule's defaults. Stored params are laid over the defaults key
by key, so a param a newer rule adds has its default until staff set it.

``hq_admin`` may change "*" and every branch; ``branch_admin`` only their own branch; no one
else may change anything. Every change is written to the audit log in the same transaction
as the change itself, so there is never a change without its audit entry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from marshmallow import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ... import audit
from ...db import utcnow
from ...identity.models import Staff, StaffRole
from ...storefront.models import Branch
from .models import RiskSetting
from .params import flatten
from .rules import RiskRule, app_rules

#: The branch code of the bank-wide settings.
BANK_WIDE = "*"
#: The longest params text the staff form accepts (characters).
MAX_PARAMS_TEXT = 20_000

SOURCE_BRANCH, SOURCE_BANK, SOURCE_DEFAULT = "branch", "bank", "default"
_TABLE = RiskSetting.__table__
#: Read on every payment: one SQL statement, no ORM objects.
_SETTINGS = select(_TABLE.c.branch_code, _TABLE.c.rule, _TABLE.c.enabled, _TABLE.c.params, _TABLE.c.updated_by,
                   _TABLE.c.updated_at).where(_TABLE.c.branch_code.in_(bindparam("branches", expanding=True)))


# -- errors ---------------------------------------------------------------------------------


class SettingRefused(Exception):
    """This member of staff may not change settings of this branch."""


class InvalidSetting(ValueError):
    """The new settings are not valid; ``errors`` maps each field (``params.limits.XYZ``) to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(texts)}" for name, texts in errors.items()))


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveSetting:
    """What one rule does for one branch, and where that comes from."""

    rule: str
    description: str
    enabled: bool
    params: dict[str, Any]
    source: str  #: "branch" (its own row), "bank" (the "*" row) or "default" (the rule's defaults)
    updated_by: str | None = None
    updated_at: datetime | None = None


def effective_settings(
    session: Session, branch_code: str | None, rules: Mapping[str, RiskRule] | None = None
) -> dict[str, EffectiveSetting]:
    """The settings of every rule for ``branch_code`` (None or "*": the bank-wide ones), by rule name."""
    rules = app_rules() if rules is None else rules
    branches = [BANK_WIDE] if branch_code in (None, BANK_WIDE) else [branch_code, BANK_WIDE]
    rows = session.connection().execute(_SETTINGS, {"branches": branches}).all()
    found = {(row.branch_code, row.rule): row for row in rows}
    settings: dict[str, EffectiveSetting] = {}
    for name, rule in rules.items():
        row = next((found[(code, name)] for code in branches if (code, name) in found), None)
        if row is None:
            settings[name] = EffectiveSetting(name, rule.description, True, dict(rule.defaults), SOURCE_DEFAULT)
            continue
        source = SOURCE_BANK if row.branch_code == BANK_WIDE else SOURCE_BRANCH
        params = {**rule.defaults, **(row.params or {})}
        settings[name] = EffectiveSetting(name, rule.description, bool(row.enabled), params, source,
                                          row.updated_by, row.updated_at)
    return settings


# -- who may change what --------------------------------------------------------------------


def may_edit(staff: Staff, branch_code: str) -> bool:
    """Whether ``staff`` may change the settings of ``branch_code`` ("*" = bank-wide)."""
    if staff.role == StaffRole.HQ_ADMIN:
        return True
    return staff.role == StaffRole.BRANCH_ADMIN and staff.branch_code is not None and staff.branch_code == branch_code


def may_view(staff: Staff, branch_code: str) -> bool:
    """Whether ``staff`` may see the settings of ``branch_code``: head office every branch,
    branch staff their own branch (and the bank-wide settings it inherits)."""
    if staff.role in (StaffRole.HQ_ADMIN, StaffRole.HQ_REVIEWER):
        return True
    return staff.branch_code is not None and branch_code in (staff.branch_code, BANK_WIDE)


# -- changing -------------------------------------------------------------------------------


def parse_params_text(text: Any) -> dict[str, Any]:
    """The params JSON object a form posted; :class:`InvalidSetting` naming ``params`` otherwise."""
    if not isinstance(text, str):
        raise InvalidSetting({"params": ["must be a JSON object"]})
    if len(text) > MAX_PARAMS_TEXT:
        raise InvalidSetting({"params": [f"must be at most {MAX_PARAMS_TEXT} characters"]})
    try:
        value = json.loads(text or "{}")
    except (ValueError, RecursionError):
        raise InvalidSetting({"params": ["is not valid JSON"]}) from None
    if not isinstance(value, dict):
        raise InvalidSetting({"params": ["must be a JSON object, e.g. {\"limits\": {\"CNY\": 500000}}"]})
    return value


def validate_params(rule: RiskRule, params: Any) -> dict[str, Any]:
    """``params`` checked by the rule's schema and laid over its defaults; raise :class:`InvalidSetting`."""
    if not isinstance(params, dict):
        raise InvalidSetting({"params": ["must be an object"]})
    if rule.schema is None:
        if params:
            raise InvalidSetting({"params": [f"rule {rule.name} has no params to change"]})
        return dict(rule.defaults)
    merged = {**rule.defaults, **params}
    try:
        loaded = rule.schema().load(merged)
    except ValidationError as exc:
        raise InvalidSetting(flatten(exc.messages, "params")) from None
    return json.loads(json.dumps(loaded))  # exactly what the JSON column will give back


def check_may_edit(staff: Staff, branch_code: Any) -> None:
    """Raise :class:`SettingRefused` unless ``staff`` may change the settings of ``branch_code``."""
    if not isinstance(branch_code, str) or not may_edit(staff, branch_code):
        shown = for_audit(branch_code, 16) or "that branch"
        raise SettingRefused(f"{staff.username} may not change the risk settings of {shown}.")


def _check_request(session: Session, staff: Staff, branch_code: Any, rule_name: Any,
                   rules: Mapping[str, RiskRule]) -> RiskRule:
    if not isinstance(branch_code, str) or not branch_code:
        raise InvalidSetting({"branch": ["is required"]})
    check_may_edit(staff, branch_code)
    if branch_code != BANK_WIDE and (len(branch_code) > 16 or session.get(Branch, branch_code) is None):
        raise InvalidSetting({"branch": [f"unknown branch {branch_code[:16]!r}"]})
    if not isinstance(rule_name, str) or rule_name not in rules:
        raise InvalidSetting({"rule": [f"unknown rule; known: {', '.join(rules)}"]})
    return rules[rule_name]


def update_setting(
    session: Session,
    staff: Staff,
    branch_code: str,
    rule: str,
    enabled: bool,
    params: Mapping[str, Any],
    rules: Mapping[str, RiskRule] | None = None,
) -> EffectiveSetting:
    """Set whether ``rule`` runs for ``branch_code`` ("*" = bank-wide) and its params, in ``session``
    (the caller commits), with its audit entry; return the setting now in effect.

    Raises :class:`SettingRefused` when ``staff`` may not change that branch, and
    :class:`InvalidSetting` (nothing changed) when the branch, rule, ``enabled`` or a param is wrong.
    """
    rules = app_rules() if rules is None else rules
    found = _check_request(session, staff, branch_code, rule, rules)
    if not isinstance(enabled, bool):
        raise InvalidSetting({"enabled": ["must be true or false"]})
    clean = validate_params(found, dict(params) if isinstance(params, Mapping) else params)
    before = effective_settings(session, branch_code, {rule: found})[rule]
    row = session.scalar(
        select(RiskSetting).where(RiskSetting.branch_code == branch_code, RiskSetting.rule == rule).with_for_update()
    )
    if row is None:
        row = RiskSetting(branch_code=branch_code, rule=rule)
        session.add(row)
    row.enabled, row.params, row.updated_by, row.updated_at = enabled, clean, staff.username, utcnow()
    session.flush()
    _audit(session, "risk.setting_changed", staff, branch_code, rule, before, {"enabled": enabled, "params": clean})
    return effective_settings(session, branch_code, {rule: found})[rule]


def reset_setting(
    session: Session, staff: Staff, branch_code: str, rule: str, rules: Mapping[str, RiskRule] | None = None
) -> EffectiveSetting:
    """Remove ``branch_code``'s own setting of ``rule`` so the bank-wide one (or, for "*", the
    rule's defaults) applies again; audited like a change. Same errors as :func:`update_setting`."""
    rules = app_rules() if rules is None else rules
    found = _check_request(session, staff, branch_code, rule, rules)
    before = effective_settings(session, branch_code, {rule: found})[rule]
    row = session.scalar(
        select(RiskSetting).where(RiskSetting.branch_code == branch_code, RiskSetting.rule == rule).with_for_update()
    )
    if row is not None:
        session.delete(row)
        session.flush()
    after = effective_settings(session, branch_code, {rule: found})[rule]
    _audit(session, "risk.setting_reset", staff, branch_code, rule, before,
           {"enabled": after.enabled, "params": after.params, "source": after.source})
    return after


def _audit(session: Session, action: str, staff: Staff, branch_code: str, rule: str,
           before: EffectiveSetting, new: dict[str, Any]) -> None:
    """The audit entry of a change, in the change's own transaction."""
    detail = {"rule": rule, "old": {"enabled": before.enabled, "params": before.params, "source": before.source},
              "new": new}
    audit.record(action, outcome=audit.SUCCESS, actor=staff.username, subject=rule, branch=branch_code, detail=detail,
                 session=session)


def read_form(form: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """``enabled`` ("true" or "false") and ``params`` (a JSON object) of the staff form;
    :class:`InvalidSetting` naming every wrong field otherwise."""
    errors: dict[str, list[str]] = {}
    enabled = form.get("enabled")
    if enabled not in ("true", "false"):
        errors["enabled"] = ["must be true or false"]
    try:
        params = parse_params_text(form.get("params", "{}"))
    except InvalidSetting as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidSetting(errors)
    return enabled == "true", params


_SAFE_TEXT = re.compile(r"[^\x20-\x7e]")


def for_audit(value: Any, size: int = 64) -> str | None:
    """A value from a refused request, cut and cleaned for the audit log."""
    return None if not isinstance(value, str) else _SAFE_TEXT.sub("?", value[:size])
