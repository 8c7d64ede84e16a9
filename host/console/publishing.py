"""Publishing in the staff console, ``/console/publishing``: the mini-programs a member of staff
publishes with their versions, uploading a package, a version's page (its pre-review report,
history and the actions the viewer may take now), head office's review queue and the
publisher's notifications (docs/console.md, "Publishing in the console").

Views only read forms and answer. Every rule lives in :mod:`host.publishing` — who may do what
in :mod:`host.publishing.lifecycle` (its one transition table), uploads and submissions in
:mod:`host.publishing.services` — the same functions the JSON API calls. A change is one write
transaction; a refusal changes nothing, is audited as the API audits it, and shows the page again
with the reason and the refusal's status (403, 409, 413, 422). A version the viewer may not see
answers 404, like one that does not exist: the console never tells them apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from canopy_sdk.manifest import SEMVER
from flask import Blueprint, current_app, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from .. import audit, db
from ..api.publishing import PUBLISHER_ACTIONS, QUEUE_DEFAULT, REVIEW_ACTIONS
from ..i18n import pick, request_locale
from ..identity.sessions import current_staff, staff_required
from ..problems import Problem, respond
from ..publishing import lifecycle, prereview_runs, services
from ..publishing.actors import Actor
from ..publishing.errors import InvalidInput, NotAllowed, PackageInvalid, PublishingRefused, UnknownVersion, WrongState
from ..publishing.models import PackageVersion
from ..publishing.packages import Limits, PackageRefused, read_package
from ..publishing.prereview import REPORT_FORMAT
from ..runtime.models import PluginRecord
from ..storefront.slots import TIME_FORMATS
from .pages import form_fields, page

bp = Blueprint("console_publishing", __name__, template_folder="templates", url_prefix="/console/publishing")

#: The upload form's file field.
PACKAGE_FIELD = "package"
#: Room in an upload's body for the form around the package: boundaries, part headers, the CSRF token.
FORM_ROOM = 16 * 1024
#: Actions that take a release time (``lifecycle.apply`` accepts ``release_at`` only on these).
TIMED_ACTIONS = frozenset({"approve"})
#: The time zones a release time may be typed in. China Standard Time has no daylight saving, so
#: a fixed offset is exact (and needs no time zone database).
RELEASE_ZONES = {"UTC": timezone.utc, "UTC+08:00": timezone(timedelta(hours=8))}
#: Notifications shown on one page.
NOTIFICATIONS_PER_PAGE = 100
#: What ``?done=`` may say on a version's page besides an action of the table.
UPLOADED, SAME_FILES = "upload", "same"


class PackageTooLarge(PublishingRefused):
    """The form's package is larger than a package may be."""

    status = 413
    title = "Package too large"


def _too_large() -> PackageTooLarge:
    limit = Limits().archive_bytes
    return PackageTooLarge(_("A package may have at most %(limit)s bytes (%(mib)s MiB); this one has more.",
                             limit=f"{limit:,}", mib=limit // (1024 * 1024)))


# -- who is asking, and what they may see ---------------------------------------------------------


def current_actor() -> Actor:
    """The signed-in member of staff as the publishing rules see them."""
    return Actor.staff(current_staff())


def _no_such_version() -> Problem:
    return Problem(404, _("No such version"), _("No version of that name was uploaded, or it is not yours to see."))


def visible_version(actor: Actor, plugin_id: str, version: str) -> PackageVersion:
    """The version when ``actor`` may see it; the 404 answer when it does not exist or is not
    theirs to see (that refusal audited as ``publishing.read``)."""
    if len(version) > 64 or not SEMVER.match(version):
        raise _no_such_version()
    try:
        return services.version_of(db.session(), actor, plugin_id, version)
    except UnknownVersion:
        raise _no_such_version() from None
    except NotAllowed as exc:
        audit_refusal(actor, "read", exc, plugin_id, version)
        raise _no_such_version() from None


def audit_refusal(actor: Actor, action: str, refused: PublishingRefused, plugin_id: str | None = None,
                  version: str | None = None) -> None:
    """Record a refused publishing request as the API records it: ``denied`` when it was not the
    actor's to do, ``failure`` otherwise."""
    audit.record(f"publishing.{action}"[:64], outcome=audit.DENIED if refused.status == 403 else audit.FAILURE,
                 actor=actor.id, plugin_id=plugin_id, subject=f"{plugin_id}@{version or ''}" if plugin_id else None,
                 branch=actor.branch, detail={"status": refused.status, "reason": refused.reason[:200]})


def attempt(actor: Actor, action: str, work: Callable[[], Any], plugin_id: str | None = None,
            version: str | None = None) -> tuple[Any, PublishingRefused | None]:
    """Run ``work()``: its result and None, or None and the refusal it raised (audited once its
    transaction is rolled back)."""
    try:
        return work(), None
    except IntegrityError:  # a concurrent request made the same change first
        return None, WrongState(_("Someone changed this at the same time; reload and try again."))
    except PublishingRefused as exc:
        audit_refusal(actor, action, exc, plugin_id, version)
        return None, exc


def in_one_transaction(work: Callable[[Any], Any]) -> Any:
    """``work(session)`` in one write transaction: committed when it returns, rolled back when it raises."""
    with db.get_database().transaction(write=True) as session:
        return work(session)


# -- mini-programs I publish --------------------------------------------------------------------


def published_plugins(actor: Actor) -> list[tuple[PluginRecord, list[PackageVersion]]]:
    """The plugins of the publisher ``actor`` publishes for, each with its uploaded versions
    (newest first); empty for someone who publishes nothing."""
    publisher = services.publisher_of(actor)
    if publisher is None:
        return []
    session = db.session()
    records = session.scalars(select(PluginRecord).where(PluginRecord.publisher_kind == publisher[0],
                                                         PluginRecord.publisher_id == publisher[1])
                              .order_by(PluginRecord.id))
    return [(record, services.versions_of(session, actor, record.id)) for record in records]


@bp.get("")
@staff_required()
def index():
    """The mini-programs the viewer publishes: a branch's for its staff, the bank's for head office."""
    actor = current_actor()
    locale = request_locale()
    plugins = [{"record": record, "name": pick(locale, record.name or {}), "versions": versions}
               for record, versions in published_plugins(actor)]
    return page("publishing/index.html", plugins=plugins, publisher=services.publisher_of(actor))


# -- uploading ----------------------------------------------------------------------------------


@bp.url_value_preprocessor
def _room_for_packages(endpoint: str | None, values: dict | None) -> None:
    """Give an upload's body room for a package, and refuse one announcing more before a byte of
    it is read. It runs before the app's before-request hooks: the CSRF check among them reads
    the form, which the app's smaller body limit would refuse."""
    if endpoint != f"{bp.name}.upload" or request.method != "POST":
        return
    request.max_content_length = Limits().archive_bytes + FORM_ROOM
    if request.content_length is not None and request.content_length > request.max_content_length:
        raise _too_large()
    if request.content_length is None:
        # Sent in chunks, without a length: the limit is met while the form is read, so read it
        # here (the CSRF check would next) and refuse an oversized one as a package too large.
        try:
            request.form
        except RequestEntityTooLarge:
            raise _too_large() from None


@bp.errorhandler(PackageTooLarge)
def _package_too_large(refused: PackageTooLarge):
    """The upload form again, saying how large a package may be (413)."""
    if current_staff() is None:
        return respond(Problem(413, _("Package too large"), refused.reason))
    actor = current_actor()
    audit_refusal(actor, "upload", refused)
    return _upload_page(actor, status=413, refused=refused)


def _upload_page(actor: Actor, *, status: int = 200, refused: PublishingRefused | None = None):
    return page("publishing/upload.html", status, publisher=services.publisher_of(actor), refused=refused,
                limit=Limits().archive_bytes, field=PACKAGE_FIELD)


def package_file() -> bytes:
    """The form's package, read up to one byte past the limit of a package (and refused there)."""
    chosen = request.files.get(PACKAGE_FIELD)
    if chosen is None or not chosen.filename:
        raise InvalidInput({PACKAGE_FIELD: [_("choose the package: the zip archive of the plugin's folder")]})
    limit = Limits().archive_bytes
    data = chosen.stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large()
    return data


def manifest_id(data: bytes) -> str:
    """The plugin id a package's manifest names: the form has no other (the API's address does)."""
    try:
        return read_package(data).manifest.id
    except PackageRefused as exc:
        raise PackageInvalid(str(exc)) from None


@bp.get("/upload")
@staff_required()
def upload_form():
    """The form to upload a package."""
    return _upload_page(current_actor())


@bp.post("/upload")
@staff_required()
def upload():
    """Upload the form's package as a draft version, then show it (or the form, with the reason)."""
    actor = current_actor()

    def work():
        data = package_file()
        plugin_id = manifest_id(data)  # read before the write transaction begins
        return in_one_transaction(lambda session: services.upload(session, actor, plugin_id, data,
                                                                   services.package_store()))

    found, refused = attempt(actor, "upload", work)
    if refused is not None:
        return _upload_page(actor, status=refused.status, refused=refused)
    row, created = found
    return redirect(version_url(row, done=UPLOADED if created else SAME_FILES), 303)


# -- a version ----------------------------------------------------------------------------------


def version_url(row: PackageVersion, **query) -> str:
    """The address of a version's page."""
    return url_for(f"{bp.name}.version", plugin_id=row.plugin_id, version=row.version, **query)


def allowed_actions(actor: Actor, row: PackageVersion) -> list[lifecycle.Transition]:
    """The console's actions ``actor`` may take on ``row`` now, in the transition table's order."""
    return [transition for action, transition in lifecycle.TRANSITIONS.items()
            if action in PERFORMERS and lifecycle.decide(actor, action, row)]


def _done(value: str | None) -> str | None:
    return value if value in PERFORMERS or value in (UPLOADED, SAME_FILES) else None


def _version_page(actor: Actor, row: PackageVersion, *, status: int = 200, refused: PublishingRefused | None = None,
                  failed: str | None = None, entered: dict | None = None):
    locale = request_locale()
    return page("publishing/version.html", status, row=row, name=pick(locale, row.manifest.get("name") or {}),
                history=lifecycle.history(db.session(), row), actions=allowed_actions(actor, row),
                report=row.prereview, report_format=REPORT_FORMAT, refused=refused, failed=failed,
                entered=entered or {}, done=_done(request.args.get("done")) if status == 200 else None,
                timed=TIMED_ACTIONS, zones=RELEASE_ZONES, max_reason=lifecycle.MAX_REASON)


@bp.get("/plugins/<plugin_id>/versions/<version>")
@staff_required()
def version(plugin_id: str, version: str):
    """A version: its manifest, status, pre-review report, history and the viewer's actions."""
    actor = current_actor()
    return _version_page(actor, visible_version(actor, plugin_id, version))


def release_at(form: dict[str, str]) -> datetime | None:
    """The release time typed in the form (``release_at``, a ``datetime-local`` value, in the zone
    ``release_zone`` names); None when empty. The lifecycle checks that it lies in the future."""
    text = (form.get("release_at") or "").strip()
    if not text:
        return None
    zone = RELEASE_ZONES.get(form.get("release_zone") or "UTC")
    if zone is None:
        raise InvalidInput({"release_zone": [_("must be one of: %(zones)s", zones=", ".join(RELEASE_ZONES))]})
    for pattern in TIME_FORMATS if len(text) <= 40 else ():
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=zone)
        except ValueError:
            pass
    raise InvalidInput({"release_at": [_("must be a date and time like 2025-03-04T06:00")]})


def _submit(session, actor: Actor, row: PackageVersion, action: str, form: dict[str, str]) -> PackageVersion:
    """Submit, exactly as the API submits (the pre-review follows the commit: see :func:`act`)."""
    return services.submit(session, actor, row.plugin_id, row.version, reason=form.get("reason", ""))


def _change_status(session, actor: Actor, row: PackageVersion, action: str, form: dict[str, str]) -> PackageVersion:
    """A change of status alone, through the lifecycle (with a release time where one is taken)."""
    when = release_at(form) if action in TIMED_ACTIONS else None
    return lifecycle.apply(session, actor, row.plugin_id, row.version, action, reason=form.get("reason", ""),
                           release_at=when)


#: The actions of the transition table the console takes, each with the function that takes it:
#: those of the API's version endpoints, taken the way the API takes them. Only these are offered
#: (to whoever :func:`host.publishing.lifecycle.decide` allows) and accepted.
PERFORMERS: dict[str, Callable[..., PackageVersion]] = {
    action: _submit if action == "submit" else _change_status for action in PUBLISHER_ACTIONS + REVIEW_ACTIONS
}


def perform(session, actor: Actor, row: PackageVersion, action: str, form: dict[str, str]) -> PackageVersion:
    """Take ``action`` (one of :data:`PERFORMERS`) on ``row`` with the form's reason (and release time)."""
    return PERFORMERS[action](session, actor, row, action, form)


@bp.post("/plugins/<plugin_id>/versions/<version>/<action>")
@staff_required()
def act(plugin_id: str, version: str, action: str):
    """Take an action of the transition table on a version, then show it again (Post/Redirect/Get);
    a refusal shows the page with the reason and the refusal's status."""
    actor = current_actor()
    row = visible_version(actor, plugin_id, version)
    if action not in PERFORMERS:
        raise Problem(404, _("No such action"), _("There is no action of that name here."))
    form = form_fields()

    def work():
        return in_one_transaction(lambda session: perform(session, actor, row, action, form))

    _changed, refused = attempt(actor, action, work, row.plugin_id, row.version)
    if refused is not None:
        return _version_page(actor, row, status=refused.status, refused=refused, failed=action, entered=form)
    if action == "submit":
        prereview_runs.after_submit(current_app._get_current_object(), row.plugin_id, row.version)
    return redirect(version_url(row, done=action), 303)


# -- head office's queue, publishers' notifications ---------------------------------------------


def queue_statuses(raw: str | None) -> tuple[str, ...]:
    """The statuses the queue lists: the one ``?status=`` names, or those waiting for a reviewer
    and in review; a 422 answer for a word that is no status."""
    if not raw:
        return QUEUE_DEFAULT
    if raw not in lifecycle.Status.ALL:
        raise Problem(422, _("Invalid request"), _("status must be one of: %(statuses)s",
                                                   statuses=", ".join(lifecycle.Status.ALL)))
    return (raw,)


@bp.get("/review")
@staff_required()
def review_queue():
    """Head office's review queue: versions waiting for a reviewer or in review (or in the status
    ``?status=`` names), oldest change first."""
    actor = current_actor()
    statuses = queue_statuses(request.args.get("status"))
    try:
        rows = services.review_queue(db.session(), actor, statuses)
    except NotAllowed as exc:
        audit_refusal(actor, "queue", exc)
        raise Problem(403, _("Not allowed"), exc.reason) from None
    locale = request_locale()
    return page("publishing/queue.html", items=[{"row": row, "name": pick(locale, row.manifest.get("name") or {})}
                                                for row in rows],
                chosen=request.args.get("status") or None, statuses=lifecycle.Status.ALL)


@bp.get("/notifications")
@staff_required()
def notifications():
    """The notifications of the viewer's publisher, oldest first, a page at a time (``?after=`` an id)."""
    actor = current_actor()
    raw = request.args.get("after", "0")
    after = int(raw) if raw.isascii() and raw.isdecimal() and len(raw) <= 18 else 0
    try:
        rows = services.notifications(db.session(), actor, after=after, limit=NOTIFICATIONS_PER_PAGE)
    except NotAllowed as exc:
        audit_refusal(actor, "notifications", exc)
        raise Problem(403, _("Not allowed"), exc.reason) from None
    more = rows[-1].id if len(rows) == NOTIFICATIONS_PER_PAGE else None
    return page("publishing/notifications.html", rows=rows, after=after, more=more)
