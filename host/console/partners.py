"""The console of partner developers, ``/console/partner``: their organisation's mini-programs
as the registry holds them, and each one's OAuth client settings (redirect URIs, JWKS).

A signed-in :class:`~host.identity.models.PartnerDeveloper` sees only plugins published by
their own organisation (publisher ``partner:<org id>``); any other id — another
organisation's plugin or none at all — answers the same 404, so the console never tells
the two apart. Changes go through :func:`host.oauth.clients.update_client`, the one place
the rules of keys and redirect URIs live (the client's own API calls the same function),
in one transaction with their audit event.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, db
from ..i18n import pick, request_locale
from ..identity.models import PartnerDeveloper, PartnerOrg
from ..identity.sessions import current_developer, developer_required
from ..oauth import clients
from ..oauth.models import OAuthClient
from ..problems import Problem
from ..runtime.models import PluginRecord
from ..storefront.services import is_plugin_id

bp = Blueprint("console_partners", __name__, template_folder="templates", url_prefix="/console/partner")

PARTNER = "partner"
#: Longest form texts read; longer ones are refused before any parsing.
MAX_REDIRECT_URIS_TEXT = clients.MAX_REDIRECT_URIS * (clients.MAX_URI_LENGTH + 2)
MAX_JWKS_TEXT = 2 * clients.MAX_JWKS_BYTES  # room for indentation
#: The settings a developer may change, with the form field that carries each.
SETTINGS = ("redirect_uris", "jwks")


def org_plugins(session: Session, org_id: str) -> list[PluginRecord]:
    """The plugins ``org_id`` publishes, by id."""
    query = select(PluginRecord).where(PluginRecord.publisher_kind == PARTNER, PluginRecord.publisher_id == org_id)
    return list(session.scalars(query.order_by(PluginRecord.id)))


def own_plugin(session: Session, developer: PartnerDeveloper, plugin_id: str) -> PluginRecord:
    """The plugin ``plugin_id`` if the developer's organisation publishes it; else a 404
    :class:`~host.problems.Problem` — the same for another organisation's plugin as for none."""
    record = session.get(PluginRecord, plugin_id) if is_plugin_id(plugin_id) else None
    if record is not None and record.publisher_kind == PARTNER and record.publisher_id == developer.org_id:
        return record
    if record is not None:  # someone else's: worth knowing that it was tried
        audit.record("console.partner_plugin", outcome=audit.DENIED, actor=developer.id, subject=developer.org_id,
                     plugin_id=plugin_id, detail={"method": request.method})
    raise Problem(404, "No such plugin", _("Your organisation has no mini-program with that id."))


def _headers() -> dict[str, str]:
    return {"Cache-Control": "no-store"}


@bp.get("")
@developer_required
def home():
    """The organisation's mini-programs with their versions, states and approved scopes."""
    developer = current_developer()
    session = db.session()
    locale = request_locale()
    org = session.get(PartnerOrg, developer.org_id)
    plugins = org_plugins(session, developer.org_id)
    registered = {client.client_id: client for client in session.scalars(
        select(OAuthClient).where(OAuthClient.client_id.in_([p.id for p in plugins])))} if plugins else {}
    html = render_template(
        "console/partners/home.html", locale=locale, developer=developer,
        org_name=(org.name_en if locale.startswith("en") else org.name_zh) if org else developer.org_id,
        plugins=[{"record": p, "name": pick(locale, p.name), "latest": p.versions[-1] if p.versions else None,
                  "client": registered.get(p.id)} for p in plugins],
    )
    return html, 200, _headers()


def _page(session: Session, developer: PartnerDeveloper, record: PluginRecord, *, status: int = 200,
          errors: dict[str, list[str]] | None = None, entered: dict[str, str] | None = None, saved: str | None = None):
    locale = request_locale()
    client = session.get(OAuthClient, record.id)
    current = {
        "redirect_uris": "\n".join(client.redirect_uris) if client else "",
        "jwks": json.dumps(client.jwks, indent=2, ensure_ascii=False) if client else "",
    }
    html = render_template(
        "console/partners/plugin.html", locale=locale, developer=developer, record=record,
        name=pick(locale, record.name), versions=list(reversed(record.versions)), client=client,
        editable=client is not None and client.disabled_at is None,
        text={**current, **(entered or {})}, errors=errors or {}, saved=saved if saved in SETTINGS else None,
    )
    return html, status, _headers()


@bp.get("/plugins/<plugin_id>")
@developer_required
def plugin(plugin_id: str):
    """One mini-program: every registered version and its OAuth client settings."""
    developer = current_developer()
    session = db.session()
    record = own_plugin(session, developer, plugin_id)
    return _page(session, developer, record, saved=request.args.get("saved"))


def _form_text(name: str, limit: int) -> tuple[str, list[str]]:
    """The form field ``name`` and, when it is too long, the reason it is refused."""
    value = request.form.get(name, "")
    if len(value) > limit:
        return value[:limit], [_("At most %(count)d characters.", count=limit)]
    return value, []


def read_redirect_uris(text: str) -> list[str]:
    """The redirect URIs of the form's text: one a line, blank lines left out."""
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def read_jwks(text: str) -> Any:
    """The JWKS of the form's text, or :class:`~host.oauth.clients.ClientRegistrationError`."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise clients.ClientRegistrationError({"jwks": [_("This is not valid JSON.")]}) from None


def _save(plugin_id: str, setting: str):
    developer = current_developer()
    record = own_plugin(db.session(), developer, plugin_id)
    limit = MAX_REDIRECT_URIS_TEXT if setting == "redirect_uris" else MAX_JWKS_TEXT
    text, too_long = _form_text(setting, limit)
    action = f"console.client_{setting}"
    try:
        if too_long:
            raise clients.ClientRegistrationError({setting: too_long})
        value = read_redirect_uris(text) if setting == "redirect_uris" else read_jwks(text)
        with db.get_database().transaction(write=True) as session:
            client = clients.active_client(session, plugin_id)
            if client is None:
                raise Problem(409, "Conflict", _("Head office has not registered this mini-program as an OAuth client "
                                                 "yet, or has disabled it; ask them first."))
            clients.update_client(session, client, **{setting: value},
                                  loopback_http=bool(current_app.config["DEVELOPMENT"]))
            audit.record(action, outcome=audit.SUCCESS, actor=developer.id, subject=developer.org_id,
                         plugin_id=plugin_id, detail={"redirect_uris": len(client.redirect_uris),
                                                      "jwks_size": len(client.jwks["keys"])},
                         session=session)
    except clients.ClientRegistrationError as exc:
        audit.record(action, outcome=audit.FAILURE, actor=developer.id, subject=developer.org_id,
                     plugin_id=plugin_id, detail={"fields": sorted(exc.errors)[:20]})
        return _page(db.session(), developer, record, status=422, errors=exc.errors, entered={setting: text})
    return redirect(url_for("console_partners.plugin", plugin_id=plugin_id, saved=setting), 303)


@bp.post("/plugins/<plugin_id>/redirect-uris")
@developer_required
def save_redirect_uris(plugin_id: str):
    """Replace the client's redirect URIs with the form's, one a line."""
    return _save(plugin_id, "redirect_uris")


@bp.post("/plugins/<plugin_id>/jwks")
@developer_required
def save_jwks(plugin_id: str):
    """Replace the client's JWKS (public keys only) with the form's JSON."""
    return _save(plugin_id, "jwks")
