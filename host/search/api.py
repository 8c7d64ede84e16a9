"""``GET /api/v1/search?q=&branch=``: the search centre as JSON (documented in the OpenAPI
document; errors are problem+json naming the field)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _

from .. import db
from ..i18n import request_locale
from ..identity.sessions import current_customer
from ..problems import validation_problem
from ..runtime import get_runtime
from . import services
from .services import InvalidQuery
from .views import resolve_branch

bp = Blueprint("search_api", __name__, url_prefix="/api/v1")

#: The query parameters the endpoint takes; any other is refused (a typo should not pass silently).
PARAMETERS = ("q", "branch", "lang")


def _refuse_unknown_parameters() -> None:
    unknown = sorted(set(request.args) - set(PARAMETERS))
    if unknown:
        message = _("Unknown parameter; use q, branch and lang.")
        raise validation_problem({name[:40]: [message] for name in unknown[:10]},
                                 _("The query string has invalid parameters; see 'errors'."))


@bp.get("/search")
def search():
    """Mini-programs of the branch and services its plugins offer that match ``q``, best first."""
    _refuse_unknown_parameters()
    locale = request_locale()
    customer = current_customer()
    session = db.session()
    branch = resolve_branch(session, request.args.get("branch"), customer)
    try:
        found = services.search(session, get_runtime(), branch, request.args.get("q", ""), locale, customer)
    except InvalidQuery as exc:
        raise validation_problem(exc.errors, _("The search cannot be made; see 'errors'.")) from None
    body = {
        "query": found.query,
        "branch": found.branch,
        "locale": locale,
        "count": len(found.results),
        "items": [
            {"kind": r.kind, "plugin_id": r.plugin_id, "plugin_name": r.plugin_name, "title": r.title,
             "summary": r.summary, "url": r.href, "score": round(r.score, 4), "matched": r.matched}
            for r in found.results
        ],
        "unavailable": found.unavailable,
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
