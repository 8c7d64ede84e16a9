"""The search page, ``/search?q=&branch=``: mobile-first, in the branch's storefront context."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from .. import db
from ..i18n import request_locale
from ..identity.sessions import current_customer
from ..problems import Problem
from ..runtime import get_runtime
from ..storefront.models import Branch
from ..storefront.services import UnknownBranch, get_branch
from . import services
from .services import InvalidQuery

bp = Blueprint("search", __name__, template_folder="templates")


def resolve_branch(session: Session, code: object, customer) -> Branch:
    """The branch named by ``?branch=``; without one, the signed-in customer's home branch,
    else head office. Raises a 404 :class:`~host.problems.Problem` naming the field."""
    if code is None or code == "":
        code = customer.branch_code if customer is not None else current_app.config["HEAD_OFFICE"]
    try:
        return get_branch(session, code)  # type: ignore[arg-type]
    except UnknownBranch:
        message = _("There is no branch with that code.")
        raise Problem(404, "No such branch", message, errors={"branch": [message]}) from None


def shown_query(raw: str) -> str:
    """What the search box shows again after a refused query: its printable start."""
    return "".join(ch for ch in raw[: services.MAX_QUERY_LENGTH] if ch.isprintable())


@bp.get("/search")
def search_page():
    """Search the branch's mini-programs and what they offer; an empty query lists them all."""
    locale = request_locale()
    customer = current_customer()
    session = db.session()
    branch = resolve_branch(session, request.args.get("branch"), customer)
    raw = request.args.get("q", "")
    found, errors, status = None, [], 200
    try:
        found = services.search(session, get_runtime(), branch, raw, locale, customer)
    except InvalidQuery as exc:
        errors, status = exc.errors.get("q", []), 422
    html = render_template(
        "search/search.html",
        locale=locale,
        branch=branch,
        branch_name=branch.name(locale),
        query=found.query if found is not None else shown_query(raw),
        found=found,
        errors=errors,
        max_length=services.MAX_QUERY_LENGTH,
    )
    # Results may depend on who searches (plugins see their customer): never cached.
    return html, status, {"Cache-Control": "no-store"}
