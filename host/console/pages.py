"""What every page of the staff console shares: answering with a page, refusing, and running a
change in one write transaction with its audit entry.

Who may do what is decided by :mod:`host.storefront.rights` inside the services the views call;
these helpers only turn the services' answers into HTTP ones, the same way on every page.
"""

from __future__ import annotations

from typing import Any, Callable

from flask import render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from .. import audit, db
from ..i18n import request_locale
from ..identity.models import Staff
from ..identity.sessions import current_staff
from ..problems import Problem, validation_problem, wants_json
from ..storefront import rights
from ..storefront.errors import InvalidChange, NotAllowed, NotFound
from ..storefront.rights import Action
from ..storefront.services import UnknownBranch, get_branch

NO_STORE = {"Cache-Control": "no-store"}


def refuse(refused: NotAllowed) -> Problem:
    """The 403 answer to a refusal, its audit entry written."""
    rights.audit_denial(refused)
    return Problem(403, _("Not allowed"), refused.reason)


def allowed(staff: Staff, action: Action, branch_code: str | None, granted=()) -> bool:
    """Whether the rights allow ``staff`` to do ``action`` (to decide which forms a page shows)."""
    return bool(rights.check(staff, action, branch_code, granted))


def require_view(staff: Staff, branch_code: str | None) -> None:
    """Raise the 403 answer unless ``staff`` may look at ``branch_code`` (None: bank-wide)."""
    found = rights.check(staff, Action.VIEW, branch_code)
    if not found:
        raise refuse(NotAllowed(found.reason, action=Action.VIEW.value, branch=branch_code, actor=staff.username))


def branch_code(code: str) -> str:
    """The code of the branch ``code`` names; a 404 answer when there is none."""
    try:
        return get_branch(db.session(), code).code
    except UnknownBranch:
        raise Problem(404, _("Unknown branch"), _("There is no branch with that code.")) from None


def page(template: str, status: int = 200, **values):
    """Render ``console/<template>`` for the signed-in member of staff, never cached."""
    return render_template(f"console/{template}", locale=request_locale(), staff=current_staff(), **values), status, NO_STORE


def change(action: str, branch: str | None, apply: Callable, invalid: Callable[[dict], Any]):
    """Run ``apply(session, staff)`` in one write transaction and answer: its result, 403 when
    refused, 404 when what it names is missing, 422 (``invalid(errors)``) when the input is wrong."""
    staff = current_staff()
    try:
        with db.get_database().transaction(write=True) as session:
            return apply(session, staff)
    except NotAllowed as exc:
        raise refuse(exc) from None
    except (NotFound, UnknownBranch) as exc:
        raise Problem(404, _("Not found"), str(exc)) from None
    except InvalidChange as exc:
        audit.record(action, outcome=audit.FAILURE, actor=staff.username, branch=branch or "*",
                     detail={"fields": sorted(exc.errors)})
        if wants_json():
            raise validation_problem(exc.errors, _("Nothing was changed: %(errors)s", errors=str(exc))) from None
        return invalid(exc.errors)
    except IntegrityError:
        raise Problem(409, _("Changed meanwhile"), _("Someone changed this at the same time; reload and try again.")) from None


def form_fields() -> dict[str, Any]:
    """The form's fields (the first value of each), without the CSRF token."""
    return {key: value for key, value in request.form.items() if key != "csrf_token"}
