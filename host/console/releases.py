"""Releasing in the staff console, ``/console/publishing/plugins/<id>/release``: which versions a
mini-program's customers get — stable, gray with its rule, previous, head office's kill switch —
the health of its gray version next to the automatic rollback's thresholds, its promotion to the
whole bank, and the forms that change them (docs/console.md, "Releasing in the console").

As on the other publishing pages, views only read forms and answer. Every rule lives in
:mod:`host.publishing.releases` and :mod:`host.publishing.promotion`, called exactly as the API
calls them (:data:`host.api.releases.ACTIONS` and ``PROMOTION_ACTIONS``). A form is offered only
to whoever may use it now — :func:`host.publishing.lifecycle.decide` for the actions on a
version, the roles the modules check for the rest — and every post is checked by those same
functions however it was made. A change is one write transaction answered with 303 back to the
page; a refusal changes nothing, is audited as the API audits it, and shows the page with the
reason (for wrong input, next to the fields) and its status (403, 404, 409, 422). A mini-program
the viewer may not see answers 404, like one that does not exist.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from canopy_sdk.manifest import SEMVER
from flask import Blueprint, current_app, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from .. import db
from ..api.releases import ACTIONS, HEAD_OFFICE_ACTIONS, PROMOTION_ACTIONS, ROLLOUT_ACTIONS
from ..db import utcnow
from ..i18n import pick, request_locale
from ..identity.models import StaffRole
from ..identity.sessions import staff_required
from ..problems import Problem
from ..publishing import health, lifecycle, promotion, releases, services
from ..publishing.actors import BRANCH, Actor, publishes_for
from ..publishing.errors import InvalidInput, NotAllowed, PublishingRefused, UnknownVersion
from ..publishing.models import PackageVersion, PluginPromotion, PluginRelease
from ..publishing.rollout import GrayRule
from ..runtime import get_runtime
from ..runtime.models import PluginRecord
from .pages import form_fields, page
from .publishing import attempt, audit_refusal, current_actor, in_one_transaction

bp = Blueprint("console_releases", __name__, template_folder="templates", url_prefix="/console/publishing")

#: What separates the branch codes, tags and customer ids typed in one field: spaces and line
#: breaks, commas and semicolons (Chinese ones too).
SEPARATORS = re.compile(r"[\s,;，；、]+")
#: A percentage as typed: digits with at most one decimal point (anything else is handed on as
#: typed, for the rule's own check to name).
NUMBER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{0,12})?|\.[0-9]{1,12}")
#: The release actions the page takes: the API's rollout and head office's kill switch.
RELEASE_ACTIONS = ROLLOUT_ACTIONS + HEAD_OFFICE_ACTIONS
#: The actions whose form asks for a reason (the modules refuse them without one).
REASON_REQUIRED = frozenset({"rollback", "suspend", "reinstate", "propose", "decline", "withdraw"})
#: Every field of the forms, for showing each message of wrong input next to its field.
FIELDS = ("version", "rule", "rule.branches", "rule.tags", "rule.testers", "rule.percent", "reason")


def _no_such_plugin() -> Problem:
    return Problem(404, _("No such mini-program"), _("No mini-program has that id, or it is not yours to see."))


def visible_plugin(actor: Actor, plugin_id: str) -> PluginRecord:
    """The mini-program when ``actor`` may see it (its publisher, head office); the 404 answer when
    it does not exist or is not theirs to see (that refusal audited as ``publishing.read``)."""
    try:
        services.check_plugin_id(plugin_id)
    except UnknownVersion:
        raise _no_such_plugin() from None
    record = db.session().get(PluginRecord, plugin_id)
    if record is None:
        raise _no_such_plugin()
    if not services.may_read(actor, record.publisher_kind, record.publisher_id):
        audit_refusal(actor, "read", NotAllowed("only the plugin's publisher and head office see its release"),
                      plugin_id)
        raise _no_such_plugin()
    return record


def release_url(plugin_id: str, **query) -> str:
    """The address of a mini-program's release page."""
    return url_for(f"{bp.name}.release", plugin_id=plugin_id, **query)


# -- reading the forms ----------------------------------------------------------------------------


def _words(text: object) -> list[str]:
    return [word for word in SEPARATORS.split(text) if word] if isinstance(text, str) else []


def rule_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The gray rule the form describes, as the API takes it: ``branches`` and ``tags`` separated
    by spaces or commas, ``testers`` one customer id a line, ``percent`` a number (empty: 0).
    Nothing is corrected: :mod:`host.publishing.releases` checks the rule and names each field."""
    percent = (form.get("percent") or "").strip()
    return {"branches": _words(form.get("branches")), "tags": _words(form.get("tags")),
            "testers": _words(form.get("testers")),
            "percent": float(percent) if NUMBER.fullmatch(percent) else percent or 0}


def release_body(action: str, form: dict[str, str]) -> dict[str, Any]:
    """The body of a release action as the API would receive it, built from the form."""
    taken = ACTIONS[action][0]
    body: dict[str, Any] = {"reason": form.get("reason", "")}
    if "rule" in taken:
        body["rule"] = rule_from_form(form)
    if "version" in taken:
        body["version"] = chosen_version(form)
        if body["version"] is None:
            raise InvalidInput({"version": [_("choose the approved version to release")]})
    return body


def chosen_version(form: dict[str, str]) -> str | None:
    """The version the form names, when it has the shape of one (None otherwise: nothing else is
    looked up or recorded)."""
    version = (form.get("version") or "").strip()
    return version if len(version) <= 64 and SEMVER.match(version) else None


# -- the page -------------------------------------------------------------------------------------


def rule_in_words(rule: GrayRule) -> list[tuple[str, str]]:
    """Who a gray rule selects, each part as (its name, in words)."""
    parts = []
    if rule.percent:
        parts.append(("percent", _("%(percent)s%% of all customers", percent=f"{rule.percent:g}")))
    if rule.branches:
        parts.append(("branches", _("customers of branches %(codes)s", codes=", ".join(sorted(rule.branches)))))
    if rule.tags:
        parts.append(("tags", _("customers tagged %(tags)s", tags=", ".join(sorted(rule.tags)))))
    if rule.testers:
        parts.append(("testers", _("named testers: %(count)s", count=len(rule.testers))))
    return parts


def rule_as_form(rule: GrayRule) -> dict[str, str]:
    """A rule as the form's fields (the widening form starts from the current rule)."""
    return {"branches": ", ".join(sorted(rule.branches)), "tags": ", ".join(sorted(rule.tags)),
            "testers": "\n".join(sorted(rule.testers)), "percent": f"{rule.percent:g}"}


def _judged(rate: float | None, count: int, minimum: int, limit: float) -> str:
    if rate is None or count < minimum:
        return "too_few"
    return "above" if rate > limit else "below"


def release_health(session: Session, row: PluginRelease | None) -> dict[str, Any] | None:
    """The gray version's figures over the automatic rollback's window, with its thresholds."""
    if row is None or row.gray is None:
        return None
    thresholds = current_app.extensions[health.EXTENSION].thresholds
    figures = health.measure(session, row, utcnow(), timedelta(seconds=thresholds.window_seconds))
    return {"figures": figures, "thresholds": thresholds, "since": datetime.fromisoformat(figures["since"]),
            "minutes": f"{thresholds.window_seconds / 60:g}",
            "errors": _judged(figures["error_rate"], figures["calls"], thresholds.min_calls,
                              thresholds.max_error_rate),
            "payments": _judged(figures["payment_failure_rate"], figures["payments"], thresholds.min_payments,
                                thresholds.max_payment_failure_rate)}


def offered(actor: Actor, record: PluginRecord, serving: releases.Serving, versions: list[PackageVersion],
            promoted: PluginPromotion | None) -> tuple[set[str], list[PackageVersion]]:
    """The forms ``actor`` may use now, and the versions they may start a gray release of."""
    by_version = {row.version: row for row in versions}
    forms: set[str] = set()
    candidates = [row for row in versions if lifecycle.decide(actor, "start_gray", row)]
    gray, stable = by_version.get(serving.gray or ""), by_version.get(serving.stable or "")
    if not serving.suspended:
        if candidates and serving.gray is None:
            forms.add("gray")
        forms.update(action for action in ("widen", "release")
                     if gray is not None and lifecycle.decide(actor, action, gray))
    # a rollback takes the gray version back, else returns from the stable version to the previous one
    target = gray if serving.gray is not None else stable if serving.previous is not None else None
    if target is not None and lifecycle.decide(actor, "rollback", target):
        forms.add("rollback")
    if actor.has(StaffRole.HQ_ADMIN):
        forms.add("reinstate" if serving.suspended else "suspend")
    status = promoted.status if promoted is not None else None
    if record.publisher_kind == BRANCH:
        if (status not in (promotion.Status.PROPOSED, promotion.Status.APPROVED) and actor.has(StaffRole.BRANCH_ADMIN)
                and publishes_for(actor, record.publisher_kind, record.publisher_id)):
            forms.add("propose")
        if actor.has(StaffRole.HQ_ADMIN) and actor.branch != record.publisher_id:
            forms.update({promotion.Status.PROPOSED: ("approve", "decline"),
                          promotion.Status.APPROVED: ("withdraw",)}.get(status, ()))
    return forms, candidates


def _done(value: str | None) -> str | None:
    return value if value in ACTIONS or value in PROMOTION_ACTIONS else None


def _release_page(actor: Actor, record: PluginRecord, *, status: int = 200, refused: PublishingRefused | None = None,
                  failed: str | None = None, entered: dict | None = None):
    session = db.session()
    serving = releases.serving(session, record.id, releases.baseline(get_runtime(), record.id))
    row = session.get(PluginRelease, record.id)
    versions = services.versions_of(session, actor, record.id)
    promoted = session.get(PluginPromotion, record.id)
    forms, candidates = offered(actor, record, serving, versions, promoted)
    errors = dict(getattr(refused, "errors", {}) or {})
    inline = {name: texts for name, texts in errors.items() if name in FIELDS} if failed in forms else {}
    return page("publishing/release.html", status, record=record, name=pick(request_locale(), record.name or {}),
                serving=serving, baseline=row is None and serving.stable is not None,
                rule=rule_in_words(serving.rule), rule_form=rule_as_form(serving.rule),
                since=row.gray_since if row is not None else None, suspended_at=row.suspended_at if row else None,
                health=release_health(session, row), versions=versions, candidates=candidates, forms=forms,
                promotion=promotion.document(promoted, record.id), promotes=record.publisher_kind == BRANCH,
                refused=refused, failed=failed, entered=entered or {}, inline=inline,
                other_errors={name: texts for name, texts in errors.items() if name not in inline},
                done=_done(request.args.get("done")) if status == 200 else None,
                required=REASON_REQUIRED, max_reason=lifecycle.MAX_REASON, now=utcnow())


@bp.get("/plugins/<plugin_id>/release")
@staff_required()
def release(plugin_id: str):
    """A mini-program's release: who gets which version, the gray version's health, the promotion
    to the whole bank, and the forms the viewer may use."""
    actor = current_actor()
    return _release_page(actor, visible_plugin(actor, plugin_id))


def _act(plugin_id: str, action: str, audited: str, run, version: str | None = None):
    actor = current_actor()
    record = visible_plugin(actor, plugin_id)
    form = form_fields()
    _changed, refused = attempt(actor, audited, lambda: in_one_transaction(lambda session: run(session, actor, form)),
                                record.id, version)
    if refused is not None:
        return _release_page(actor, record, status=refused.status, refused=refused, failed=action, entered=form)
    return redirect(release_url(record.id, done=action), 303)


@bp.post("/plugins/<plugin_id>/release/<action>")
@staff_required()
def release_act(plugin_id: str, action: str):
    """Start a gray release, widen it, release, roll back, suspend or reinstate, as the API does
    (audited as ``publishing.<action>`` when refused), then show the page again."""
    if action not in RELEASE_ACTIONS:
        raise Problem(404, _("No such action"), _("There is no action of that name here."))
    version = chosen_version(request.form) if action == "gray" else None
    return _act(plugin_id, action, action,
                lambda session, actor, form: ACTIONS[action][1](session, actor, plugin_id, release_body(action, form)),
                version)


@bp.post("/plugins/<plugin_id>/promotion/<action>")
@staff_required()
def promotion_act(plugin_id: str, action: str):
    """Propose the mini-program for the whole bank, or approve, decline or withdraw that (audited
    as ``publishing.<action>_promotion`` when refused), then show the page again."""
    if action not in PROMOTION_ACTIONS:
        raise Problem(404, _("No such action"), _("There is no action of that name here."))
    return _act(plugin_id, action, f"{action}_promotion",
                lambda session, actor, form: PROMOTION_ACTIONS[action][1](session, actor, plugin_id,
                                                                          reason=form.get("reason", "")))
