"""CSRF protection for every form.

Each session has a random token; templates put it in every form with
``{{ csrf_field() }}`` (or ``csrf_token()``). A POST, PUT, PATCH or DELETE whose body is
a form (urlencoded, multipart or text/plain), or that has no body type but comes with the
session cookie, must carry it, or the request is refused with 400
before any view runs. JSON API calls are not form posts and are not affected; views that
take form bodies from back ends (the OAuth token endpoint) opt out with :func:`exempt`.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Callable

from flask import Flask, current_app, request, session
from markupsafe import Markup, escape

from ..problems import Problem

FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get(FIELD)
    if not isinstance(token, str):
        token = session[FIELD] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    """A hidden form field holding the token."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(csrf_token())}">')


def exempt(view: Callable) -> Callable:
    """Mark a view as taking form posts without a CSRF token (authenticated otherwise)."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _form_or_bare() -> bool:
    """Whether this request is one a page of another site can send with the session cookie and
    no CORS preflight: a form body, or no body type at all (``fetch(url, {method: "POST"})``).
    A back end calling the API without a body carries no session cookie and is not affected."""
    if request.mimetype in FORM_TYPES:
        return True
    return not request.mimetype and current_app.session_interface.get_cookie_name(current_app) in request.cookies


def init_app(app: Flask) -> None:
    """Check the token on every unsafe form request; offer the helpers to templates."""
    app.jinja_env.globals.update(csrf_token=csrf_token, csrf_field=csrf_field)

    @app.before_request
    def _check_csrf() -> None:
        if request.method not in UNSAFE_METHODS or not _form_or_bare():
            return
        view = current_app.view_functions.get(request.endpoint or "")
        if view is None or getattr(view, "csrf_exempt", False):
            return
        expected = session.get(FIELD)
        offered = request.form.get(FIELD, "")
        if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), offered.encode()):
            raise Problem(400, "Form expired", "The form's security token is missing or wrong; reload the page and try again.")
