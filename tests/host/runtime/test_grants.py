"""host.runtime.grants: manifest ∩ approval ∩ (where needed) the customer's consent, with reasons."""

from __future__ import annotations

import dataclasses

import pytest

from host.oauth.default_scopes import SCOPES
from host.oauth.scopes import ScopeCatalog
from host.runtime.grants import Grant, NoConsentsYet, grant_for

PLUGIN = "sh.deals"
CUSTOMER = "customer-42"


class Consents:
    """A consent source for tests that records what it was asked."""

    def __init__(self, **by_customer: set[str]) -> None:
        self.by_customer = {customer.replace("_", "-"): frozenset(scopes) for customer, scopes in by_customer.items()}
        self.asked: list[tuple[str, str]] = []

    def consented_scopes(self, customer_id: str, plugin_id: str) -> frozenset[str]:
        self.asked.append((customer_id, plugin_id))
        return self.by_customer.get(customer_id, frozenset())


@pytest.fixture(scope="module")
def catalog() -> ScopeCatalog:
    return ScopeCatalog.from_hook_results([SCOPES])


def grant(catalog, requested, approved, consents=None, customer=CUSTOMER) -> Grant:
    return grant_for(catalog, frozenset(requested), frozenset(approved), consents or Consents(), PLUGIN, customer)


def test_granted_is_the_intersection_of_manifest_approval_and_consent(catalog):
    consents = Consents(customer_42={"profile.basic:read", "notifications:send", "profile.phone:read"})
    result = grant(
        catalog,
        requested={"profile.basic:read", "profile.phone:read", "payments:create", "notifications:send", "payments:read"},
        approved={"profile.basic:read", "payments:create", "notifications:send", "refunds:create"},
        consents=consents,
    )

    # phone: consented but not approved; payments:read: not approved; refunds: approved but not requested
    assert result.scopes == {"profile.basic:read", "payments:create", "notifications:send"}
    assert consents.asked == [(CUSTOMER, PLUGIN)]


def test_explain_names_the_part_that_denies(catalog):
    consents = Consents(customer_42={"profile.basic:read"})
    result = grant(
        catalog,
        requested={"profile.basic:read", "profile.phone:read", "payments:create", "notifications:send"},
        approved={"profile.basic:read", "notifications:send", "payments:create"},
        consents=consents,
    )

    assert result.explain("refunds:create") == "the plugin's manifest does not request it"
    assert result.explain("profile.phone:read") == "head office has not approved it for this plugin version"
    assert result.explain("notifications:send") == "the customer has not consented to it"
    assert result.explain("profile.basic:read") == "granted"
    assert result.explain("payments:create") == "granted"


def test_without_a_customer_consent_scopes_are_denied_for_that_reason(catalog):
    consents = Consents(customer_42={"profile.basic:read"})
    result = grant(catalog, {"profile.basic:read"}, {"profile.basic:read"}, consents, customer=None)

    assert result.scopes == frozenset()
    assert not result.has_customer
    assert result.explain("profile.basic:read") == "it needs a signed-in customer's consent and there is no customer"
    assert consents.asked == []  # nobody to ask about


def test_scopes_without_consent_are_granted_without_a_customer(catalog):
    consents = Consents()
    result = grant(
        catalog,
        {"payments:create", "payments:read", "refunds:create"},
        {"payments:create", "payments:read", "refunds:create"},
        consents,
        customer=None,
    )

    assert result.scopes == {"payments:create", "payments:read", "refunds:create"}
    assert all(result.explain(s) == "granted" for s in result.scopes)
    assert consents.asked == []


def test_consent_is_not_looked_up_when_no_requested_scope_needs_it(catalog):
    consents = Consents(customer_42={"payments:create"})
    result = grant(catalog, {"payments:create"}, {"payments:create"}, consents)

    assert result.scopes == {"payments:create"}
    assert consents.asked == []


def test_consent_to_an_unrequested_or_unapproved_scope_grants_nothing(catalog):
    consents = Consents(customer_42={"profile.basic:read", "profile.phone:read"})

    not_requested = grant(catalog, {"notifications:send"}, {"notifications:send", "profile.basic:read"}, consents)
    not_approved = grant(catalog, {"profile.phone:read"}, set(), consents)

    assert not_requested.scopes == frozenset()
    assert not_approved.scopes == frozenset()
    assert not_approved.explain("profile.phone:read") == "head office has not approved it for this plugin version"


def test_consents_are_per_customer(catalog):
    consents = Consents(customer_42={"profile.basic:read"}, customer_7=set())

    alice = grant(catalog, {"profile.basic:read"}, {"profile.basic:read"}, consents, customer="customer-42")
    bob = grant(catalog, {"profile.basic:read"}, {"profile.basic:read"}, consents, customer="customer-7")

    assert alice.scopes == {"profile.basic:read"}
    assert bob.scopes == frozenset()


def test_until_the_ledger_exists_nobody_has_consented(catalog):
    assert NoConsentsYet().consented_scopes(CUSTOMER, PLUGIN) == frozenset()
    result = grant(catalog, {"profile.basic:read", "payments:create"}, {"profile.basic:read", "payments:create"}, NoConsentsYet())
    assert result.scopes == {"payments:create"}


def test_a_grant_cannot_be_changed(catalog):
    result = grant(catalog, {"payments:create"}, {"payments:create"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.approved = frozenset({"refunds:create"})  # type: ignore[misc]
