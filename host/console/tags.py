"""Customer tags in the staff console: which customers of a branch carry which tags (what
banners and feed cards target), and adding and removing them.

``/console/tags`` sends branch staff to their own branch's page and shows head office every
branch's tags. ``/console/branches/<code>/tags`` lists the branch's tags, the customers carrying
one (``?tag=``), and the forms to add and remove a tag. The rules — who may change which
branch's customers, what a tag is, what names a customer — live in
:mod:`host.storefront.tags` and :mod:`host.storefront.rights`; views only read forms and answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from .. import db
from ..identity.sessions import current_staff, staff_required
from ..storefront import rights, tags
from ..storefront.models import Branch
from ..storefront.rights import Action
from ..storefront.services import get_branch
from .pages import allowed, branch_code, change, form_fields, page, require_view

bp = Blueprint("tags", __name__)


@bp.get("/console/tags")
@staff_required()
def index():
    """Branch staff: their branch's tags. Head office: every branch's, with counts."""
    staff = current_staff()
    if staff.role in rights.BRANCH_ROLE_ACTIONS and staff.branch_code:
        return redirect(url_for(".branch", code=staff.branch_code), 303)
    require_view(staff, None)
    session = db.session()
    return page("tag_overview.html", branches=session.scalars(select(Branch).order_by(Branch.code)).all(),
                counts=tags.tags_by_branch(session))


def _chosen_tag(value: Any, errors: dict[str, list[str]]) -> str | None:
    """The tag ``?tag=`` names (None: none asked for); a wrong one adds its message to ``errors``."""
    if value is None or value == "":
        return None
    try:
        tags.check_tag(value)
    except ValidationError as exc:
        errors["tag"] = [str(message) for message in exc.messages]
        return None
    return value


def _branch_page(code: str, *, status: int = 200, errors: dict | None = None, entered: dict | None = None,
                 failed: str | None = None, tag: Any = None):
    """A branch's tags page; ``failed`` names the form whose ``errors`` it shows again
    (``lookup``, ``add`` or ``remove``) with what was ``entered``."""
    staff = current_staff()
    require_view(staff, code)
    session = db.session()
    errors = dict(errors or {})
    lookup_errors: dict[str, list[str]] = {}
    chosen = _chosen_tag(tag, lookup_errors)
    if lookup_errors and not failed:
        errors, failed, status = lookup_errors, "lookup", 422
    customers, total = tags.tagged_customers(session, code, chosen, tags.LIST_LIMIT) if chosen else ([], 0)
    return page("tags.html", status, branch=get_branch(session, code), uses=tags.branch_tags(session, code),
                chosen=chosen, customers=customers, total=total, masked=tags.masked_phone,
                editable=allowed(staff, Action.TAGS, code), errors=errors, failed=failed, entered=entered or {},
                saved=request.args.get("saved") if status == 200 else None, max_length=tags.MAX_REFERENCE)


@bp.get("/console/branches/<code>/tags")
@staff_required()
def branch(code: str):
    """A branch's customer tags; ``?tag=`` lists the customers carrying one."""
    return _branch_page(branch_code(code), tag=request.args.get("tag"))


def _back(code: str, tag: str, saved: str) -> str:
    return url_for(".branch", code=code, tag=tag, saved=saved)


@bp.post("/console/branches/<code>/tags")
@staff_required()
def add(code: str):
    """Tag a customer of the branch: ``tag``, and ``customer`` (mobile number or customer id)."""
    code = branch_code(code)
    form = form_fields()

    def apply(session, staff):
        _customer, tag = tags.add_tag(session, staff, code, form)
        return redirect(_back(code, tag, "added"), 303)

    return change("storefront.customer_tag_added", code, apply, lambda errors: _branch_page(
        code, status=422, errors=errors, entered=form, failed="add", tag=_valid_or_none(form.get("tag"))))


@bp.post("/console/branches/<code>/tags/remove")
@staff_required()
def remove(code: str):
    """Take ``tag`` off the branch's customer ``customer`` (their id, as the list's buttons send it)."""
    code = branch_code(code)
    form = form_fields()

    def apply(session, staff):
        _customer, tag = tags.remove_tag(session, staff, code, form)
        return redirect(_back(code, tag, "removed"), 303)

    return change("storefront.customer_tag_removed", code, apply, lambda errors: _branch_page(
        code, status=422, errors=errors, entered=form, failed="remove", tag=_valid_or_none(form.get("tag"))))


def _valid_or_none(value: Any) -> str | None:
    """``value`` when it is a tag (to list its customers again under a failed form), else None."""
    return _chosen_tag(value.strip() if isinstance(value, str) else None, {})
