"""The gray rule on its own: deterministic, matching its percentages, monotone when widened,
and refusing every malformed rule with the field named."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.publishing.rollout import (BUCKETS, NOBODY, Audience, GrayRule, RuleInvalid, bucket, choose, parse_rule,
                                     selected)

PLUGIN, VERSION = "sh.coupons", "2.0.0"
#: 20,000 customer ids of the shape the host gives them (32 hexadecimal digits).
CUSTOMERS = [hashlib.md5(str(n).encode()).hexdigest() for n in range(20_000)]


def share(rule: GrayRule, version: str = VERSION) -> float:
    chosen = sum(choose(PLUGIN, "1.0.0", version, rule, Audience(c, "SH001")) == version for c in CUSTOMERS)
    return chosen / len(CUSTOMERS)


@pytest.mark.parametrize("percent", [0, 0.5, 1, 5, 12.5, 33.33, 50, 90, 100])
def test_a_percentage_selects_that_share_of_customers(percent):
    # 20,000 customers: a fair sample is within 1.5 points of the percentage (over 4 standard deviations)
    assert abs(share(GrayRule(percent=percent)) * 100 - percent) < 1.5
    if percent in (0, 100):
        assert share(GrayRule(percent=percent)) * 100 == percent


def test_the_choice_is_the_same_every_time_and_depends_on_the_version():
    first = [bucket(PLUGIN, VERSION, c) for c in CUSTOMERS[:500]]
    assert first == [bucket(PLUGIN, VERSION, c) for c in CUSTOMERS[:500]]
    assert all(0 <= b < BUCKETS for b in first)
    other = [bucket(PLUGIN, "3.0.0", c) for c in CUSTOMERS[:500]]
    assert first != other  # each gray version draws its own sample
    # the value is fixed by its definition (a change would move every customer between versions)
    digest = hashlib.sha256(f"{PLUGIN}\x00{VERSION}\x00{CUSTOMERS[0]}".encode()).digest()
    assert first[0] == int.from_bytes(digest[:8], "big") % BUCKETS


@given(st.floats(0, 100).map(lambda p: round(p, 2)), st.floats(0, 100).map(lambda p: round(p, 2)))
@settings(max_examples=50, deadline=None)
def test_widening_keeps_everyone_who_was_in(low, high):
    low, high = min(low, high), max(low, high)
    narrow, wide = GrayRule(percent=low), GrayRule(percent=high)
    assert wide.covers(narrow)
    for customer in CUSTOMERS[:300]:
        who = Audience(customer, "BJ001")
        if selected(narrow, PLUGIN, VERSION, who):
            assert selected(wide, PLUGIN, VERSION, who)


def test_branches_tags_and_testers():
    asked = []
    rule = GrayRule(branches=frozenset({"BJ001"}), tags=frozenset({"vip"}), testers=frozenset({CUSTOMERS[1]}))

    def tags_of(customer):
        asked.append(customer)
        return ["vip"] if customer == CUSTOMERS[2] else []

    assert selected(rule, PLUGIN, VERSION, Audience(CUSTOMERS[0], "BJ001", tags_of))
    assert selected(rule, PLUGIN, VERSION, Audience(CUSTOMERS[1], "SH001", tags_of))
    assert selected(rule, PLUGIN, VERSION, Audience(CUSTOMERS[2], "SH001", tags_of))
    assert not selected(rule, PLUGIN, VERSION, Audience(CUSTOMERS[3], "SH001", tags_of))
    assert asked == [CUSTOMERS[2], CUSTOMERS[3]]  # tags are asked for only when nothing else decided
    assert selected(rule, PLUGIN, VERSION, Audience(None, "BJ001"))  # an anonymous visitor of Beijing's storefront
    assert not selected(GrayRule(percent=100), PLUGIN, VERSION, Audience(None, "SH001"))  # no bucket
    assert choose(PLUGIN, "1.0.0", None, GrayRule(percent=100), Audience(CUSTOMERS[0], "SH001")) == "1.0.0"
    assert choose(PLUGIN, "1.0.0", VERSION, rule, NOBODY) == "1.0.0"


def test_a_rule_reads_back_as_it_was_given():
    rule = parse_rule({"branches": ["SH001", "BJ001"], "tags": ["vip"], "testers": [CUSTOMERS[0]], "percent": 12.5})
    assert rule.as_json() == {"branches": ["BJ001", "SH001"], "tags": ["vip"], "testers": [CUSTOMERS[0]], "percent": 12.5}
    assert parse_rule(rule.as_json()) == rule and parse_rule({}).empty


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                    max_leaves=20))
@settings(max_examples=200, deadline=None)
def test_anything_is_a_rule_or_a_refusal_naming_fields(data):
    try:
        rule = parse_rule(data)
    except RuleInvalid as exc:
        assert exc.problems and all(isinstance(texts, list) and texts for texts in exc.problems.values())
        return
    assert isinstance(rule, GrayRule) and 0 <= rule.percent <= 100


@pytest.mark.parametrize("percent", [0.29, 0.57, 1.15, 33.33, 99.99, 0.01])
def test_every_two_decimal_percentage_is_a_rule(percent):
    assert parse_rule({"percent": percent}).percent == percent


def test_the_customers_home_branch_is_read_only_for_a_rule_that_names_branches():
    asked = []

    def home_of(customer):
        asked.append(customer)
        return "BJ001"

    who = Audience(CUSTOMERS[0], "SH001", home_of=home_of)
    assert not selected(GrayRule(testers=frozenset({CUSTOMERS[1]})), PLUGIN, VERSION, who)
    assert asked == []  # no branch in the rule: nothing read
    rule = GrayRule(branches=frozenset({"BJ001"}))
    assert selected(rule, PLUGIN, VERSION, who) and selected(rule, PLUGIN, VERSION, who)
    assert asked == [CUSTOMERS[0]]  # once, and the home branch counts, not the storefront's
    assert not selected(rule, PLUGIN, VERSION, Audience(CUSTOMERS[0], "SH001", home_of=lambda c: None))
