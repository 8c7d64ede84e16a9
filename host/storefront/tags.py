"""Customer tags: the names banners and feed cards target, which customers carry them, and
staff adding and removing them.

A tag is one word of lower-case letters, digits and ``-`` (:func:`check_tag`: the one rule,
which the slot form applies to its targeting tags too). Tags belong to customers, not to
branches: a customer tagged ``wealth`` sees every ``wealth`` banner, bank-wide or their
branch's. Staff change the tags of one branch's customers at a time, as
:func:`host.storefront.rights.authorize` allows (:attr:`~host.storefront.rights.Action.TAGS`:
head office administrators every branch's, branch staff their own branch's); every change is
audited in its own transaction, and input is checked whole before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .. import audit
from ..identity.models import Customer, Staff
from .errors import InvalidChange
from .models import CUSTOMER_ID, TAG, CustomerTag, StorefrontSlot
from .rights import Action, authorize, check

#: Most tags one customer carries (a storefront reads them all when a slot targets tags).
MAX_TAGS_PER_CUSTOMER = 50
#: Most customers a page lists for one tag (the total is counted and shown).
LIST_LIMIT = 200
PHONE = re.compile(r"\+?[0-9]{3,20}\Z")
#: Longest customer reference read (a phone with spaces, or an id); longer is no reference.
MAX_REFERENCE = 40


def check_tag(value: Any) -> None:
    """Raise :class:`marshmallow.ValidationError` unless ``value`` is a tag name: 1 to 32
    lower-case letters, digits or ``-``, starting with a letter or digit. (A marshmallow
    validator, so forms and schemas share it.)"""
    if not isinstance(value, str) or not TAG.match(value):
        raise ValidationError(_("tags are lower-case letters, digits and '-', up to 32 each"))


@dataclass(frozen=True)
class TagUse:
    """A tag as a branch's page lists it: how many of the branch's customers carry it, and
    whether a banner or feed card the branch shows targets it."""

    tag: str
    customers: int
    targeted: bool


# -- reading -----------------------------------------------------------------------------------


def _tag_field(value: Any, errors: dict[str, list[str]]) -> str:
    tag = value.strip() if isinstance(value, str) else value
    try:
        check_tag(tag)
    except ValidationError as exc:
        errors["tag"] = [str(message) for message in exc.messages]
        return ""
    return tag


def read_tag(value: Any) -> str:
    """The tag name ``value`` (surrounding spaces dropped); :class:`InvalidChange` naming
    ``tag`` otherwise."""
    errors: dict[str, list[str]] = {}
    tag = _tag_field(value, errors)
    if errors:
        raise InvalidChange(errors)
    return tag


def targeted_tags(session: Session, branch_code: str) -> frozenset[str]:
    """The tags that the banners and feed cards ``branch_code``'s storefront can show target
    (its own and the bank-wide ones, scheduled or not)."""
    rows = session.scalars(select(StorefrontSlot.tags).where(
        (StorefrontSlot.branch_code == branch_code) | StorefrontSlot.branch_code.is_(None)))
    return frozenset(tag for tags in rows for tag in (tags or []) if isinstance(tag, str))


def branch_tags(session: Session, branch_code: str) -> list[TagUse]:
    """The tags of ``branch_code``'s customers with how many carry each, and the tags its
    storefront's slots target that no customer of it carries yet; by name."""
    counted = dict(session.execute(
        select(CustomerTag.tag, func.count())
        .join(Customer, Customer.id == CustomerTag.customer_id)
        .where(Customer.branch_code == branch_code)
        .group_by(CustomerTag.tag)).all())
    targeted = targeted_tags(session, branch_code)
    return [TagUse(tag, counted.get(tag, 0), tag in targeted) for tag in sorted(set(counted) | targeted)]


def tags_by_branch(session: Session) -> dict[str, list[tuple[str, int]]]:
    """Every branch's customer tags with how many of its customers carry each (head office's
    overview); branches without tagged customers are missing."""
    found: dict[str, list[tuple[str, int]]] = {}
    rows = session.execute(
        select(Customer.branch_code, CustomerTag.tag, func.count())
        .join(Customer, Customer.id == CustomerTag.customer_id)
        .group_by(Customer.branch_code, CustomerTag.tag)
        .order_by(Customer.branch_code, CustomerTag.tag))
    for code, tag, count in rows:
        found.setdefault(code, []).append((tag, count))
    return found


def tagged_customers(session: Session, branch_code: str, tag: str, limit: int = LIST_LIMIT) -> tuple[list[Customer], int]:
    """The first ``limit`` of ``branch_code``'s customers carrying ``tag`` (by phone), and how
    many carry it in all."""
    where = (CustomerTag.tag == tag, Customer.branch_code == branch_code)
    joined = select(Customer).join(CustomerTag, CustomerTag.customer_id == Customer.id).where(*where)
    total = session.scalar(select(func.count()).select_from(CustomerTag)
                           .join(Customer, Customer.id == CustomerTag.customer_id).where(*where)) or 0
    return list(session.scalars(joined.order_by(Customer.phone).limit(limit))), total


def masked_phone(phone: str) -> str:
    """``phone`` as staff pages list it: the first three and last four digits (``138****0001``)."""
    if len(phone) <= 7:
        return phone[:1] + "*" * max(len(phone) - 1, 0)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def _customer_field(session: Session, staff: Staff, branch_code: str, value: Any,
                    errors: dict[str, list[str]]) -> Customer | None:
    """The customer of ``branch_code`` that ``value`` (a mobile number or a customer id) names;
    None with a message under ``customer`` otherwise. A customer of another branch reads as no
    customer to whoever may not look at that branch, so branch staff learn nothing of others'."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        errors["customer"] = [_("is required: the customer's mobile number or customer id")]
        return None
    compact = text.replace(" ", "").replace("-", "")
    if len(text) <= MAX_REFERENCE and CUSTOMER_ID.match(text.lower()):
        customer = session.get(Customer, text.lower())
    elif len(text) <= MAX_REFERENCE and PHONE.match(compact):
        customer = session.scalar(select(Customer).where(Customer.phone == compact))
    else:
        errors["customer"] = [_("must be a mobile number (digits) or a customer id (32 hex digits)")]
        return None
    if customer is not None and customer.branch_code == branch_code:
        return customer
    if customer is not None and check(staff, Action.VIEW, customer.branch_code):
        errors["customer"] = [_("this customer belongs to branch %(branch)s; change their tags there",
                                branch=customer.branch_code)]
    else:
        errors["customer"] = [_("no customer of branch %(branch)s has this mobile number or id", branch=branch_code)]
    return None


# -- changing ------------------------------------------------------------------------------


def add_tag(session: Session, staff: Staff, branch_code: str, data: dict[str, Any]) -> tuple[Customer, str]:
    """Tag a customer of ``branch_code``: ``data`` holds ``tag`` and ``customer`` (their mobile
    number or id). Adding a tag the customer carries already is an :class:`InvalidChange`, also
    when another request added it a moment earlier (never a duplicate, never an error of the
    database)."""
    authorize(session, staff, Action.TAGS, branch_code)
    errors: dict[str, list[str]] = {}
    tag = _tag_field(data.get("tag"), errors)
    customer = _customer_field(session, staff, branch_code, data.get("customer"), errors)
    if customer is not None and tag:
        carried = session.scalar(select(func.count()).select_from(CustomerTag)
                                 .where(CustomerTag.customer_id == customer.id)) or 0
        if carried >= MAX_TAGS_PER_CUSTOMER:
            errors["tag"] = [_("this customer carries %(count)d tags, the most there may be; remove one first",
                               count=carried)]
    if errors:
        raise InvalidChange(errors)
    assert customer is not None
    if not _insert_once(session, customer.id, tag):
        raise InvalidChange({"tag": [_("this customer carries this tag already")]})
    audit.record("storefront.customer_tag_added", outcome=audit.SUCCESS, actor=staff.username,
                 subject=f"customer:{customer.id}", branch=branch_code, detail={"tag": tag}, session=session)
    return customer, tag


def _insert_once(session: Session, customer_id: str, tag: str) -> bool:
    """Insert the tag unless the customer has it (whoever added it, however recently): whether
    this call inserted it. One statement, so two requests at once cannot both insert it."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the host runs on these two
        raise RuntimeError(f"customer tags need PostgreSQL or SQLite, not {dialect}")
    statement = (insert(CustomerTag).values(customer_id=customer_id, tag=tag).on_conflict_do_nothing()
                 .returning(CustomerTag.tag))
    return session.execute(statement).first() is not None


def remove_tag(session: Session, staff: Staff, branch_code: str, data: dict[str, Any]) -> tuple[Customer, str]:
    """Take ``tag`` off the customer of ``branch_code`` that ``customer`` names. A tag the
    customer does not carry (perhaps removed a moment earlier) is an :class:`InvalidChange`."""
    authorize(session, staff, Action.TAGS, branch_code)
    errors: dict[str, list[str]] = {}
    tag = _tag_field(data.get("tag"), errors)
    customer = _customer_field(session, staff, branch_code, data.get("customer"), errors)
    if errors:
        raise InvalidChange(errors)
    assert customer is not None
    removed = session.execute(delete(CustomerTag).where(CustomerTag.customer_id == customer.id, CustomerTag.tag == tag))
    if removed.rowcount != 1:
        raise InvalidChange({"tag": [_("this customer does not carry this tag (removed meanwhile?)")]})
    audit.record("storefront.customer_tag_removed", outcome=audit.SUCCESS, actor=staff.username,
                 subject=f"customer:{customer.id}", branch=branch_code, detail={"tag": tag}, session=session)
    return customer, tag
