"""Sign-in pages: customers at ``/signin``, staff at ``/staff/signin``."""

from __future__ import annotations

import logging

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


@bp.route("/signin", methods=["GET", "POST"])
def customer_sign_in():
    """The customer's sign-in page."""
    locale = request_locale()
    target = sessions.safe_next(request.values.get("next"))
    error = None
    status = 200
    if request.method == "POST":
        _limit()
        try:
            customer = services.sign_in_customer(_form_text("phone", 20), _form_text("password"))
        except services.SignInFailed as exc:
            error, status = exc, 423 if exc.locked else 401
        else:
            sessions.sign_in_customer(customer)
            return redirect(target, 303)
    html = render_template("identity/signin.html", locale=locale, error=error, next=target,
                           phone=_form_text("phone", 20), staff=False)
    return html, status


@bp.route("/staff/signin", methods=["GET", "POST"])
def staff_sign_in():
    """The staff sign-in page."""
    locale = request_locale()
    target = sessions.safe_next(request.values.get("next"), default="/staff")
    error = None
    status = 200
    if request.method == "POST":
        _limit()
        try:
            staff = services.sign_in_staff(_form_text("username", 64), _form_text("password"))
        except services.SignInFailed as exc:
            error, status = exc, 423 if exc.locked else 401
        else:
            sessions.sign_in_staff(staff)
            return redirect(target, 303)
    html = render_template("identity/signin.html", locale=locale, error=error, next=target,
                           phone=_form_text("username", 64), staff=True)
    return html, status


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
