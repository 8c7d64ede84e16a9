"""The risk centre's staff page, ``/staff/risk``: each rule's settings for a branch, and changing them.

The rules live in :mod:`host.payments.risk.settings`; this module only reads forms and answers.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ... import audit, db
from ...i18n import request_locale
from ...identity.models import Staff, StaffRole
from ...identity.sessions import current_staff, staff_required
from ...problems import Problem, validation_problem, wants_json
from ...storefront.models import Branch
from ..money import CURRENCIES
from . import settings
from .rules import app_rules, rules_for
from .settings import BANK_WIDE, InvalidSetting, SettingRefused

bp = Blueprint("risk", __name__, template_folder="templates")


@bp.record_once
def _collect_rules_at_start(state) -> None:
    # A malformed or duplicated rule stops the app at start, not at the first payment.
    from ...runtime import get_runtime

    rules_for(get_runtime(state.app))


def _branches(staff: Staff) -> list[tuple[str, str]]:
    """The branches ``staff`` may look at, as (code, name): "*" first."""
    locale = request_locale()
    rows = db.session().scalars(select(Branch).order_by(Branch.code)).all()
    names = [(BANK_WIDE, _("Bank-wide"))]
    names += [(row.code, row.name(locale)) for row in rows if settings.may_view(staff, row.code)]
    return names


def _page(staff: Staff, branch_code: str, *, status: int = 200, errors: dict | None = None,
          entered: dict[str, Any] | None = None, saved: str | None = None):
    rules = app_rules()
    effective = settings.effective_settings(db.session(), branch_code, rules)
    html = render_template(
        "risk/settings.html",
        locale=request_locale(), staff=staff, branch=branch_code, branches=_branches(staff),
        settings=effective.values(), editable=settings.may_edit(staff, branch_code),
        params_text={name: json.dumps(setting.params, indent=2, ensure_ascii=False) for name, setting in effective.items()},
        currencies=sorted(CURRENCIES), errors=errors or {},
        top_errors=(errors or {}) if (entered or {}).get("rule") not in effective else {},
        entered=entered or {}, saved=saved,
    )
    return html, status, {"Cache-Control": "no-store"}


@bp.get("/staff/risk")
@staff_required()
def risk_settings():
    """Each rule's settings in effect for ``?branch=`` (default: the staff member's branch, else "*")."""
    staff = current_staff()
    branch_code = request.args.get("branch") or staff.branch_code or BANK_WIDE
    if not settings.may_view(staff, branch_code):
        raise Problem(403, "Not allowed", "You may see the risk settings of your own branch only.")
    if branch_code != BANK_WIDE and (len(branch_code) > 16 or db.session().get(Branch, branch_code) is None):
        raise Problem(404, "Unknown branch", "There is no branch with that code.")
    return _page(staff, branch_code, saved=request.args.get("saved"))


def _change(action: str, apply) -> Any:
    """Run ``apply(session, staff, branch, rule)`` in one write transaction; answer the form."""
    staff = current_staff()
    branch_code, rule = request.form.get("branch", ""), request.form.get("rule", "")
    try:
        settings.check_may_edit(staff, branch_code)
        with db.get_database().transaction(write=True) as session:
            apply(session, staff, branch_code, rule)
    except SettingRefused as exc:
        audit.record(action, outcome=audit.DENIED, actor=staff.username, subject=settings.for_audit(rule),
                     branch=settings.for_audit(branch_code, 16))
        raise Problem(403, "Not allowed", str(exc)) from None
    except InvalidSetting as exc:
        audit.record(action, outcome=audit.FAILURE, actor=staff.username, subject=settings.for_audit(rule),
                     branch=settings.for_audit(branch_code, 16), detail={"fields": sorted(exc.errors)})
        if wants_json() or not settings.may_view(staff, branch_code) or "branch" in exc.errors:
            raise validation_problem(exc.errors, f"The settings were not saved: {exc}.") from None
        entered = {"rule": rule, "enabled": request.form.get("enabled"), "params": request.form.get("params", "")}
        return _page(staff, branch_code, status=422, errors=exc.errors, entered=entered)
    except IntegrityError:
        raise Problem(409, "Changed meanwhile", "Someone changed this setting at the same time; reload and try again.") from None
    return redirect(url_for("risk.risk_settings", branch=branch_code, saved=rule), 303)


@bp.post("/staff/risk")
@staff_required(StaffRole.HQ_ADMIN, StaffRole.BRANCH_ADMIN)
def change_setting():
    """Save ``enabled`` ("true"/"false") and ``params`` (a JSON object) of ``rule`` for ``branch``."""

    def apply(session, staff, branch_code, rule):
        enabled, params = settings.read_form(request.form)
        settings.update_setting(session, staff, branch_code, rule, enabled, params)

    return _change("risk.setting_changed", apply)


@bp.post("/staff/risk/reset")
@staff_required(StaffRole.HQ_ADMIN, StaffRole.BRANCH_ADMIN)
def reset_setting():
    """Drop ``branch``'s own setting of ``rule``: the bank-wide one (for "*": the defaults) applies again."""
    return _change("risk.setting_reset", lambda session, staff, branch_code, rule:
                   settings.reset_setting(session, staff, branch_code, rule))
