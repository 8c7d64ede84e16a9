"""host.identity.services: sign-in, lockout and the payment PIN step-up, all audited."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest

from host.audit import DENIED, FAILURE, SUCCESS
from host.config import ConfigError
from host.db import utcnow
from host.demo import CUSTOMERS, DEMO_PASSWORD, PARTNERS, STAFF
from host.identity import services
from host.identity.models import Customer, PartnerDeveloper, Staff
from host.identity.pins import MALFORMED, UNKNOWN_KEY, InvalidPin, derive_key, key_id
from host.identity.services import MAX_FAILED_ATTEMPTS, PinCheck, SignInFailed

PHONE, PASSWORD, PIN = CUSTOMERS[0][:3]
OTHER_PHONE, OTHER_PASSWORD, OTHER_PIN = CUSTOMERS[1][:3]
STAFF_NAME = STAFF[0][0]
DEVELOPER_EMAIL = PARTNERS[0][3]
WRONG_REASON = "the sign-in name or password is wrong"

#: (sign-in function, model, login column, login, password, audit action) for each kind of person.
KINDS = {
    "customer": (services.sign_in_customer, Customer, "phone", PHONE, PASSWORD, "customer.sign_in"),
    "staff": (services.sign_in_staff, Staff, "username", STAFF_NAME, DEMO_PASSWORD, "staff.sign_in"),
    "developer": (services.sign_in_developer, PartnerDeveloper, "email", DEVELOPER_EMAIL, DEMO_PASSWORD, "developer.sign_in"),
}


def masked(login: str) -> str:
    return login[:3] + "*" * (len(login) - 5) + login[-2:]


# --- signing in ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_right_password_signs_in(in_app, row, audit_log, kind):
    sign_in, model, column, login, password, action = KINDS[kind]
    person = sign_in(login, password)
    assert isinstance(person, model)
    assert getattr(person, column) == login
    assert person.id == row(model, **{column: login}).id
    [event] = audit_log(action)
    assert (event.outcome, event.actor) == (SUCCESS, person.id)
    assert event.detail == {"login": masked(login), "locked": False}


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_password_is_refused_and_counted(in_app, row, audit_log, kind):
    sign_in, model, column, login, password, action = KINDS[kind]
    with pytest.raises(SignInFailed) as caught:
        sign_in(login, password + "x")
    assert (caught.value.reason, caught.value.locked) == (WRONG_REASON, False)
    assert row(model, **{column: login}).failed_attempts == 1
    [event] = audit_log(action)
    assert (event.outcome, event.actor) == (FAILURE, row(model, **{column: login}).id)
    assert event.detail == {"login": masked(login), "locked": False}


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_account_gets_the_same_answer_as_a_wrong_password(in_app, audit_log, kind):
    sign_in, model, column, login, password, action = KINDS[kind]
    with pytest.raises(SignInFailed) as unknown:
        sign_in("nobody-" + login, password)
    with pytest.raises(SignInFailed) as wrong:
        sign_in(login, password + "x")
    # No account enumeration: the same type, message and flags either way.
    assert (str(unknown.value), unknown.value.reason, unknown.value.locked) == (str(wrong.value), wrong.value.reason, wrong.value.locked)
    nobody, _ = audit_log(action)
    assert (nobody.outcome, nobody.actor) == (FAILURE, None)
    assert nobody.detail["login"] == masked("nobody-" + login)


def test_one_customers_password_does_not_sign_in_another(in_app):
    with pytest.raises(SignInFailed):
        services.sign_in_customer(PHONE, OTHER_PASSWORD)


@pytest.mark.parametrize("near", [" " + PHONE, PHONE + " ", PHONE[:-1], PHONE + "0", "+86" + PHONE])
def test_the_phone_must_match_exactly(in_app, near):
    with pytest.raises(SignInFailed):
        services.sign_in_customer(near, PASSWORD)


def test_the_username_must_match_exactly(in_app):
    with pytest.raises(SignInFailed):
        services.sign_in_staff(STAFF_NAME.upper(), DEMO_PASSWORD)


@pytest.mark.parametrize(
    "login, password",
    [
        (None, PASSWORD),
        (PHONE, None),
        (13800000001, PASSWORD),
        (PHONE, 123456),
        (PHONE.encode(), PASSWORD),
        (PHONE, PASSWORD.encode()),
        ([PHONE], PASSWORD),
        (PHONE, {"password": PASSWORD}),
        ("", PASSWORD),
        (PHONE, ""),
        ("", ""),
    ],
)
def test_non_string_or_empty_input_is_refused_without_counting(in_app, row, login, password):
    with pytest.raises(SignInFailed) as caught:
        services.sign_in_customer(login, password)
    assert not caught.value.locked
    assert row(Customer, phone=PHONE).failed_attempts == 0


@pytest.mark.parametrize(
    "login",
    ["1380000\x000001", "\x00", PHONE + "\x00", "\ud800", PHONE[:-1] + "\ud800", "1" * 10_000, "🏦" * 50, "' OR '1'='1", "%", "_" * 11],
    ids=["nul-inside", "nul", "nul-after", "surrogate", "surrogate-after", "long", "emoji", "sql", "like-percent", "like-underscore"],
)
def test_hostile_logins_are_just_wrong(in_app, audit_log, login):
    with pytest.raises(SignInFailed) as caught:
        services.sign_in_customer(login, PASSWORD)
    assert caught.value.reason == WRONG_REASON
    [event] = audit_log("customer.sign_in")
    assert (event.outcome, event.actor) == (FAILURE, None)


def test_a_hostile_password_is_just_wrong(in_app, row):
    for password in ("\x00", "\ud800", "x" * 100_000, PASSWORD + "\x00"):
        with pytest.raises(SignInFailed):
            services.sign_in_customer(PHONE, password)
    assert row(Customer, phone=PHONE).failed_attempts == 4


# --- lockout ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(in_app, row, change, audit_log, kind):
    sign_in, model, column, login, password, action = KINDS[kind]
    where = {column: login}
    for attempt in range(1, MAX_FAILED_ATTEMPTS):
        with pytest.raises(SignInFailed) as caught:
            sign_in(login, f"wrong-{attempt}")
        assert not caught.value.locked
        assert row(model, **where).failed_attempts == attempt
        assert row(model, **where).locked_until is None

    with pytest.raises(SignInFailed) as fifth:
        sign_in(login, "wrong-5")
    assert fifth.value.locked
    before = utcnow()
    locked_until = row(model, **where).locked_until
    assert locked_until > before

    with pytest.raises(SignInFailed) as sixth:
        sign_in(login, password)  # the RIGHT password, while locked
    assert sixth.value.locked
    assert "locked" in sixth.value.reason
    assert row(model, **where).locked_until == locked_until  # refusing does not extend or lift the lock

    outcomes = [(event.outcome, event.detail["locked"]) for event in audit_log(action)]
    assert outcomes == [(FAILURE, False)] * 4 + [(FAILURE, True), (DENIED, True)]

    change(model, where, locked_until=utcnow() - timedelta(seconds=1))
    person = sign_in(login, password)
    assert getattr(person, column) == login
    after = row(model, **where)
    assert (after.failed_attempts, after.locked_until) == (0, None)


def test_after_a_lock_expires_it_takes_five_new_failures_to_lock_again(in_app, row, change):
    for attempt in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(SignInFailed):
            services.sign_in_customer(PHONE, "wrong")
    change(Customer, {"phone": PHONE}, locked_until=utcnow() - timedelta(seconds=1))
    with pytest.raises(SignInFailed) as caught:
        services.sign_in_customer(PHONE, "wrong")
    assert not caught.value.locked
    assert row(Customer, phone=PHONE).failed_attempts == 1


def test_a_success_resets_the_count_of_failures(in_app, row):
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        with pytest.raises(SignInFailed):
            services.sign_in_customer(PHONE, "wrong")
    services.sign_in_customer(PHONE, PASSWORD)
    assert row(Customer, phone=PHONE).failed_attempts == 0
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        with pytest.raises(SignInFailed) as caught:
            services.sign_in_customer(PHONE, "wrong")
        assert not caught.value.locked


def test_a_lock_is_per_account(in_app):
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(SignInFailed):
            services.sign_in_customer(PHONE, "wrong")
    assert services.sign_in_customer(OTHER_PHONE, OTHER_PASSWORD).phone == OTHER_PHONE


def test_the_lock_lasts_the_lockout_period(in_app, row):
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        with pytest.raises(SignInFailed):
            services.sign_in_customer(PHONE, "wrong")
    start = utcnow()
    with pytest.raises(SignInFailed):
        services.sign_in_customer(PHONE, "wrong")
    end = utcnow()
    assert start + services.LOCKOUT <= row(Customer, phone=PHONE).locked_until <= end + services.LOCKOUT


def test_the_pin_lock_lasts_its_own_period(customer_id, row):
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        services.verify_payment_pin(customer_id, "000000")
    start = utcnow()
    services.verify_payment_pin(customer_id, "000000")
    end = utcnow()
    assert start + services.PIN_LOCKOUT <= row(Customer, phone=PHONE).pin_locked_until <= end + services.PIN_LOCKOUT


def test_unknown_accounts_are_never_locked_or_stored(in_app, audit_log):
    for _ in range(MAX_FAILED_ATTEMPTS + 1):
        with pytest.raises(SignInFailed) as caught:
            services.sign_in_customer("13700000000", "wrong")
        assert caught.value.reason == WRONG_REASON
    assert {event.outcome for event in audit_log("customer.sign_in")} == {FAILURE}


# --- concurrency --------------------------------------------------------------------------


def _wrong_passwords_at_once(app, count: int) -> list[SignInFailed]:
    """``count`` threads try a wrong password on one account at the same moment."""
    start = threading.Barrier(count)
    failures: list[SignInFailed] = []
    errors: list[BaseException] = []

    def attempt(n: int) -> None:
        with app.app_context():
            start.wait()
            try:
                services.sign_in_customer(PHONE, f"wrong-{n}")
            except SignInFailed as exc:
                failures.append(exc)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return failures


def test_concurrent_wrong_passwords_are_all_counted(in_app, row):
    # Fewer than the limit, so the count itself is visible (no lost update).
    failures = _wrong_passwords_at_once(in_app, MAX_FAILED_ATTEMPTS - 1)
    assert len(failures) == MAX_FAILED_ATTEMPTS - 1
    customer = row(Customer, phone=PHONE)
    assert (customer.failed_attempts, customer.locked_until) == (MAX_FAILED_ATTEMPTS - 1, None)


def test_ten_wrong_passwords_at_once_lock_the_account_exactly_on_the_fifth(postgres_only, in_app, row, audit_log):
    failures = _wrong_passwords_at_once(in_app, 10)
    assert len(failures) == 10
    # Four plain failures, the fifth locks, the other five are refused as locked.
    assert sorted(failure.locked for failure in failures) == [False] * 4 + [True] * 6
    customer = row(Customer, phone=PHONE)
    assert customer.locked_until is not None and customer.locked_until > utcnow()
    assert customer.failed_attempts == 0  # the lock took the count
    events = audit_log("customer.sign_in")
    assert sorted((event.outcome, event.detail["locked"]) for event in events) == sorted(
        [(FAILURE, False)] * 4 + [(FAILURE, True)] + [(DENIED, True)] * 5
    )
    with pytest.raises(SignInFailed) as caught:
        services.sign_in_customer(PHONE, PASSWORD)
    assert caught.value.locked


# --- rehash -------------------------------------------------------------------------------


def test_sign_in_rehashes_the_password_when_the_parameters_rose(demo_app, app_factory, row):
    old = row(Customer, phone=PHONE).password_hash
    assert old.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    stronger = app_factory(ARGON2_TIME_COST=2)
    with stronger.app_context():
        with pytest.raises(SignInFailed):
            services.sign_in_customer(PHONE, "wrong")
        assert row(Customer, phone=PHONE).password_hash == old  # never on a failure
        services.sign_in_customer(PHONE, PASSWORD)
    new = row(Customer, phone=PHONE).password_hash
    assert new.startswith("$argon2id$v=19$m=8192,t=2,p=1$")
    with stronger.app_context():
        services.sign_in_customer(PHONE, PASSWORD)
        assert row(Customer, phone=PHONE).password_hash == new  # done once, not on every sign-in
    with demo_app.app_context():
        services.sign_in_customer(PHONE, PASSWORD)  # the hash carries its own parameters


def test_no_rehash_with_unchanged_parameters(in_app, row):
    old = row(Customer, phone=PHONE).password_hash
    services.sign_in_customer(PHONE, PASSWORD)
    assert row(Customer, phone=PHONE).password_hash == old


# --- the payment PIN ----------------------------------------------------------------------


@pytest.fixture
def customer_id(in_app, row) -> str:
    return row(Customer, phone=PHONE).id


def test_the_right_pin_passes(customer_id, audit_log):
    assert services.verify_payment_pin(customer_id, PIN) == PinCheck(True, locked=False, attempts_left=MAX_FAILED_ATTEMPTS)
    [event] = audit_log("customer.payment_pin")
    assert (event.outcome, event.actor, event.detail) == (SUCCESS, customer_id, {"locked": False})


def test_wrong_pins_count_down_then_lock(customer_id, row, change, audit_log):
    for left in range(MAX_FAILED_ATTEMPTS - 1, 0, -1):
        assert services.verify_payment_pin(customer_id, "000000") == PinCheck(False, locked=False, attempts_left=left)
    assert services.verify_payment_pin(customer_id, "000000") == PinCheck(False, locked=True, attempts_left=0)
    assert row(Customer, phone=PHONE).pin_locked_until > utcnow()
    # Locked: the right PIN is refused too.
    assert services.verify_payment_pin(customer_id, PIN) == PinCheck(False, locked=True, attempts_left=0)
    outcomes = [(event.outcome, event.detail["locked"]) for event in audit_log("customer.payment_pin")]
    assert outcomes == [(FAILURE, False)] * 4 + [(DENIED, True)] * 2
    assert all(event.actor == customer_id for event in audit_log("customer.payment_pin"))

    change(Customer, {"phone": PHONE}, pin_locked_until=utcnow() - timedelta(seconds=1))
    assert services.verify_payment_pin(customer_id, PIN).ok
    assert row(Customer, phone=PHONE).pin_failed_attempts == 0


def test_a_right_pin_resets_the_countdown(customer_id):
    for _ in range(MAX_FAILED_ATTEMPTS - 1):
        services.verify_payment_pin(customer_id, "000000")
    assert services.verify_payment_pin(customer_id, PIN).ok
    assert services.verify_payment_pin(customer_id, "000000").attempts_left == MAX_FAILED_ATTEMPTS - 1


def test_the_password_is_not_the_pin_and_the_pin_is_not_the_password(customer_id, row):
    assert not services.verify_payment_pin(customer_id, PASSWORD).ok
    assert not services.verify_payment_pin(customer_id, OTHER_PIN).ok
    with pytest.raises(SignInFailed):
        services.sign_in_customer(PHONE, PIN)
    customer = row(Customer, phone=PHONE)
    assert (customer.pin_failed_attempts, customer.failed_attempts) == (2, 1)  # each counts apart


def test_pin_failures_do_not_lock_sign_in(customer_id, row):
    for _ in range(MAX_FAILED_ATTEMPTS):
        services.verify_payment_pin(customer_id, "000000")
    assert services.verify_payment_pin(customer_id, PIN).locked
    customer = row(Customer, phone=PHONE)
    assert (customer.failed_attempts, customer.locked_until) == (0, None)
    assert services.sign_in_customer(PHONE, PASSWORD).id == customer_id


def test_a_password_lock_does_not_block_the_pin(customer_id):
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(SignInFailed):
            services.sign_in_customer(PHONE, "wrong")
    assert services.verify_payment_pin(customer_id, PIN).ok


def test_pin_locks_are_per_customer(customer_id, row):
    for _ in range(MAX_FAILED_ATTEMPTS):
        services.verify_payment_pin(customer_id, "000000")
    other = row(Customer, phone=OTHER_PHONE).id
    assert services.verify_payment_pin(other, OTHER_PIN).ok


@pytest.mark.parametrize("pin", [None, 147258, b"147258", "", "\x00", "\ud800", "1" * 10_000, ["147258"]])
def test_a_pin_that_is_not_a_string_of_the_pin_fails_and_counts(customer_id, row, pin):
    result = services.verify_payment_pin(customer_id, pin)
    assert result == PinCheck(False, locked=False, attempts_left=MAX_FAILED_ATTEMPTS - 1)
    assert row(Customer, phone=PHONE).pin_failed_attempts == 1


def test_a_customer_without_a_pin_never_passes(customer_id, change):
    change(Customer, {"phone": PHONE}, pin_hash=None)
    assert not services.verify_payment_pin(customer_id, PIN).ok
    assert not services.verify_payment_pin(customer_id, "").ok


@pytest.mark.parametrize("unknown", ["0" * 32, "", "no-such-customer", "\x00", "\ud800", None, 12345])
def test_an_unknown_customer_raises_lookup_error(in_app, audit_log, unknown):
    with pytest.raises(LookupError):
        services.verify_payment_pin(unknown, PIN)
    assert audit_log("customer.payment_pin") == []


# --- the PIN's keys: rotation, Argon2 values of earlier versions, keys this host lacks ------

NEW_PIN_KEY = "the-banks-next-payment-pin-key-0123456789"


def made_with(stored: str) -> str:
    """The key id of a stored PIN value."""
    assert stored.startswith("hmac-sha256$"), stored[:12]
    return stored.split("$")[1]


def test_a_pin_under_an_old_key_passes_and_is_stored_again_with_the_current_key(demo_app, app_factory, row, audit_log):
    secret = demo_app.config["SECRET_KEY"]
    before = row(Customer, phone=PHONE)
    derived = key_id(derive_key(secret.encode()))
    assert made_with(before.pin_hash) == derived  # seeded with the key derived from SECRET_KEY
    with app_factory(PIN_KEY=NEW_PIN_KEY, PIN_KEYS_OLD=[secret]).app_context():
        assert not services.verify_payment_pin(before.id, "000000").ok
        assert row(Customer, phone=PHONE).pin_hash == before.pin_hash  # never on a failure
        assert services.verify_payment_pin(before.id, PIN).ok
        after = row(Customer, phone=PHONE)
        assert made_with(after.pin_hash) == key_id(NEW_PIN_KEY.encode())
        assert after.pin_failed_attempts == 0
        assert services.verify_payment_pin(before.id, PIN).ok
        assert row(Customer, phone=PHONE).pin_hash == after.pin_hash  # once, not at every check
    with app_factory(PIN_KEY=NEW_PIN_KEY).app_context():  # the old key retired: this PIN has moved over
        assert services.verify_payment_pin(before.id, PIN).ok
    assert made_with(row(Customer, phone=OTHER_PHONE).pin_hash) == derived  # not checked yet, not touched
    details = [event.detail for event in audit_log("customer.payment_pin")]
    assert details == [{"locked": False}, {"locked": False, "rehashed": True}, {"locked": False}, {"locked": False}]


def test_the_rehash_is_written_in_the_checks_transaction(demo_app, app_factory, row, monkeypatch):
    before = row(Customer, phone=PHONE)
    with app_factory(PIN_KEY=NEW_PIN_KEY, PIN_KEYS_OLD=[demo_app.config["SECRET_KEY"]]).app_context():
        for _ in range(2):
            services.verify_payment_pin(before.id, "000000")

        def fail_after_the_check(ok, **kwargs):
            if ok:
                raise RuntimeError("the transaction fails after the right PIN was seen")
            return PinCheck(ok, **kwargs)

        monkeypatch.setattr(services, "PinCheck", fail_after_the_check)
        with pytest.raises(RuntimeError):
            services.verify_payment_pin(before.id, PIN)
        after = row(Customer, phone=PHONE)
        # Rolled back together: neither the new value nor the reset count was kept.
        assert (after.pin_hash, after.pin_failed_attempts) == (before.pin_hash, 2)
        monkeypatch.undo()
        assert services.verify_payment_pin(before.id, PIN).ok
        assert made_with(row(Customer, phone=PHONE).pin_hash) == key_id(NEW_PIN_KEY.encode())


def test_a_legacy_argon2_pin_passes_and_is_stored_again_as_a_keyed_hmac(customer_id, row, change, audit_log):
    legacy = services.hasher().hash(PIN)
    assert legacy.startswith("$argon2id$")
    change(Customer, {"phone": PHONE}, pin_hash=legacy)
    assert services.verify_payment_pin(customer_id, "000000") == PinCheck(False, attempts_left=MAX_FAILED_ATTEMPTS - 1)
    assert row(Customer, phone=PHONE).pin_hash == legacy
    assert services.verify_payment_pin(customer_id, PIN).ok
    stored = row(Customer, phone=PHONE).pin_hash
    assert made_with(stored) == services.pin_hasher().keyring.current_id
    assert services.verify_payment_pin(customer_id, PIN).ok
    assert row(Customer, phone=PHONE).pin_hash == stored
    assert [event.detail.get("rehashed") for event in audit_log("customer.payment_pin")] == [None, True, None]


def test_wrong_pins_against_a_legacy_hash_still_lock(customer_id, row, change):
    change(Customer, {"phone": PHONE}, pin_hash=services.hasher().hash(PIN))
    for _ in range(MAX_FAILED_ATTEMPTS):
        services.verify_payment_pin(customer_id, "000000")
    assert services.verify_payment_pin(customer_id, PIN) == PinCheck(False, locked=True, attempts_left=0)
    assert row(Customer, phone=PHONE).pin_hash.startswith("$argon2id$")


def test_a_pin_made_with_a_key_this_host_lacks_fails_closed_is_logged_and_not_counted(
        demo_app, app_factory, row, audit_log, caplog):
    customer = row(Customer, phone=PHONE)
    with app_factory(PIN_KEY=NEW_PIN_KEY).app_context(), caplog.at_level(logging.ERROR, logger="canopy.identity"):
        for _ in range(MAX_FAILED_ATTEMPTS + 1):
            assert services.verify_payment_pin(customer.id, PIN) == PinCheck(False, attempts_left=MAX_FAILED_ATTEMPTS)
    after = row(Customer, phone=PHONE)
    # Nothing could pass such a value, so nothing is counted and nothing is locked or rewritten.
    assert (after.pin_hash, after.pin_failed_attempts, after.pin_locked_until) == (customer.pin_hash, 0, None)
    errors = [record.getMessage() for record in caplog.records if record.name == "canopy.identity"]
    assert len(errors) == MAX_FAILED_ATTEMPTS + 1
    assert made_with(customer.pin_hash) in errors[0] and "PIN_KEYS_OLD" in errors[0] and customer.id in errors[0]
    assert {(event.outcome, json.dumps(event.detail, sort_keys=True)) for event in audit_log("customer.payment_pin")} == {
        (FAILURE, json.dumps({"locked": False, "problem": UNKNOWN_KEY}, sort_keys=True))}
    with demo_app.app_context():  # the app that has the key still checks it
        assert services.verify_payment_pin(customer.id, PIN).ok


@pytest.mark.parametrize("stored", ["hmac-sha256$garbage", "hmac-sha256$0123456789ab$!!!$!!!", "x" * 200, "147258"])
def test_a_malformed_stored_pin_fails_closed_without_counting(customer_id, row, change, audit_log, caplog, stored):
    change(Customer, {"phone": PHONE}, pin_hash=stored)
    with caplog.at_level(logging.ERROR, logger="canopy.identity"):
        assert services.verify_payment_pin(customer_id, PIN) == PinCheck(False, attempts_left=MAX_FAILED_ATTEMPTS)
    assert row(Customer, phone=PHONE).pin_failed_attempts == 0
    assert any("malformed" in record.getMessage() for record in caplog.records)
    [event] = audit_log("customer.payment_pin")
    assert (event.outcome, event.detail) == (FAILURE, {"locked": False, "problem": MALFORMED})


def test_an_unusable_value_does_not_hide_a_lock(customer_id, change):
    change(Customer, {"phone": PHONE}, pin_hash="hmac-sha256$garbage", pin_locked_until=utcnow() + timedelta(minutes=5))
    assert services.verify_payment_pin(customer_id, PIN) == PinCheck(False, locked=True, attempts_left=0)


def test_without_any_key_the_check_is_a_config_error_before_anything_is_counted(demo_app, app_factory, row, audit_log):
    customer_id = row(Customer, phone=PHONE).id
    with app_factory(SECRET_KEY=None).app_context():
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            services.verify_payment_pin(customer_id, PIN)
    assert row(Customer, phone=PHONE).pin_failed_attempts == 0
    assert audit_log("customer.payment_pin") == []


def test_a_pin_key_of_its_own_survives_a_new_secret_key(demo_app, app_factory, row):
    customer_id = row(Customer, phone=PHONE).id
    with app_factory(PIN_KEY=NEW_PIN_KEY).app_context():
        services.set_payment_pin(customer_id, "902746")
    with app_factory(PIN_KEY=NEW_PIN_KEY, SECRET_KEY="a-rotated-secret-key-0123456789abcdef").app_context():
        assert services.verify_payment_pin(customer_id, "902746").ok


def test_concurrent_right_pins_under_an_old_key_all_pass_and_leave_one_good_value(demo_app, app_factory, row):
    customer_id = row(Customer, phone=PHONE).id
    app = app_factory(PIN_KEY=NEW_PIN_KEY, PIN_KEYS_OLD=[demo_app.config["SECRET_KEY"]])
    start = threading.Barrier(4)
    results, errors = [], []

    def attempt() -> None:
        with app.app_context():
            start.wait()
            try:
                results.append(services.verify_payment_pin(customer_id, PIN).ok)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [True] * 4
    assert made_with(row(Customer, phone=PHONE).pin_hash) == key_id(NEW_PIN_KEY.encode())
    with app_factory(PIN_KEY=NEW_PIN_KEY).app_context():
        assert services.verify_payment_pin(customer_id, PIN).ok


# --- setting a PIN ------------------------------------------------------------------------


def test_setting_a_pin_replaces_it_and_lifts_the_lock(customer_id, row, audit_log):
    for _ in range(MAX_FAILED_ATTEMPTS):
        services.verify_payment_pin(customer_id, "000000")
    services.set_payment_pin(customer_id, "902746")
    customer = row(Customer, phone=PHONE)
    assert (customer.pin_failed_attempts, customer.pin_locked_until) == (0, None)
    assert made_with(customer.pin_hash) == services.pin_hasher().keyring.current_id
    assert not services.verify_payment_pin(customer_id, PIN).ok
    assert services.verify_payment_pin(customer_id, "902746").ok
    [event] = audit_log("customer.payment_pin_set")
    assert (event.outcome, event.actor, event.detail) == (SUCCESS, customer_id, {})


@pytest.mark.parametrize("pin", ["12345", "1234567", "abcdef", "", "１２３４５６", 902746, None])
def test_a_new_pin_must_be_six_digits(customer_id, row, audit_log, pin):
    before = row(Customer, phone=PHONE).pin_hash
    with pytest.raises(InvalidPin):
        services.set_payment_pin(customer_id, pin)
    assert row(Customer, phone=PHONE).pin_hash == before
    assert audit_log("customer.payment_pin_set") == []


@pytest.mark.parametrize("unknown", ["0" * 32, "", "\x00", None])
def test_setting_the_pin_of_an_unknown_customer_raises_lookup_error(in_app, unknown):
    with pytest.raises(LookupError):
        services.set_payment_pin(unknown, "902746")


def test_the_same_pin_is_stored_differently_for_each_customer_and_values_do_not_travel(in_app, row, change):
    first, second = row(Customer, phone=PHONE).id, row(Customer, phone=OTHER_PHONE).id
    services.set_payment_pin(first, "902746")
    services.set_payment_pin(second, "902746")
    first_value = row(Customer, phone=PHONE).pin_hash
    assert first_value != row(Customer, phone=OTHER_PHONE).pin_hash
    # Someone who can write the table copies the value of a PIN they know onto another customer.
    change(Customer, {"phone": OTHER_PHONE}, pin_hash=first_value)
    assert not services.verify_payment_pin(second, "902746").ok
    assert row(Customer, phone=OTHER_PHONE).pin_failed_attempts == 1


# --- nothing secret is written down -------------------------------------------------------


def test_no_password_or_pin_reaches_the_audit_log_or_the_logs(in_app, row, audit_log, caplog):
    caplog.set_level(logging.DEBUG)  # everything, SQL statements and their parameters included
    customer_id = row(Customer, phone=PHONE).id
    wrong_password, wrong_pin = "Wr0ng-passw0rd-Zq", "924613"
    services.sign_in_customer(PHONE, PASSWORD)
    services.sign_in_staff(STAFF_NAME, DEMO_PASSWORD)
    services.sign_in_developer(DEVELOPER_EMAIL, DEMO_PASSWORD)
    for _ in range(MAX_FAILED_ATTEMPTS + 1):
        with pytest.raises(SignInFailed) as caught:
            services.sign_in_customer(PHONE, wrong_password)
        assert wrong_password not in str(caught.value)
    with pytest.raises(SignInFailed):
        services.sign_in_customer("13700000000", wrong_password)
    for pin in (PIN, wrong_pin, wrong_pin, wrong_pin, wrong_pin, wrong_pin, PIN):
        services.verify_payment_pin(customer_id, pin)

    events = audit_log()
    assert len(events) == 3 + MAX_FAILED_ATTEMPTS + 1 + 1 + 7  # every attempt, one row each
    written = json.dumps(
        [[e.action, e.outcome, e.actor, e.subject, e.plugin_id, e.branch, e.ip, e.request_id, e.detail] for e in events],
        ensure_ascii=False,
    )
    logged = caplog.text + json.dumps([repr(vars(record)) for record in caplog.records], ensure_ascii=False)
    assert any(record.name == "canopy.audit" for record in caplog.records)
    for secret in (PASSWORD, DEMO_PASSWORD, wrong_password, PIN, wrong_pin):
        assert secret not in written, secret
        assert secret not in logged, secret
    for event in events:
        if "login" in event.detail:
            assert event.detail["login"] not in (PHONE, STAFF_NAME, DEVELOPER_EMAIL)  # masked
