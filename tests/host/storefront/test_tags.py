"""Customer tags: the one rule of a tag's name (shared with the slot form), who may change whose
tags, the services' reading of customers, and what a branch's page counts."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError
from sqlalchemy import select

from host.db import get_database
from host.identity.models import Customer, Staff, StaffRole
from host.storefront import slots, tags
from host.storefront.errors import InvalidChange, NotAllowed
from host.storefront.models import CustomerTag, StorefrontSlot
from host.storefront.rights import Action, Allowed, Denied, check, verdict
from host.storefront.services import customer_tags

LIN = "13800000001"  # SH001, tagged wealth
WANG = "13900000002"  # BJ001


@pytest.mark.parametrize("tag", ["a", "wealth", "new-customer", "vip2", "0", "a" * 32, "a-"])
def test_tags_the_rule_accepts(tag):
    tags.check_tag(tag)


@pytest.mark.parametrize("tag", ["", "-a", "Wealth", "a" * 33, "a b", "a_b", "a.b", "财富", "wealth\n", "wealth\x00",
                                 "ｗｅａｌｔｈ", None, 7, ["wealth"]])
def test_tags_the_rule_refuses(demo_app, tag):
    with demo_app.test_request_context("/?lang=en"), pytest.raises(ValidationError) as caught:
        tags.check_tag(tag)
    assert caught.value.messages == ["tags are lower-case letters, digits and '-', up to 32 each"]


def test_the_slot_form_checks_tags_with_the_same_function():
    (validator,) = slots.SlotSchema().fields["tags"].inner.validators
    assert validator is tags.check_tag


def test_the_slot_form_and_the_tags_form_refuse_the_same_names(demo_app):
    with demo_app.test_request_context("/?lang=en"), get_database(demo_app).transaction() as session:
        for name in ("Wealth", "a" * 33, "-x"):
            with pytest.raises(InvalidChange) as from_slot:
                slots.read_slot(session, {"title_zh": "x", "title_en": "x", "tags": name})
            with pytest.raises(InvalidChange) as from_tags:
                tags.read_tag(name)
            assert from_slot.value.errors["tags"] == from_tags.value.errors["tag"]


@pytest.mark.parametrize(("phone", "shown"), [("13800000001", "138****0001"), ("+8613800000001", "+86*******0001"),
                                              ("12345678", "123*5678"), ("1234567", "1******"), ("", "")])
def test_numbers_are_masked(phone, shown):
    assert tags.masked_phone(phone) == shown


# -- who may change whose tags ------------------------------------------------------------------------


def staff(role: str, branch: str | None = None) -> Staff:
    return Staff(username=f"{role}@{branch}", display_name="x", password_hash="x", role=role, branch_code=branch)


@pytest.mark.parametrize(
    ("who", "branch", "allowed"),
    [
        (staff(StaffRole.HQ_ADMIN), "GZ001", True),
        (staff(StaffRole.HQ_REVIEWER), "SH001", False),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), "SH001", True),  # no right granted needed
        (staff(StaffRole.BRANCH_ADMIN, "SH001"), "SH001", True),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), "BJ001", False),
        (staff(StaffRole.BRANCH_OPERATOR, "SH001"), "SH001-PD", False),  # not even a branch under one's own
        (staff(StaffRole.BRANCH_OPERATOR, None), "SH001", False),
        (staff("janitor", "SH001"), "SH001", False),
        (None, "SH001", False),
    ],
)
def test_who_may_change_tags(demo_app, who, branch, allowed):
    with demo_app.test_request_context("/?lang=en"):
        found = check(who, Action.TAGS, branch, ())
    assert isinstance(found, Allowed if allowed else Denied) and found.reason


def test_tags_need_no_granted_right_but_other_branch_actions_still_do(demo_app):
    operator = staff(StaffRole.BRANCH_OPERATOR, "GZ001")  # head office granted GZ001 nothing
    with demo_app.test_request_context("/?lang=en"), get_database(demo_app).transaction() as session:
        assert verdict(session, operator, Action.TAGS, "GZ001")
        assert not verdict(session, operator, Action.BANNERS, "GZ001")
        refused = check(staff(StaffRole.BRANCH_OPERATOR, "BJ001"), Action.TAGS, "SH001")
    assert refused.reason == "You may change the tags of your own branch's customers (BJ001) only."


# -- the services --------------------------------------------------------------------------------------


@pytest.fixture
def session(demo_app):
    with demo_app.test_request_context("/?lang=en"), get_database(demo_app).transaction(write=True) as s:
        yield s


def person(session, username: str) -> Staff:
    return session.scalars(select(Staff).where(Staff.username == username)).one()


def customer(session, phone: str) -> Customer:
    return session.scalars(select(Customer).where(Customer.phone == phone)).one()


def test_a_branch_lists_its_customers_tags_and_the_tags_its_slots_target(session):
    session.add(StorefrontSlot(kind="feed", branch_code="SH001", title_zh="x", title_en="x", tags=["vip"], updated_by="t"))
    session.add(StorefrontSlot(kind="feed", branch_code="BJ001", title_zh="x", title_en="x", tags=["beijing"], updated_by="t"))
    session.add(CustomerTag(customer_id=customer(session, WANG).id, tag="young"))
    session.flush()
    assert tags.branch_tags(session, "SH001") == [tags.TagUse("vip", 0, True), tags.TagUse("wealth", 1, True)]
    # wealth: a bank-wide banner targets it; young: Wang Fang carries it
    assert tags.branch_tags(session, "BJ001") == [tags.TagUse("beijing", 0, True), tags.TagUse("wealth", 0, True),
                                                  tags.TagUse("young", 1, False)]
    assert tags.tags_by_branch(session) == {"BJ001": [("young", 1)], "SH001": [("wealth", 1)]}


def test_adding_and_removing_through_the_services(session):
    operator, lin = person(session, "sh.operator"), customer(session, LIN)
    assert tags.add_tag(session, operator, "SH001", {"tag": " vip ", "customer": lin.id}) == (lin, "vip")
    assert customer_tags(session, lin.id) == ["vip", "wealth"]
    assert tags.remove_tag(session, operator, "SH001", {"tag": "wealth", "customer": LIN}) == (lin, "wealth")
    assert customer_tags(session, lin.id) == ["vip"]
    assert tags.tagged_customers(session, "SH001", "vip") == ([lin], 1)
    assert tags.tagged_customers(session, "BJ001", "vip") == ([], 0)


def test_every_wrong_field_is_named_at_once(session):
    with pytest.raises(InvalidChange) as caught:
        tags.add_tag(session, person(session, "sh.operator"), "SH001", {"tag": "VIP", "customer": "nobody"})
    assert set(caught.value.errors) == {"tag", "customer"}


def test_a_refusal_comes_before_reading_the_input(session):
    with pytest.raises(NotAllowed) as caught:
        tags.add_tag(session, person(session, "bj.operator"), "SH001", {"tag": "VIP"})
    assert (caught.value.action, caught.value.branch, caught.value.actor) == ("tags", "SH001", "bj.operator")
