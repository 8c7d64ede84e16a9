"""``/api/v1/publisher`` and ``/api/v1/review``: uploading mini-program versions, submitting them,
reviewing them, and reading their history (docs/publishing.md).

Two kinds of callers, each authenticated the way the host already authenticates it:

* a **partner's back end**: ``Authorization: DPoP <token>`` with a DPoP proof, the token a client
  credentials token with ``plugins:publish``; it acts for the partner organisation that publishes
  its client's plugin;
* **staff**: the console's session cookie; every request that changes something also carries the
  session's CSRF token in ``X-CSRF-Token`` (``GET /api/v1/staff/csrf-token`` gives it).

Views only read the request and answer; every rule is in :mod:`host.publishing` (who may do
what in :mod:`host.publishing.lifecycle`). Each request is one transaction; a refusal changes
nothing, answers with a problem document naming the reason and is audited.
"""

from __future__ import annotations

import hmac
import re
from contextlib import contextmanager
from functools import wraps
from typing import Callable

from flask import current_app, jsonify, request, session, url_for
from marshmallow import RAISE, ValidationError
from sqlalchemy.exc import IntegrityError

from .. import audit, db
from ..identity.csrf import FIELD as CSRF_FIELD
from ..identity.csrf import csrf_token
from ..identity.sessions import current_staff
from ..oauth.resource import current_grant, require_token
from ..oauth.web import audit_later, transactional
from ..problems import Problem, validation_problem
from ..publishing import lifecycle, prereview_runs, services
from ..publishing.actors import PARTNER, Actor
from ..publishing.errors import InvalidInput, PublishingRefused
from ..publishing.models import PackageVersion
from ..publishing.packages import Limits
from ..runtime.models import PluginRecord
from . import bp
from .schemas import (PackageVersionDetailSchema, PackageVersionListSchema, PublisherNotificationListSchema,
                      VersionActionSchema)

#: The scope a partner's back end needs (a client credentials token).
PLUGINS_PUBLISH = "plugins:publish"
#: The header that carries the staff session's CSRF token.
CSRF_HEADER = "X-CSRF-Token"
#: The body type of an upload.
ZIP = "application/zip"
#: Actions a publisher takes (``/api/v1/publisher/...``) and those head office takes (``/api/v1/review/...``).
PUBLISHER_ACTIONS = ("submit", "retire")
REVIEW_ACTIONS = ("start_review", "approve", "reject", "suspend", "reinstate")
#: What the review queue lists unless ``status`` says otherwise.
QUEUE_DEFAULT = (lifecycle.Status.PRE_REVIEW, lifecycle.Status.IN_REVIEW)
_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,64}\Z")


class _StrictAction(VersionActionSchema):
    class Meta:
        unknown = RAISE


# -- who is calling ----------------------------------------------------------------------------


def _partner_actor() -> Actor:
    """The partner organisation behind this request's client credentials token."""
    grant = current_grant()
    if grant.customer_id is not None:
        raise Problem(403, "Not allowed", "Publishing needs a client credentials token (no customer).")
    record = db.session().get(PluginRecord, grant.client_id)
    if record is None or record.publisher_kind != PARTNER:
        raise Problem(403, "Not allowed", "Only the back ends of partner organisations publish with a token; "
                                          "branches and head office publish from a staff session.")
    return Actor.partner_client(grant.client_id, record.publisher_id)


def _staff_actor() -> Actor:
    """The signed-in member of staff; for a change, only with the session's CSRF token."""
    staff = current_staff()
    if staff is None:
        raise Problem(401, "Not signed in", "Sign in as staff (the console), or call with a partner's access token.")
    if request.method not in ("GET", "HEAD"):
        expected, offered = session.get(CSRF_FIELD), request.headers.get(CSRF_HEADER, "")
        if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), offered.encode()):
            raise Problem(403, "CSRF token missing", f"Send the session's CSRF token in {CSRF_HEADER} "
                                                     f"(GET /api/v1/staff/csrf-token).")
    return Actor.staff(staff)


def authenticated(*, partners: bool) -> Callable[[Callable], Callable]:
    """Run the view in one transaction with the caller as its first argument: a partner's back end
    (when ``partners`` and the request carries ``Authorization``) or a member of staff."""

    def decorate(view: Callable) -> Callable:
        as_partner = require_token(PLUGINS_PUBLISH)(lambda *args, **kwargs: view(_partner_actor(), *args, **kwargs))
        as_staff = transactional(lambda *args, **kwargs: view(_staff_actor(), *args, **kwargs))

        @wraps(view)
        def wrapper(*args, **kwargs):
            if "Authorization" in request.headers:
                if not partners:
                    raise Problem(403, "Not allowed", "Reviews are head office's: use a staff session.")
                return as_partner(*args, **kwargs)
            return as_staff(*args, **kwargs)

        return wrapper

    return decorate


@contextmanager
def refusals(actor: Actor, action: str, plugin_id: str, version: str | None = None):
    """Turn a :class:`~host.publishing.errors.PublishingRefused` into its problem answer, with the
    request's work rolled back and the refusal audited."""
    try:
        yield
    except IntegrityError:  # a concurrent request claimed the same id or version first
        db.session().rollback()
        raise Problem(409, "Changed meanwhile", "Someone uploaded this at the same time; try again.") from None
    except PublishingRefused as exc:
        db.session().rollback()
        audit_later(f"publishing.{action}"[:64], outcome=audit.DENIED if exc.status == 403 else audit.FAILURE,
                    actor=actor.id, plugin_id=plugin_id, subject=f"{plugin_id}@{version or ''}",
                    branch=actor.branch, detail={"status": exc.status, "reason": exc.reason[:200]})
        if isinstance(exc, InvalidInput):
            raise validation_problem(exc.errors, f"Nothing was changed: {exc.reason}") from None
        raise Problem(exc.status, exc.title, exc.reason) from None


def check_names(plugin_id: str, version: str | None = None) -> None:
    """404 for path values that cannot name a plugin or a version (before they reach a query)."""
    if not services.is_plugin_id(plugin_id) or (version is not None and not _VERSION.match(version)):
        raise Problem(404, "No such version", "The address names no plugin version.")


# -- documents ---------------------------------------------------------------------------------


def version_document(row: PackageVersion, actor: Actor, *, history: bool = False) -> dict:
    """A version as the API shows it, with what ``actor`` may do to it now."""
    body = {
        "plugin_id": row.plugin_id, "version": row.version,
        "publisher": {"kind": row.publisher_kind, "id": row.publisher_id},
        "status": row.status, "status_reason": row.status_reason, "checksum": row.checksum,
        "archive_sha256": row.archive_sha256, "size": row.size, "scopes": list(row.manifest.get("scopes", [])),
        "release_at": row.release_at, "uploaded_by": row.uploaded_by, "uploaded_at": row.uploaded_at,
        "submitted_by": row.submitted_by, "reviewed_by": row.reviewed_by, "updated_at": row.updated_at,
        "prereview": row.prereview,
        "actions": [action for action in lifecycle.TRANSITIONS
                    if action in PUBLISHER_ACTIONS + REVIEW_ACTIONS and lifecycle.decide(actor, action, row)],
    }
    if history:
        body["history"] = [{"action": t.action, "from_status": t.from_status, "to_status": t.to_status,
                            "actor": t.actor, "reason": t.reason, "at": t.at}
                           for t in lifecycle.history(db.session(), row)]
    return body


def _detail(row: PackageVersion, actor: Actor, status: int = 200):
    body = PackageVersionDetailSchema().dump(version_document(row, actor, history=True))
    location = url_for("api.publishing_version", plugin_id=row.plugin_id, version=row.version)
    return jsonify(body), status, {"Location": location, "Cache-Control": "no-store"}


# -- uploads -----------------------------------------------------------------------------------


def _archive() -> bytes:
    """The request body, refused (413) before a byte is read when it announces more than a
    package may have, and cut off at that size when it announces nothing."""
    limit = Limits().archive_bytes
    if request.mimetype != ZIP:
        raise Problem(415, "Unsupported media type", f"Send the package as {ZIP}.")
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "Package too large", f"A package may have at most {limit:,} bytes; this one announces "
                                                f"{request.content_length:,}.")
    request.max_content_length = limit  # the app's smaller limit is for other bodies
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, "Package too large", f"A package may have at most {limit:,} bytes.")
    return data


@bp.post("/publisher/plugins/<plugin_id>/versions")
@authenticated(partners=True)
def publishing_upload(actor: Actor, plugin_id: str):
    """Upload a package (the body, a zip archive) as a draft version of ``plugin_id``."""
    check_names(plugin_id)
    data = _archive()
    with refusals(actor, "upload", plugin_id):
        row, created = services.upload(db.session(), actor, plugin_id, data, services.package_store())
    return _detail(row, actor, 201 if created else 200)


@bp.get("/publisher/plugins/<plugin_id>/versions")
@authenticated(partners=True)
def publishing_versions(actor: Actor, plugin_id: str):
    """The uploaded versions of a plugin, newest first (its publisher and head office)."""
    check_names(plugin_id)
    with refusals(actor, "read", plugin_id):
        rows = services.versions_of(db.session(), actor, plugin_id)
    items = [version_document(row, actor) for row in rows]
    return jsonify(PackageVersionListSchema().dump({"items": items, "count": len(items)})), 200, {"Cache-Control": "no-store"}


@bp.get("/publisher/plugins/<plugin_id>/versions/<version>")
@authenticated(partners=True)
def publishing_version(actor: Actor, plugin_id: str, version: str):
    """One uploaded version with its history."""
    check_names(plugin_id, version)
    with refusals(actor, "read", plugin_id, version):
        row = services.version_of(db.session(), actor, plugin_id, version)
    return _detail(row, actor)


@bp.get("/publisher/notifications")
@authenticated(partners=True)
def publishing_notifications(actor: Actor):
    """The caller's publisher's notifications after ``after`` (an id), oldest first, at most ``limit``."""
    after, limit = _int_arg("after", 0, 0, 2**62), _int_arg("limit", 100, 1, 500)
    with refusals(actor, "notifications", "-"):
        rows = services.notifications(db.session(), actor, after=after, limit=limit)
    items = [{"id": n.id, "plugin_id": n.plugin_id, "version": n.version, "action": n.action, "status": n.status,
              "message": n.message, "created_at": n.created_at} for n in rows]
    return jsonify(PublisherNotificationListSchema().dump({"items": items, "count": len(items)})), 200, {"Cache-Control": "no-store"}


def _int_arg(name: str, default: int, least: int, most: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not least <= int(raw[:20]) <= most:
        raise validation_problem({name: [f"must be a whole number from {least} to {most}"]})
    return int(raw)


# -- actions -----------------------------------------------------------------------------------


def action_body(schema, max_bytes: int = 16 * 1024) -> dict:
    """The optional JSON body of an action, loaded with ``schema`` (strict: unknown fields are
    refused); {} without a body. 415 for another type, 413 past ``max_bytes``, 400 for bad JSON."""
    if not request.content_length and not request.mimetype:
        return {}
    if request.mimetype != "application/json":
        raise Problem(415, "Unsupported media type", "Send the body as application/json (or no body).")
    if request.content_length is not None and request.content_length > max_bytes:
        raise Problem(413, "Request too large", f"An action's body may have at most {max_bytes // 1024} KiB.")
    data = request.get_json(silent=True)
    if data is None and request.get_data(cache=True):
        raise Problem(400, "Malformed JSON", "The body is not valid JSON.")
    try:
        return schema.load(data if data is not None else {})
    except ValidationError as exc:
        raise validation_problem(exc.messages) from None


def _act(actor: Actor, plugin_id: str, version: str, action: str):
    check_names(plugin_id, version)
    body = action_body(_StrictAction())
    with refusals(actor, action, plugin_id, version):
        if action == "submit":
            row = services.submit(db.session(), actor, plugin_id, version, reason=body.get("reason", ""))
        else:
            row = lifecycle.apply(db.session(), actor, plugin_id, version, action, reason=body.get("reason", ""),
                                  release_at=body.get("release_at"))
    if action == "submit":  # committed first: the pre-review never runs inside the request's write lock
        db.session().commit()
        prereview_runs.after_submit(current_app._get_current_object(), plugin_id, version)
        db.session().refresh(row)  # as the pre-review left it
    return _detail(row, actor)


def _publisher_action(actor: Actor, plugin_id: str, version: str, action: str):
    return _act(actor, plugin_id, version, action)


def _review_action(actor: Actor, plugin_id: str, version: str, action: str):
    return _act(actor, plugin_id, version, action)


for _action in PUBLISHER_ACTIONS:
    bp.add_url_rule(f"/publisher/plugins/<plugin_id>/versions/<version>/{_action}", f"publishing_{_action}",
                    authenticated(partners=True)(_publisher_action), methods=["POST"], defaults={"action": _action})
for _action in REVIEW_ACTIONS:
    bp.add_url_rule(f"/review/plugins/<plugin_id>/versions/<version>/{_action}", f"review_{_action}",
                    authenticated(partners=False)(_review_action), methods=["POST"], defaults={"action": _action})


@bp.get("/review/versions")
@authenticated(partners=False)
def review_queue(actor: Actor):
    """Head office's queue: versions in ``status`` (comma-separated; default pre_review,in_review)."""
    raw = request.args.get("status")
    statuses = tuple(raw.split(",")) if raw else QUEUE_DEFAULT
    if len(statuses) > len(lifecycle.Status.ALL) or any(s not in lifecycle.Status.ALL for s in statuses):
        raise validation_problem({"status": [f"must be statuses among: {', '.join(lifecycle.Status.ALL)}"]})
    with refusals(actor, "queue", "-"):
        rows = services.review_queue(db.session(), actor, statuses)
    items = [version_document(row, actor) for row in rows]
    return jsonify(PackageVersionListSchema().dump({"items": items, "count": len(items)})), 200, {"Cache-Control": "no-store"}


@bp.get("/staff/csrf-token")
def staff_csrf_token():
    """The signed-in member of staff's CSRF token, for ``X-CSRF-Token``."""
    if current_staff() is None:
        raise Problem(401, "Not signed in", "Sign in as staff first.")
    return jsonify({"csrf_token": csrf_token(), "header": CSRF_HEADER}), 200, {"Cache-Control": "no-store"}
