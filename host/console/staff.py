"""The staff console, ``/console``: storefronts (banners, feed, grid order, installs) for
branches, and for head office also the bank-wide slots, operating rights and branches.

Views only read forms and answer. Who may do what is decided by
:mod:`host.storefront.rights` inside the storefront services the views call, so the console
and any other caller meet the same check; a page shows a form only when that check would pass.
Every change runs in one write transaction with its audit entry; a refusal (403) and invalid
input (422, every wrong field named, the form shown again as typed) change nothing and are
audited too.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from .. import db
from ..i18n import pick, request_locale
from ..identity.sessions import current_staff, staff_required
from ..problems import Problem
from ..runtime import get_runtime
from ..runtime.models import PluginVersion
from ..storefront import installs, rights, slots
from ..storefront.errors import InvalidChange, NotAllowed, NotFound
from ..storefront.models import Branch, OperatingRight, SlotKind, StorefrontSlot
from ..storefront.rights import Action
from ..storefront.branches import create_branch, rename_branch
from ..storefront.services import UnknownBranch, get_branch
from . import tags
from .pages import allowed, branch_code, change, form_fields, page, refuse, require_view

bp = Blueprint("console", __name__, template_folder="templates")
bp.register_blueprint(tags.bp)  # customer tags: /console/tags, /console/branches/<code>/tags

#: The scope of the bank-wide slots in forms and addresses.
BANK_WIDE = "*"


# -- helpers ---------------------------------------------------------------------------------


def _scope(value: Any) -> str | None:
    """The branch code a form's ``scope`` names (None: bank-wide); 404 for anything else."""
    if value == BANK_WIDE:
        return None
    try:
        return get_branch(db.session(), value).code
    except UnknownBranch:
        raise Problem(404, _("Unknown branch"), _("There is no branch with that code.")) from None


# -- overview --------------------------------------------------------------------------------


@bp.get("/console")
@staff_required()
def index():
    """Where a member of staff starts: their branch's storefront, or head office's overview."""
    staff = current_staff()
    if staff.role in rights.BRANCH_ROLE_ACTIONS and staff.branch_code:
        return redirect(url_for("console.storefront", code=staff.branch_code), 303)
    session = db.session()
    branches = session.scalars(select(Branch).order_by(Branch.code)).all()
    granted = {}
    for row in session.scalars(select(OperatingRight)):
        granted.setdefault(row.branch_code, set()).add(row.right)
    return page("index.html", branches=branches, granted=granted, rights_list=rights.RIGHTS,
                 may_bank=allowed(staff, Action.BANK_SLOTS, None), may_rights=allowed(staff, Action.RIGHTS, None),
                 may_branches=allowed(staff, Action.BRANCHES, None))


# -- a storefront: slots, grid, installs -------------------------------------------------------


def _storefront_page(code: str | None, *, status: int = 200, errors: dict | None = None, form: str | None = None):
    staff = current_staff()
    require_view(staff, code)
    session = db.session()
    locale = request_locale()
    branch = get_branch(session, code) if code is not None else None
    granted = rights.granted_rights(session, code)
    own = slots.slots_of(session, code)
    values: dict[str, Any] = {
        "branch": branch, "scope": code or BANK_WIDE, "granted": granted, "rights_list": rights.RIGHTS,
        "banners": [slot for slot in own if slot.kind == SlotKind.BANNER],
        "feed": [slot for slot in own if slot.kind == SlotKind.FEED],
        "errors": errors or {}, "failed_form": form,
        "may": {kind: allowed(staff, slots.slot_action(kind, code), code, granted) for kind in SlotKind.ALL},
    }
    if code is not None:
        runtime = get_runtime()
        loaded = runtime.plugins
        rows = installs.installed(session, code)
        # Staff see why an installed mini-program is missing from the storefront (e.g. disabled
        # by the sandbox for faults, with the reason the registry holds).
        versions = {(v.plugin_id, v.version): v for v in session.scalars(
            select(PluginVersion).where(PluginVersion.plugin_id.in_({row.plugin_id for row in rows})))} if rows else {}
        values["installed"] = [
            {"row": row, "name": pick(locale, loaded[row.plugin_id].manifest.name)
             if row.plugin_id in loaded and loaded[row.plugin_id].manifest else row.plugin_id,
             "version": versions.get((row.plugin_id, row.version))}
            for row in rows
        ]
        values["candidates"] = [{"id": c.plugin_id, "name": pick(locale, c.plugin.manifest.name), "version": c.version.version,
                                 "publisher": f"{c.publisher_kind}:{c.publisher_id}"}
                                for c in installs.installable(session, runtime, code)]
        values["may_grid"] = allowed(staff, Action.GRID, code, granted)
        values["may_installs"] = allowed(staff, Action.INSTALLS, code, granted)
        values["bank_wide"] = slots.slots_of(session, None)
    return page("storefront.html", status, **values)


@bp.get("/console/bank")
@staff_required()
def bank():
    """The bank-wide banners and feed cards, shown on every storefront."""
    return _storefront_page(None, status=200)


@bp.get("/console/branches/<code>")
@staff_required()
def storefront(code: str):
    """A branch's storefront as its operators manage it."""
    try:
        return _storefront_page(get_branch(db.session(), code).code)
    except UnknownBranch:
        raise Problem(404, _("Unknown branch"), _("There is no branch with that code.")) from None


def _slot_form(*, scope: str | None, kind: str, slot: StorefrontSlot | None = None, entered: dict | None = None,
               errors: dict | None = None, status: int = 200):
    found = rights.verdict(db.session(), current_staff(), slots.slot_action(kind, scope), scope)
    return page("slot_form.html", status, scope=scope or BANK_WIDE, kind=kind, slot=slot, entered=entered,
                 errors=errors or {}, kinds=SlotKind.ALL, editable=bool(found), reason=found.reason)


@bp.get("/console/slots/new")
@staff_required()
def new_slot():
    """The form for a new banner or feed card (``?scope=`` a branch code or "*", ``?kind=``)."""
    scope = _scope(request.args.get("scope", ""))
    kind = request.args.get("kind", SlotKind.BANNER)
    kind = kind if kind in SlotKind.ALL else SlotKind.BANNER
    staff = current_staff()
    found = rights.verdict(db.session(), staff, slots.slot_action(kind, scope), scope)
    if not found:
        raise refuse(NotAllowed(found.reason, action=slots.slot_action(kind, scope).value, branch=scope,
                                 actor=staff.username))
    return _slot_form(scope=scope, kind=kind)


@bp.post("/console/slots")
@staff_required()
def create_slot():
    """Add a banner or feed card to ``scope`` (a branch code, or "*" for every storefront)."""
    scope = _scope(request.form.get("scope", ""))
    kind = request.form.get("kind", "")
    form = form_fields()

    def apply(session, staff):
        slots.create_slot(session, staff, scope, kind, form)
        return redirect(_back(scope, saved="slot"), 303)

    return change("storefront.slot_created", scope, apply, lambda errors: _slot_form(
        scope=scope, kind=kind if kind in SlotKind.ALL else SlotKind.BANNER, entered=form, errors=errors, status=422))


def _back(scope: str | None, **query) -> str:
    if scope is None:
        return url_for("console.bank", **query)
    return url_for("console.storefront", code=scope, **query)


def _existing(slot_id: int) -> StorefrontSlot:
    try:
        return slots.get_slot(db.session(), slot_id)
    except NotFound as exc:
        raise Problem(404, _("Not found"), str(exc)) from None


@bp.get("/console/slots/<int:slot_id>")
@staff_required()
def edit_slot(slot_id: int):
    """A slot's form."""
    slot = _existing(slot_id)
    require_view(current_staff(), slot.branch_code)
    return _slot_form(scope=slot.branch_code, kind=slot.kind, slot=slot)


@bp.post("/console/slots/<int:slot_id>")
@staff_required()
def update_slot(slot_id: int):
    """Change a slot."""
    slot = _existing(slot_id)
    form = form_fields()

    def apply(session, staff):
        changed = slots.update_slot(session, staff, slot_id, form)
        return redirect(_back(changed.branch_code, saved="slot"), 303)

    return change("storefront.slot_changed", slot.branch_code, apply, lambda errors: _slot_form(
        scope=slot.branch_code, kind=slot.kind, slot=slot, entered=form, errors=errors, status=422))


@bp.post("/console/slots/<int:slot_id>/delete")
@staff_required()
def delete_slot(slot_id: int):
    """Remove a slot."""
    slot = _existing(slot_id)

    def apply(session, staff):
        slots.delete_slot(session, staff, slot_id)
        return redirect(_back(slot.branch_code, saved="deleted"), 303)

    return change("storefront.slot_deleted", slot.branch_code, apply,
                   lambda errors: _storefront_page(slot.branch_code, status=422, errors=errors))


@bp.post("/console/branches/<code>/installs")
@staff_required()
def install(code: str):
    """Install the published mini-program ``plugin_id`` at the end of the grid."""
    code = branch_code(code)
    plugin_id = request.form.get("plugin_id", "")

    def apply(session, staff):
        installs.install(session, get_runtime(), staff, code, plugin_id)
        return redirect(url_for("console.storefront", code=code, saved="installed"), 303)

    return change("storefront.installed", code, apply,
                   lambda errors: _storefront_page(code, status=422, errors=errors, form="installs"))


@bp.post("/console/branches/<code>/uninstall")
@staff_required()
def uninstall(code: str):
    """Remove ``plugin_id`` from the storefront: its zone goes at once."""
    code = branch_code(code)
    plugin_id = request.form.get("plugin_id", "")

    def apply(session, staff):
        installs.uninstall(session, staff, code, plugin_id)
        return redirect(url_for("console.storefront", code=code, saved="uninstalled"), 303)

    return change("storefront.uninstalled", code, apply,
                   lambda errors: _storefront_page(code, status=422, errors=errors, form="installs"))


def _grid_order(session, code: str) -> list[str]:
    """The installed ids in the order the form's ``position.<id>`` numbers give (ties keep the
    present order); :class:`InvalidChange` naming each field that is not a small whole number."""
    present = [row.plugin_id for row in installs.installed(session, code)]
    errors: dict[str, list[str]] = {}
    keyed = []
    for index, plugin_id in enumerate(present):
        field = f"position.{plugin_id}"
        raw = request.form.get(field, "")
        if not (isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 4 and raw.strip().isascii()):
            errors[field] = [_("must be a whole number from 0 to 9999")]
            continue
        keyed.append((int(raw), index, plugin_id))
    unknown = sorted(key for key in request.form if key.startswith("position.") and key[9:] not in present)
    if unknown:
        errors["order"] = [_("these are not installed here: %(ids)s", ids=", ".join(key[9:][:64] for key in unknown[:5]))]
    if errors:
        raise InvalidChange(errors)
    return [plugin_id for _number, _index, plugin_id in sorted(keyed)]


@bp.post("/console/branches/<code>/grid")
@staff_required()
def order_grid(code: str):
    """Order the icon grid by the ``position.<plugin id>`` numbers."""
    code = branch_code(code)

    def apply(session, staff):
        rights.authorize(session, staff, Action.GRID, code)  # refuse before reading the form
        installs.order_grid(session, staff, code, _grid_order(session, code))
        return redirect(url_for("console.storefront", code=code, saved="grid"), 303)

    return change("storefront.grid_ordered", code, apply,
                   lambda errors: _storefront_page(code, status=422, errors=errors, form="grid"))


# -- head office: rights and branches ----------------------------------------------------------


def _rights_page(status: int = 200, errors: dict | None = None, failed: str | None = None):
    staff = current_staff()
    require_view(staff, None)
    session = db.session()
    granted: dict[str, set[str]] = {}
    for row in session.scalars(select(OperatingRight)):
        granted.setdefault(row.branch_code, set()).add(row.right)
    return page("rights.html", status, branches=session.scalars(select(Branch).order_by(Branch.code)).all(),
                 granted=granted, rights_list=rights.RIGHTS, editable=allowed(staff, Action.RIGHTS, None),
                 errors=errors or {}, failed_branch=failed, saved=request.args.get("saved"))


@bp.get("/console/rights")
@staff_required()
def rights_page():
    """Which rights each branch has over its own storefront."""
    if not rights.is_head_office(current_staff()):
        raise refuse(NotAllowed(_("Only head office sees every branch's rights."), action=Action.RIGHTS.value,
                                 actor=current_staff().username))
    return _rights_page()


@bp.post("/console/rights")
@staff_required()
def set_rights():
    """Grant ``branch`` exactly the checked ``rights``."""
    code = request.form.get("branch", "")
    chosen = request.form.getlist("rights")

    def apply(session, staff):
        rights.set_rights(session, staff, code, chosen)
        return redirect(url_for("console.rights_page", saved=code), 303)

    return change("storefront.rights_changed", code[:16] or None, apply,
                   lambda errors: _rights_page(422, errors, failed=code))


def _branches_page(status: int = 200, errors: dict | None = None, entered: dict | None = None, failed: str | None = None):
    staff = current_staff()
    if not rights.is_head_office(staff):
        raise refuse(NotAllowed(_("Only head office manages branches."), action=Action.BRANCHES.value,
                                 actor=staff.username))
    session = db.session()
    return page("branches.html", status, branches=session.scalars(select(Branch).order_by(Branch.code)).all(),
                 editable=allowed(staff, Action.BRANCHES, None), errors=errors or {}, entered=entered or {},
                 failed=failed, saved=request.args.get("saved"))


@bp.get("/console/branches")
@staff_required()
def branches():
    """Every branch; head office administrators add and rename them."""
    return _branches_page()


@bp.post("/console/branches")
@staff_required()
def add_branch():
    """Add a branch under an existing one."""
    form = form_fields()

    def apply(session, staff):
        branch = create_branch(session, staff, form)
        return redirect(url_for("console.branches", saved=branch.code), 303)

    return change("storefront.branch_created", None, apply,
                   lambda errors: _branches_page(422, errors, entered=form, failed="new"))


@bp.post("/console/branches/<code>/names")
@staff_required()
def rename(code: str):
    """Change a branch's names."""
    code = branch_code(code)
    form = form_fields()

    def apply(session, staff):
        rename_branch(session, staff, code, form)
        return redirect(url_for("console.branches", saved=code), 303)

    return change("storefront.branch_renamed", code, apply,
                   lambda errors: _branches_page(422, errors, entered=form, failed=code))
