"""Errors as RFC 9457 problem documents (``application/problem+json``).

Raise :class:`Problem` anywhere in a request; HTTP errors, validation errors and an
unreachable database become problem documents too. Pages (not API calls) get a short
HTML error page with the same status instead.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, render_template, request
from flask_babel import gettext, lazy_gettext
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .config import ConfigError
from .i18n import request_locale

log = logging.getLogger("canopy.http")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5

#: Titles an error page shows in the reader's language (problem documents keep the English title,
#: which programs may match on): HTTP's reason phrases and the titles the host's pages raise.
#: Listed here so that the host's catalog holds them.
PAGE_TITLES = (
    lazy_gettext("Bad Request"), lazy_gettext("Unauthorized"), lazy_gettext("Forbidden"), lazy_gettext("Not Found"),
    lazy_gettext("Method Not Allowed"), lazy_gettext("Not Acceptable"), lazy_gettext("Conflict"), lazy_gettext("Gone"),
    lazy_gettext("Request Entity Too Large"), lazy_gettext("Content Too Large"),
    lazy_gettext("Unsupported Media Type"), lazy_gettext("Unprocessable Entity"), lazy_gettext("Unprocessable Content"),
    lazy_gettext("Too Many Requests"), lazy_gettext("Internal Server Error"), lazy_gettext("Bad Gateway"),
    lazy_gettext("Service Unavailable"), lazy_gettext("Gateway Timeout"),
    lazy_gettext("Authorization request not usable"), lazy_gettext("Body too large"), lazy_gettext("Changed meanwhile"),
    lazy_gettext("Form expired"), lazy_gettext("Internal server error"), lazy_gettext("Invalid decision"),
    lazy_gettext("Invalid request"), lazy_gettext("Mini-program busy"), lazy_gettext("Mini-program failed"),
    lazy_gettext("Mini-program timed out"), lazy_gettext("No such branch"), lazy_gettext("No such mini-program"),
    lazy_gettext("No such page"), lazy_gettext("No such payment"), lazy_gettext("No such plugin"),
    lazy_gettext("Not allowed"), lazy_gettext("Not configured"), lazy_gettext("Not ready"), lazy_gettext("Not signed in"),
    lazy_gettext("Nothing to withdraw"), lazy_gettext("Query parameter too long"), lazy_gettext("Request too large"),
    lazy_gettext("Service unavailable"), lazy_gettext("Too many attempts"), lazy_gettext("Too many query parameters"),
    lazy_gettext("Unknown branch"), lazy_gettext("Unsupported media type"),
)


class Problem(Exception):
    """An error answer: ``status``, a short ``title``, a ``detail`` a person can act on,
    and extension members (``errors`` for per-field messages)."""

    def __init__(self, status: int, title: str | None = None, detail: str | None = None, *, type: str = "about:blank", **extra: Any) -> None:
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.type = type
        self.extra = extra
        super().__init__(f"{status} {self.title}: {detail}")

    def to_dict(self) -> dict[str, Any]:
        """The problem document."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body["instance"] = request.path if request else None
        body.update(self.extra)
        return body


def validation_problem(errors: Any, detail: str = "The request has invalid fields; see 'errors'.") -> Problem:
    """A 422 problem with marshmallow's per-field messages."""
    return Problem(422, "Invalid request", detail, type="/problems/validation", errors=errors)


def wants_json() -> bool:
    """Whether this request should get problem+json rather than an HTML page."""
    path = request.path
    if path.startswith(("/api/", "/healthz", "/readyz")) or "/api/" in path:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json", PROBLEM_JSON])
    return best in ("application/json", PROBLEM_JSON)


def respond(problem: Problem) -> Response:
    """Render ``problem`` as problem+json or as an HTML page, as the request wants."""
    if wants_json():
        response = Response(json.dumps(problem.to_dict(), ensure_ascii=False), status=problem.status, mimetype=PROBLEM_JSON)
    else:
        title, locale = _in_readers_language(problem)
        html = render_template("error.html", problem=problem, title=title, locale=locale)
        response = Response(html, status=problem.status, mimetype="text/html")
    if problem.status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if problem.status == 405 and "allow" in problem.extra:
        response.headers["Allow"] = ", ".join(problem.extra["allow"])
    return response


def _in_readers_language(problem: Problem) -> tuple[str, str]:
    """The problem's title for an error page in the reader's language (the English one when the
    catalogs have no translation), and that language."""
    try:
        return gettext(problem.title), request_locale()
    except Exception:  # choosing the language may need the database: the very thing that may have failed
        return problem.title, "en"


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return respond(exc)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return respond(validation_problem(exc.messages))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return respond(Problem(413, "Request too large", f"The request body is larger than {limit} bytes."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        extra: dict[str, Any] = {}
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            extra["allow"] = sorted(exc.valid_methods)
        return respond(Problem(exc.code or 500, exc.name, exc.description, **extra))

    # Only a lost or refused connection means "unavailable"; any other database error is a
    # bug of ours (input is validated before it reaches the database) and answers 500.
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database(exc: DBAPIError) -> Response:
        log.error("database unavailable: %s", exc.__class__.__name__, exc_info=exc)
        return respond(Problem(503, "Service unavailable", "The database cannot be reached; try again shortly."))

    @app.errorhandler(ConfigError)
    def _not_configured(exc: ConfigError) -> Response:
        log.error("configuration: %s", exc)
        return respond(Problem(503, "Not configured", str(exc)))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return respond(Problem(500, "Internal server error", "Something went wrong on our side; it has been logged."))
