"""Signing in, locking out and step-up, for customers, staff and partner developers.

Every attempt is audited (success and failure) without the secret. After
``MAX_FAILED_ATTEMPTS`` wrong passwords an account is locked for ``LOCKOUT``; a
wrong payment PIN counts apart from the password. The account row is locked while
an attempt is checked, so concurrent wrong guesses are all counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from flask import current_app
from sqlalchemy import select

from .. import audit
from ..db import get_database, utcnow
from .models import Customer, PartnerDeveloper, Staff, _Lockable
from .passwords import Hasher

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
PIN_LOCKOUT = timedelta(minutes=30)

T = TypeVar("T", bound=_Lockable)


class SignInFailed(Exception):
    """Wrong credentials, or a locked account. ``reason`` is safe to show: it never says
    whether the account exists."""

    def __init__(self, reason: str, *, locked: bool = False) -> None:
        self.reason = reason
        self.locked = locked
        super().__init__(reason)


@dataclass(frozen=True)
class PinCheck:
    """The result of a payment PIN check."""

    ok: bool
    locked: bool = False
    attempts_left: int = 0


def hasher() -> Hasher:
    """The app's password hasher."""
    app = current_app
    found = app.extensions.get("canopy.hasher")
    if found is None:
        found = app.extensions["canopy.hasher"] = Hasher(app.config)
    return found


def _check(account: T | None, stored: str | None, secret: str) -> tuple[bool, bool]:
    """(matches, needs_rehash); an unknown account costs the same check and never matches."""
    matches, rehash = hasher().verify(stored, secret)
    return account is not None and matches, rehash


def _register_failure(account: _Lockable, lockout: timedelta) -> bool:
    account.failed_attempts += 1
    if account.failed_attempts >= MAX_FAILED_ATTEMPTS:
        account.locked_until = utcnow() + lockout
        account.failed_attempts = 0
        return True
    return False


def _is_locked(until) -> bool:
    return until is not None and until > utcnow()


def _names_no_one(text: str) -> bool:
    """Whether ``text`` cannot be a stored login or id: a NUL (PostgreSQL refuses it) or a
    lone surrogate (no driver encodes it). Such input must not reach the database."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\x00" in text


def _sign_in(model: type[T], column, login: str, password: str, action: str) -> T:
    if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
        raise SignInFailed("enter your sign-in name and password")
    with get_database().transaction(write=True) as session:
        account = None if _names_no_one(login) else session.scalar(select(model).where(column == login).with_for_update())
        if account is not None and _is_locked(account.locked_until):
            outcome, locked = "locked", True
        elif (checked := _check(account, account.password_hash if account else None, password))[0]:
            account.failed_attempts = 0
            account.locked_until = None
            if checked[1]:
                account.password_hash = hasher().hash(password)
            outcome, locked = audit.SUCCESS, False
        else:
            locked = account is not None and _register_failure(account, LOCKOUT)
            outcome = audit.FAILURE
        account_id = account.id if account is not None else None
    audit.record(action, outcome=outcome if outcome != "locked" else audit.DENIED, actor=account_id,
                 detail={"login": _mask(login), "locked": locked})
    if outcome == audit.SUCCESS:
        return account  # type: ignore[return-value]
    if locked:
        raise SignInFailed("too many failed attempts; the account is locked for a while", locked=True)
    raise SignInFailed("the sign-in name or password is wrong")


def _mask(login: str) -> str:
    """A login as audit entries show it: enough to find the account, not the whole identifier."""
    login = login[:64]
    return login[:3] + "*" * max(len(login) - 5, 0) + login[-2:] if len(login) > 5 else "*" * len(login)


def sign_in_customer(phone: str, password: str) -> Customer:
    """Return the customer with ``phone`` if ``password`` is right; raise :class:`SignInFailed`."""
    return _sign_in(Customer, Customer.phone, phone, password, "customer.sign_in")


def sign_in_staff(username: str, password: str) -> Staff:
    """Return the staff member if ``password`` is right; raise :class:`SignInFailed`."""
    return _sign_in(Staff, Staff.username, username, password, "staff.sign_in")


def sign_in_developer(email: str, password: str) -> PartnerDeveloper:
    """Return the partner developer if ``password`` is right; raise :class:`SignInFailed`."""
    return _sign_in(PartnerDeveloper, PartnerDeveloper.email, email, password, "developer.sign_in")


def verify_payment_pin(customer_id: str, pin: str) -> PinCheck:
    """Step-up: check the customer's payment PIN (kept apart from the password).

    Five wrong PINs lock payments for 30 minutes. Every check is audited, never the PIN.
    """
    with get_database().transaction(write=True) as session:
        customer = None if not isinstance(customer_id, str) or _names_no_one(customer_id) else session.scalar(
            select(Customer).where(Customer.id == customer_id).with_for_update())
        if customer is None:
            raise LookupError(f"no customer {customer_id!r}")
        if _is_locked(customer.pin_locked_until):
            result = PinCheck(False, locked=True)
        elif isinstance(pin, str) and customer.pin_hash and hasher().verify(customer.pin_hash, pin)[0]:
            customer.pin_failed_attempts = 0
            result = PinCheck(True, attempts_left=MAX_FAILED_ATTEMPTS)
        else:
            customer.pin_failed_attempts += 1
            left = MAX_FAILED_ATTEMPTS - customer.pin_failed_attempts
            if left <= 0:
                customer.pin_locked_until = utcnow() + PIN_LOCKOUT
                customer.pin_failed_attempts = 0
            result = PinCheck(False, locked=left <= 0, attempts_left=max(left, 0))
    outcome = audit.SUCCESS if result.ok else (audit.DENIED if result.locked else audit.FAILURE)
    audit.record("customer.payment_pin", outcome=outcome, actor=customer_id, detail={"locked": result.locked})
    return result
