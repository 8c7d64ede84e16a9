"""host.identity.pairwise: each plugin sees its own stable id for a customer."""

from __future__ import annotations

import re

from host.identity.pairwise import pairwise_subject

SECRET = b"a-host-secret-of-enough-length-0123456789"
SUBJECT = re.compile(r"^[a-z2-7]{26}\Z")  # lower-case base32


def test_the_subject_is_26_base32_characters():
    subject = pairwise_subject(SECRET, "sh.deals", "customer-1")
    assert SUBJECT.match(subject), subject


def test_stable_for_one_plugin_and_customer():
    assert pairwise_subject(SECRET, "sh.deals", "customer-1") == pairwise_subject(SECRET, "sh.deals", "customer-1")


def test_different_for_every_plugin():
    subjects = {pairwise_subject(SECRET, plugin, "customer-1") for plugin in ("sh.deals", "wealth.checkup", "city.utilities")}
    assert len(subjects) == 3


def test_different_for_every_customer():
    assert pairwise_subject(SECRET, "sh.deals", "customer-1") != pairwise_subject(SECRET, "sh.deals", "customer-2")


def test_different_under_another_secret():
    other = b"another-host-secret-of-enough-length-987654"
    assert pairwise_subject(SECRET, "sh.deals", "customer-1") != pairwise_subject(other, "sh.deals", "customer-1")


def test_the_parts_cannot_be_shifted_into_each_other():
    # "ab" + "c" and "a" + "bc" must not give one id: the parts are separated.
    assert pairwise_subject(SECRET, "sh.dealsx", "1") != pairwise_subject(SECRET, "sh.deals", "x1")


def test_reveals_neither_the_customer_nor_the_plugin():
    subject = pairwise_subject(SECRET, "sh.deals", "customer-1")
    assert "customer" not in subject and "deals" not in subject


def test_a_known_value_so_ids_never_change_between_releases():
    # Plugins store these ids; a change of algorithm would orphan every stored customer.
    assert pairwise_subject(b"test-secret", "sh.deals", "customer-1") == "35eoe5pp53zwabw5uba5wa4zed"
