"""Signing in, locking out and step-up, for customers, staff and partner developers.

Every attempt is audited (success and failure) without the secret. After
``MAX_FAILED_ATTEMPTS`` wrong passwords an account is locked for ``LOCKOUT``; a
wrong payment PIN counts apart from the password. The account row is locked while
an attempt is checked, so concurrent wrong guesses are all counted. Passwords are
Argon2id hashes (:mod:`.passwords`); payment PINs are keyed HMACs (:mod:`.pins`).
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
from .pins import PinHasher, PinKeyring

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


def pin_hasher() -> PinHasher:
    """The app's payment PIN hasher (its keys from ``PIN_KEY``, or ``SECRET_KEY``, and
    ``PIN_KEYS_OLD``). Raises :class:`~host.config.ConfigError` when no key is configured."""
    app = current_app
    found = app.extensions.get("canopy.pin_hasher")
    if found is None:
        found = PinHasher(PinKeyring.from_config(app.config), legacy=hasher)
        app.extensions["canopy.pin_hasher"] = found
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


def _find_customer(session, customer_id: str) -> Customer:
    """The customer row, locked for this transaction; LookupError when there is none."""
    customer = None if not isinstance(customer_id, str) or _names_no_one(customer_id) else session.scalar(
        select(Customer).where(Customer.id == customer_id).with_for_update())
    if customer is None:
        raise LookupError(f"no customer {customer_id!r}")
    return customer


def verify_payment_pin(customer_id: str, pin: str) -> PinCheck:
    """Step-up: check the customer's payment PIN (kept apart from the password).

    Five wrong PINs lock payments for 30 minutes. Every check is audited, never the PIN.
    A right PIN stored with an old key (or as an Argon2 hash of an earlier version) is
    stored again with the current key, in the same transaction. A stored value that cannot
    be checked at all (made with a key this host lacks, or malformed) is logged and fails
    without counting an attempt: no PIN could pass it, so there is nothing to guess.
    """
    pins = pin_hasher()  # a missing key is a ConfigError before anything is counted
    problem, rehashed = None, False
    with get_database().transaction(write=True) as session:
        customer = _find_customer(session, customer_id)
        if _is_locked(customer.pin_locked_until):
            result = PinCheck(False, locked=True)
        elif (checked := pins.verify(customer.id, customer.pin_hash, pin)).matches:
            if customer.pin_failed_attempts:
                customer.pin_failed_attempts = 0
            if checked.rehashed:
                customer.pin_hash, rehashed = checked.rehashed, True
            result = PinCheck(True, attempts_left=MAX_FAILED_ATTEMPTS)
        elif checked.problem:
            problem = checked.problem
            result = PinCheck(False, attempts_left=max(MAX_FAILED_ATTEMPTS - customer.pin_failed_attempts, 0))
        else:
            customer.pin_failed_attempts += 1
            left = MAX_FAILED_ATTEMPTS - customer.pin_failed_attempts
            if left <= 0:
                customer.pin_locked_until = utcnow() + PIN_LOCKOUT
                customer.pin_failed_attempts = 0
            result = PinCheck(False, locked=left <= 0, attempts_left=max(left, 0))
        outcome = audit.SUCCESS if result.ok else (audit.DENIED if result.locked else audit.FAILURE)
        detail: dict = {"locked": result.locked}
        if rehashed:
            detail["rehashed"] = True
        if problem:
            detail["problem"] = problem
        # In the check's own transaction: the entry and the attempt count stand or fall together.
        audit.record("customer.payment_pin", outcome=outcome, actor=customer_id, detail=detail, session=session)
    return result


def set_payment_pin(customer_id: str, pin: str) -> None:
    """Give the customer a new payment PIN (six digits; :class:`~.pins.InvalidPin` otherwise),
    stored with the current key, and lift any PIN lock. Audited, never the PIN.

    This is what a PIN reset ends with, after the bank has checked who the customer is; it
    checks nothing itself.
    """
    pins = pin_hasher()
    with get_database().transaction(write=True) as session:
        customer = _find_customer(session, customer_id)
        customer.pin_hash = pins.hash(customer.id, pin)
        customer.pin_failed_attempts = 0
        customer.pin_locked_until = None
    audit.record("customer.payment_pin_set", outcome=audit.SUCCESS, actor=customer_id)
