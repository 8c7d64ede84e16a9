"""Browser sessions of customers and staff.

The session is Flask's signed cookie (``canopy_session``: ``Secure``, ``HttpOnly``,
``SameSite=Lax``, 30 minutes idle). It holds only who signed in and when; the person
is read from the database on every request, so a deleted or changed account takes
effect at once. Signing in starts a fresh session (no fixation).
"""

from __future__ import annotations

from functools import wraps
from typing import Callable
from urllib.parse import urlencode

from flask import Flask, g, redirect, request, session
from flask.sessions import NullSession, SecureCookieSessionInterface

from .. import db
from ..config import require_secret
from ..db import utcnow
from ..i18n import CUSTOMER_LOCALE
from ..problems import Problem
from .models import Customer, PartnerDeveloper, Staff

CUSTOMER_KEY = "customer_id"
STAFF_KEY = "staff_id"
DEVELOPER_KEY = "developer_id"


class _NoSecretSession(NullSession):
    """The session of an app without ``SECRET_KEY``: empty to read; writing to it says what
    is missing (a 503 "Not configured" answer) instead of a bare RuntimeError (a 500)."""

    def _fail(self, *args, **kwargs):
        require_secret({})  # raises ConfigError naming CANOPY_SECRET_KEY

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail  # type: ignore[assignment]


class _SessionInterface(SecureCookieSessionInterface):
    null_session_class = _NoSecretSession

    def open_session(self, app: Flask, request):
        # Most API calls carry no cookie: give them an empty session without building a signer.
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def configure(app: Flask) -> None:
    """Install the session interface. The cookie's policy (name ``canopy_session``, Secure,
    HttpOnly, SameSite=Lax, 30 minutes) is configuration: see ``host.config.DEFAULTS``."""
    app.session_interface = _SessionInterface()
    app.extensions[CUSTOMER_LOCALE] = customer_locale


def customer_locale() -> str | None:
    """The signed-in customer's language setting, or None (what the language choice asks)."""
    customer = current_customer()
    return customer.locale if customer is not None else None


def _start(key: str, person_id: str) -> None:
    session.clear()
    session.permanent = True
    session[key] = person_id
    session["signed_in_at"] = utcnow().isoformat()


def sign_in_customer(customer: Customer) -> None:
    """Start a customer session (after the password was checked)."""
    _start(CUSTOMER_KEY, customer.id)


def sign_in_staff(staff: Staff) -> None:
    """Start a staff session (after the password was checked)."""
    _start(STAFF_KEY, staff.id)


def sign_in_developer(developer: PartnerDeveloper) -> None:
    """Start a partner developer session (after the password was checked)."""
    _start(DEVELOPER_KEY, developer.id)


def sign_out() -> None:
    """End the session."""
    session.clear()


def _current(key: str, model):
    """The person of ``model`` whose id the session holds under ``key`` (read once per request)."""
    cache = f"current_{key}"
    if cache not in g:
        person_id = session.get(key)
        setattr(g, cache, db.session().get(model, person_id) if isinstance(person_id, str) and "\x00" not in person_id else None)
    return getattr(g, cache)


def current_customer() -> Customer | None:
    """The signed-in customer of this browser session, or None."""
    return _current(CUSTOMER_KEY, Customer)


def current_staff() -> Staff | None:
    """The signed-in member of staff, or None."""
    return _current(STAFF_KEY, Staff)


def current_developer() -> PartnerDeveloper | None:
    """The signed-in partner developer, or None."""
    return _current(DEVELOPER_KEY, PartnerDeveloper)


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this host (no scheme, no other host), else ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


def _to_sign_in(path: str):
    return redirect(f"{path}?{urlencode({'next': request.full_path.rstrip('?')})}", 303)


def _session_required(current: Callable[[], object], sign_in_path: str) -> Callable[[Callable], Callable]:
    """A view decorator: without ``current()`` the visitor goes to ``sign_in_path`` (303), then back."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            if current() is None:
                return _to_sign_in(sign_in_path)
            return view(*args, **kwargs)

        return wrapper

    return decorate


#: Send visitors without a customer session to the sign-in page (303), then back.
login_customer_required = _session_required(current_customer, "/signin")

def staff_required(*roles: str) -> Callable[[Callable], Callable]:
    """Require a staff session, with one of ``roles`` when given (403 otherwise)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            staff = current_staff()
            if staff is None:
                return _to_sign_in("/staff/signin")
            if roles and staff.role not in roles:
                raise Problem(403, "Not allowed", f"This needs one of the roles: {', '.join(roles)}.")
            return view(*args, **kwargs)

        return wrapper

    return decorate


#: Send visitors without a partner developer session to the developer sign-in page.
developer_required = _session_required(current_developer, "/developer/signin")
