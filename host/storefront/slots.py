"""Banners and feed cards: which a storefront shows now, and changing them.

A slot belongs to one branch, or to every branch (``branch_code`` None, head office's). What a
form or API call sends is checked whole by :func:`read_slot` before anything is written, and
every change goes through :func:`create_slot`, :func:`update_slot` or :func:`delete_slot`, which
check the operating rights (:func:`host.storefront.rights.authorize`) and audit the change in
its own transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .. import audit
from ..db import utcnow
from ..identity.models import Staff
from ..runtime.models import PluginRecord
from . import links
from .errors import InvalidChange, NotFound
from .models import CustomerTag, SlotKind, StorefrontSlot
from .rights import Action, authorize
from .services import is_plugin_id
from .tags import check_tag

MAX_TAGS = 10
STATIC = re.compile(r"/static/[A-Za-z0-9_-][A-Za-z0-9._/-]*\Z")
MP_LINK = re.compile(r"mp:(?P<plugin>[a-z0-9.-]{3,64})(?P<path>/[^\s#]*)?\Z")
#: The form of times in forms (an HTML ``datetime-local`` field), read as UTC.
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")
EDITABLE = ("title_zh", "title_en", "body_zh", "body_en", "image", "link", "starts_at", "ends_at", "tags", "position")


# -- reading what staff sent -----------------------------------------------------------------


def _printable(value: str) -> None:
    if any(ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValidationError(_("must not contain control characters"))


def _https(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.hostname) and not any(ch.isspace() for ch in value)


def _image(value: str) -> None:
    if not value:
        return
    if _https(value):
        return
    if STATIC.match(value) and ".." not in value.split("/"):
        folder = Path(current_app.static_folder or "").resolve()
        if (folder / value.removeprefix("/static/")).resolve().is_file():
            return
        raise ValidationError(_("there is no such file among the host's static files"))
    raise ValidationError(_("must be an https:// address or a path of the host's static files (/static/…)"))


def _link(value: str) -> None:
    if not value or _https(value):
        return
    if MP_LINK.match(value) and is_plugin_id(MP_LINK.match(value).group("plugin")):  # type: ignore[union-attr]
        return
    raise ValidationError(_("must be an https:// address or a mini-program page (mp:plugin.id/path)"))


class _Time(fields.Field):
    """A time in UTC from a form (``2025-03-04T06:00``) or an ISO 8601 string; empty means open."""

    default_error_messages = {"invalid": _l("must be a date and time like 2025-03-04T06:00 (UTC)")}

    def _deserialize(self, value, attr, data, **kwargs):
        if value in (None, ""):
            return None
        if not isinstance(value, str) or len(value) > 40:
            raise self.make_error("invalid")
        for form in TIME_FORMATS:
            try:
                return datetime.strptime(value, form).replace(tzinfo=timezone.utc)
            except ValueError:
                pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _text(size: int, *, required: bool) -> fields.String:
    messages = {"required": _l("is required"), "invalid": _l("must be text")}
    checks = [validate.Length(min=1 if required else 0, max=size,
                              error=_l("must be between {min} and {max} characters")), _printable]
    if required:
        return fields.String(required=True, validate=checks, error_messages=messages)
    return fields.String(load_default="", validate=checks, error_messages=messages)


class SlotSchema(Schema):
    """A banner or feed card as staff send it."""

    class Meta:
        unknown = EXCLUDE

    title_zh = _text(60, required=True)
    title_en = _text(60, required=True)
    body_zh = _text(200, required=False)
    body_en = _text(200, required=False)
    image = fields.String(load_default="", validate=[validate.Length(max=500, error=_l("must be at most {max} characters")), _printable, _image],
                          error_messages={"invalid": _l("must be text")})
    link = fields.String(load_default="", validate=[validate.Length(max=500, error=_l("must be at most {max} characters")), _printable, _link],
                         error_messages={"invalid": _l("must be text")})
    starts_at = _Time(load_default=None)
    ends_at = _Time(load_default=None)
    tags = fields.List(fields.String(validate=check_tag),
                       load_default=list, validate=validate.Length(max=MAX_TAGS, error=_l("at most {max} tags")),
                       error_messages={"invalid": _l("must be a list of tags")})
    position = fields.Integer(load_default=0, strict=False, validate=validate.Range(min=0, max=9999, error=_l("must be a whole number from {min} to {max}")),
                              error_messages={"invalid": _l("must be a whole number from 0 to 9999")})

    @pre_load
    def _from_form(self, data, **kwargs):
        data = dict(data)
        for name in ("title_zh", "title_en", "body_zh", "body_en", "image", "link"):
            if isinstance(data.get(name), str):
                data[name] = data[name].strip()
        if isinstance(data.get("tags"), str):  # a form sends "wealth, new-customer"
            if len(data["tags"]) <= 400:  # longer is no list of tags, and fails as one
                data["tags"] = [tag.strip() for tag in data["tags"].split(",") if tag.strip()]
        if data.get("position") == "":
            data.pop("position")
        return data

    @validates_schema(skip_on_field_errors=False)
    def _schedule(self, data, **kwargs):
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            raise ValidationError(_("must be after the start"), "ends_at")

    @post_load
    def _unique_tags(self, data, **kwargs):
        data["tags"] = sorted(set(data.get("tags") or []))
        return data


def _flatten(messages: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, found in (messages or {}).items():
        if isinstance(found, dict):  # a list field's messages by index
            out[name] = sorted({str(text) for texts in found.values() for text in (texts if isinstance(texts, list) else [texts])})
        else:
            out[name] = [str(text) for text in (found if isinstance(found, list) else [found])]
    return out


def read_slot(session: Session, data: Mapping[str, Any], *, kind: Any = SlotKind.BANNER) -> dict[str, Any]:
    """The slot's fields from ``data`` (a form or a JSON object), checked; :class:`InvalidChange`
    naming every wrong field otherwise (a link to a mini-program that is not registered included)."""
    errors: dict[str, list[str]] = {}
    if kind not in SlotKind.ALL:
        errors["kind"] = [_("must be one of: %(kinds)s", kinds=", ".join(SlotKind.ALL))]
    if not isinstance(data, Mapping):
        raise InvalidChange({**errors, "_schema": [_("must be an object")]})
    try:
        clean = SlotSchema().load({name: data.get(name) for name in EDITABLE if data.get(name) is not None})
    except ValidationError as exc:
        errors.update(_flatten(exc.messages))
        clean = {}
    link = clean.get("link") or ""
    if link.startswith("mp:") and session.get(PluginRecord, MP_LINK.match(link).group("plugin")) is None:  # type: ignore[union-attr]
        errors.setdefault("link", []).append(_("there is no mini-program with that id"))
    if errors:
        raise InvalidChange(errors)
    return clean


# -- changing ------------------------------------------------------------------------------


def slot_action(kind: str, branch_code: str | None) -> Action:
    """The action that changing a slot of ``kind`` on ``branch_code`` (None: bank-wide) is."""
    if branch_code is None:
        return Action.BANK_SLOTS
    return Action.BANNERS if kind == SlotKind.BANNER else Action.FEED


def _as_audit(slot: StorefrontSlot) -> dict[str, Any]:
    return {"kind": slot.kind, "title_en": slot.title_en, "link": slot.link, "image": slot.image, "tags": list(slot.tags or []),
            "starts_at": slot.starts_at.isoformat() if slot.starts_at else None,
            "ends_at": slot.ends_at.isoformat() if slot.ends_at else None, "position": slot.position}


def get_slot(session: Session, slot_id: Any) -> StorefrontSlot:
    """The slot ``slot_id``; :class:`NotFound` when there is none (or the id is no id)."""
    try:
        number = int(slot_id)
    except (TypeError, ValueError):
        raise NotFound(f"there is no slot {str(slot_id)[:20]!r}") from None
    slot = session.get(StorefrontSlot, number) if 0 < number < 2**31 else None
    if slot is None:
        raise NotFound(f"there is no slot {number}")
    return slot


def create_slot(session: Session, staff: Staff, branch_code: str | None, kind: Any, data: Mapping[str, Any]) -> StorefrontSlot:
    """Add a banner or feed card to ``branch_code``'s storefront (None: every storefront)."""
    authorize(session, staff, slot_action(kind if kind in SlotKind.ALL else SlotKind.BANNER, branch_code), branch_code)
    clean = read_slot(session, data, kind=kind)
    slot = StorefrontSlot(kind=kind, branch_code=branch_code, updated_by=staff.username, updated_at=utcnow(), **clean)
    session.add(slot)
    session.flush()
    audit.record("storefront.slot_created", outcome=audit.SUCCESS, actor=staff.username, subject=f"slot:{slot.id}",
                 branch=branch_code or "*", detail={"new": _as_audit(slot)}, session=session)
    return slot


def update_slot(session: Session, staff: Staff, slot_id: Any, data: Mapping[str, Any]) -> StorefrontSlot:
    """Change a slot's texts, image, link, schedule, tags and position (not its kind or branch)."""
    slot = get_slot(session, slot_id)
    authorize(session, staff, slot_action(slot.kind, slot.branch_code), slot.branch_code)
    clean = read_slot(session, data, kind=slot.kind)
    before = _as_audit(slot)
    for name, value in clean.items():
        setattr(slot, name, value)
    slot.updated_by, slot.updated_at = staff.username, utcnow()
    session.flush()
    audit.record("storefront.slot_changed", outcome=audit.SUCCESS, actor=staff.username, subject=f"slot:{slot.id}",
                 branch=slot.branch_code or "*", detail={"old": before, "new": _as_audit(slot)}, session=session)
    return slot


def delete_slot(session: Session, staff: Staff, slot_id: Any) -> None:
    """Remove a slot."""
    slot = get_slot(session, slot_id)
    authorize(session, staff, slot_action(slot.kind, slot.branch_code), slot.branch_code)
    audit.record("storefront.slot_deleted", outcome=audit.SUCCESS, actor=staff.username, subject=f"slot:{slot.id}",
                 branch=slot.branch_code or "*", detail={"old": _as_audit(slot)}, session=session)
    session.delete(slot)
    session.flush()


# -- what a storefront shows -----------------------------------------------------------------


@dataclass(frozen=True)
class ShownSlot:
    """A slot as a storefront renders it, in one locale."""

    id: int
    kind: str
    bank_wide: bool
    title: str
    body: str
    image: str
    href: str
    external: bool


def slot_href(link: str, branch_code: str, locale: str) -> str:
    """Where a slot's ``link`` leads from ``branch_code``'s storefront (empty: nowhere)."""
    found = MP_LINK.match(link or "")
    if found:
        return links.page_url(found.group("plugin"), found.group("path") or "/", branch_code, locale)
    return link or ""


def storefront_slots(session: Session, branch_code: str, locale: str, customer_id: str | None,
                     now: datetime | None = None) -> dict[str, list[ShownSlot]]:
    """The banners and feed cards ``branch_code``'s storefront shows at ``now`` (UTC) to
    ``customer_id`` (None: anonymous), by kind, in order: position, bank-wide before the
    branch's own, then oldest first. One query, and one more for the customer's tags when a
    slot targets tags."""
    now = now or utcnow()
    rows = session.scalars(
        select(StorefrontSlot)
        .where(
            or_(StorefrontSlot.branch_code == branch_code, StorefrontSlot.branch_code.is_(None)),
            or_(StorefrontSlot.starts_at.is_(None), StorefrontSlot.starts_at <= now),
            or_(StorefrontSlot.ends_at.is_(None), StorefrontSlot.ends_at > now),
        )
        .order_by(StorefrontSlot.position, StorefrontSlot.branch_code.is_not(None), StorefrontSlot.id)
    ).all()
    tags: frozenset[str] = frozenset()
    if customer_id is not None and any(row.tags for row in rows):
        tags = frozenset(session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id)))
    shown: dict[str, list[ShownSlot]] = {kind: [] for kind in SlotKind.ALL}
    for row in rows:
        if row.tags and not tags.intersection(row.tags):
            continue
        if row.kind not in shown:
            continue
        shown[row.kind].append(ShownSlot(row.id, row.kind, row.branch_code is None, row.title(locale), row.body(locale),
                                         row.image, slot_href(row.link, branch_code, locale), row.link.startswith("https:")))
    return shown


def slots_of(session: Session, branch_code: str | None) -> list[StorefrontSlot]:
    """Every slot of ``branch_code`` (None: the bank-wide ones), scheduled or not, for the console."""
    where = StorefrontSlot.branch_code.is_(None) if branch_code is None else StorefrontSlot.branch_code == branch_code
    return list(session.scalars(select(StorefrontSlot).where(where).order_by(StorefrontSlot.kind, StorefrontSlot.position,
                                                                             StorefrontSlot.id)))
