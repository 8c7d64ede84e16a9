"""host.identity.models: customers, staff, partner organisations and developers; the demo people."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from host.db import get_database
from host.demo import CUSTOMERS, DEMO_PASSWORD, PARTNERS, STAFF, seed, sign_ins
from host.identity import services
from host.identity.models import Customer, PartnerDeveloper, PartnerOrg, Staff, StaffRole, new_id

HEX_ID = re.compile(r"^[0-9a-f]{32}\Z")


def count(app, model) -> int:
    with get_database(app).transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def add(app, *rows) -> None:
    with get_database(app).transaction(write=True) as session:
        session.add_all(rows)


def customer(**values) -> Customer:
    fields = {"phone": "13700000009", "password_hash": "x", "nickname": "测试", "branch_code": "SH001"}
    return Customer(**{**fields, **values})


# --- the models ---------------------------------------------------------------------------


def test_staff_roles():
    assert StaffRole.ALL == ("hq_admin", "hq_reviewer", "branch_admin", "branch_operator")
    assert set(StaffRole.BRANCH_BOUND) == {"branch_admin", "branch_operator"}
    assert set(StaffRole.BRANCH_BOUND) < set(StaffRole.ALL)


def test_new_ids_are_random_32_hex_digits():
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(HEX_ID.match(value) for value in ids)


def test_a_new_customer_gets_its_defaults(demo_app, row):
    before = datetime.now(timezone.utc)
    add(demo_app, customer())
    stored = row(Customer, phone="13700000009")
    assert HEX_ID.match(stored.id)
    assert (stored.failed_attempts, stored.locked_until) == (0, None)
    assert (stored.pin_failed_attempts, stored.pin_locked_until, stored.pin_hash) == (0, None, None)
    assert stored.locale == "zh-CN"
    assert stored.created_at.utcoffset() == timedelta(0)
    assert before <= stored.created_at <= datetime.now(timezone.utc)


def test_a_phone_belongs_to_one_customer(demo_app):
    with pytest.raises(IntegrityError):
        add(demo_app, customer(phone=CUSTOMERS[0][0]))


def test_a_username_belongs_to_one_member_of_staff(demo_app):
    with pytest.raises(IntegrityError):
        add(demo_app, Staff(username="hq.admin", display_name="x", password_hash="x", role=StaffRole.HQ_ADMIN))


def test_an_email_belongs_to_one_developer(demo_app):
    with pytest.raises(IntegrityError):
        add(demo_app, PartnerDeveloper(org_id=PARTNERS[0][0], email=PARTNERS[0][3], display_name="x", password_hash="x"))


def test_a_customer_belongs_to_a_branch_that_exists(demo_app):
    with pytest.raises(IntegrityError):
        add(demo_app, customer(branch_code="NOWHERE"))


def test_staff_belong_to_a_branch_that_exists(demo_app):
    with pytest.raises(IntegrityError):
        add(demo_app, Staff(username="x", display_name="x", password_hash="x", role=StaffRole.BRANCH_ADMIN, branch_code="NOWHERE"))


def test_developers_go_with_their_organisation(demo_app):
    org_id = PARTNERS[0][0]
    with get_database(demo_app).transaction(write=True) as session:
        session.execute(text("DELETE FROM partner_orgs WHERE id = :id"), {"id": org_id})
    assert count(demo_app, PartnerDeveloper) == 0


def test_lock_times_must_be_utc(demo_app):
    with pytest.raises(StatementError):
        add(demo_app, customer(locked_until=datetime(2030, 1, 1)))  # naive: refused


def test_lock_times_come_back_in_utc(demo_app, row, change):
    shanghai = timezone(timedelta(hours=8))
    change(Customer, {"phone": CUSTOMERS[0][0]}, locked_until=datetime(2030, 1, 1, 8, 0, tzinfo=shanghai))
    assert row(Customer, phone=CUSTOMERS[0][0]).locked_until == datetime(2030, 1, 1, 0, 0, tzinfo=timezone.utc)
    assert row(Customer, phone=CUSTOMERS[0][0]).locked_until.utcoffset() == timedelta(0)


# --- the demo people ----------------------------------------------------------------------


def test_the_demo_customers_exist_with_their_details(demo_app, row):
    for phone, _, _, nickname, locale, branch in CUSTOMERS:
        found = row(Customer, phone=phone)
        assert (found.nickname, found.locale, found.branch_code) == (nickname, locale, branch)
    assert count(demo_app, Customer) == len(CUSTOMERS)


def test_the_demo_customers_passwords_and_pins_verify(in_app, row):
    hasher, pins = services.hasher(), services.pin_hasher()
    for phone, password, pin, *_ in CUSTOMERS:
        found = row(Customer, phone=phone)
        # Passwords stay Argon2id; PINs are keyed HMACs bound to the customer.
        assert found.password_hash.startswith("$argon2id$") and found.pin_hash.startswith("hmac-sha256$")
        assert password not in found.password_hash and pin not in found.pin_hash
        assert hasher.verify(found.password_hash, password)[0]
        assert pins.verify(found.id, found.pin_hash, pin).matches
        assert not hasher.verify(found.password_hash, pin)[0]
        assert not pins.verify(found.id, found.pin_hash, password).matches
        assert services.sign_in_customer(phone, password).id == found.id
        assert services.verify_payment_pin(found.id, pin).ok


def test_the_demo_staff_have_their_roles_and_branches(in_app, row):
    for username, display_name, role, branch in STAFF:
        found = row(Staff, username=username)
        assert (found.display_name, found.role, found.branch_code) == (display_name, role, branch)
        assert role in StaffRole.ALL
        assert (branch is not None) == (role in StaffRole.BRANCH_BOUND)  # branch-bound where it applies
        assert services.sign_in_staff(username, DEMO_PASSWORD).id == found.id
    assert count(in_app, Staff) == len(STAFF)
    assert {role for _, _, role, _ in STAFF} == set(StaffRole.ALL)


def test_the_demo_partner_and_its_developer(in_app, row):
    for org_id, name_zh, name_en, email, developer in PARTNERS:
        org = row(PartnerOrg, id=org_id)
        assert (org.name_zh, org.name_en) == (name_zh, name_en)
        found = row(PartnerDeveloper, email=email)
        assert (found.org_id, found.display_name) == (org_id, developer)
        assert services.sign_in_developer(email, DEMO_PASSWORD).id == found.id


def test_seeding_twice_adds_nobody_and_changes_no_one(demo_app, seed_demo, row):
    before = {phone: row(Customer, phone=phone).password_hash for phone, *_ in CUSTOMERS}
    with demo_app.app_context(), get_database(demo_app).transaction(write=True) as session:
        assert seed(session)["people"] == 0
    seed_demo(demo_app)
    assert {phone: row(Customer, phone=phone).password_hash for phone, *_ in CUSTOMERS} == before
    assert (count(demo_app, Customer), count(demo_app, Staff)) == (len(CUSTOMERS), len(STAFF))
    assert (count(demo_app, PartnerOrg), count(demo_app, PartnerDeveloper)) == (len(PARTNERS), len(PARTNERS))


def test_seeding_keeps_a_changed_password(demo_app, row, change):
    change(Customer, {"phone": CUSTOMERS[0][0]}, password_hash="changed-by-the-customer")
    with demo_app.app_context(), get_database(demo_app).transaction(write=True) as session:
        seed(session)
    assert row(Customer, phone=CUSTOMERS[0][0]).password_hash == "changed-by-the-customer"


def test_the_sign_ins_make_run_prints():
    lines = sign_ins()
    assert len(lines) == len(CUSTOMERS) + len(STAFF) + len(PARTNERS)
    assert any(CUSTOMERS[0][0] in line and CUSTOMERS[0][1] in line and CUSTOMERS[0][2] in line for line in lines)
    assert all(DEMO_PASSWORD in line for line in lines if line.startswith(("staff", "partner")))
