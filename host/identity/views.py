"""Sign-in pages: customers at ``/signin``, staff at ``/staff/signin``, partner developers at
``/developer/signin``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from flask import Blueprint, current_app, redirect, render_template, request

from ..i18n import request_locale
from ..problems import Problem
from . import services, sessions
from .ratelimit import RateLimiterUnavailable, rate_limiter

bp = Blueprint("identity", __name__, template_folder="templates")
log = logging.getLogger("canopy.identity")

#: Sign-in attempts one client address may make per minute.
ATTEMPTS_PER_MINUTE = 20


def _limit() -> None:
    limiter = current_app.extensions.get("canopy.ratelimit")
    if limiter is None:
        limiter = current_app.extensions["canopy.ratelimit"] = rate_limiter(current_app.config)
    try:
        allowed = limiter.hit(f"signin:{request.remote_addr}", ATTEMPTS_PER_MINUTE, 60)
    except RateLimiterUnavailable as exc:
        log.error("sign-in refused: %s", exc)
        raise Problem(503, "Service unavailable", "Signing in is not possible for a moment; try again shortly.") from None
    if not allowed:
        raise Problem(429, "Too many attempts", "Too many sign-in attempts from here; wait a minute and try again.")


def _form_text(name: str, limit: int = 200) -> str:
    value = request.form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True)
class SignInPage:
    """What differs between the sign-in pages of customers, staff and partner developers."""

    kind: str  #: "customer", "staff" or "developer" (the template's wording)
    field: str  #: the form field that names the account
    max_length: int
    check: Callable[[str, str], object]  #: the service that checks the password
    start: Callable[[object], None]  #: starts the session
    default_next: str


PAGES = {
    "customer": SignInPage("customer", "phone", 20, services.sign_in_customer, sessions.sign_in_customer, "/"),
    "staff": SignInPage("staff", "username", 64, services.sign_in_staff, sessions.sign_in_staff, "/staff"),
    "developer": SignInPage(
        "developer", "email", 200, services.sign_in_developer, sessions.sign_in_developer, "/developer"
    ),
}


def _sign_in(page: SignInPage):
    locale = request_locale()
    target = sessions.safe_next(request.values.get("next"), default=page.default_next)
    error = None
    status = 200
    login = _form_text(page.field, page.max_length)
    if request.method == "POST":
        _limit()
        try:
            person = page.check(login, _form_text("password"))
        except services.SignInFailed as exc:
            error, status = exc, 423 if exc.locked else 401
        else:
            page.start(person)
            return redirect(target, 303)
    html = render_template("identity/signin.html", locale=locale, error=error, next=target, login=login, page=page)
    return html, status


@bp.route("/signin", methods=["GET", "POST"])
def customer_sign_in():
    """The customer's sign-in page."""
    return _sign_in(PAGES["customer"])


@bp.route("/staff/signin", methods=["GET", "POST"])
def staff_sign_in():
    """The staff sign-in page."""
    return _sign_in(PAGES["staff"])


@bp.route("/developer/signin", methods=["GET", "POST"])
def developer_sign_in():
    """The partner developer's sign-in page."""
    return _sign_in(PAGES["developer"])


@bp.post("/signout")
def sign_out():
    """End the session (customer or staff)."""
    sessions.sign_out()
    return redirect("/", 303)


@bp.get("/staff")
@sessions.staff_required()
def staff_home():
    """Who the signed-in member of staff is (the console comes with the storefront work)."""
    staff = sessions.current_staff()
    return render_template("identity/staff_home.html", staff=staff, locale=request_locale())


@bp.get("/developer")
@sessions.developer_required
def developer_home():
    """Who the signed-in partner developer is (their console comes with the storefront work)."""
    developer = sessions.current_developer()
    return render_template("identity/developer_home.html", developer=developer, locale=request_locale())
