"""host.runtime.context: the scoped ctx one plugin sees for one call."""

from __future__ import annotations

import logging

import pytest
from canopy_sdk import Context, Customer, NoCustomer, ScopeDenied

from host.oauth.default_scopes import SCOPES
from host.oauth.scopes import ScopeCatalog
from host.runtime.context import PluginContext
from host.runtime.grants import grant_for

PLUGIN = "sh.deals"
SUBJECT = "subject-for-sh-deals"
PROFILE = {"nickname": "小明", "avatar": "/a.png", "locale": "zh-CN", "phone": "13800000000", "internal_id": "c-1"}
ALL = ("profile.basic:read", "profile.phone:read", "payments:create", "notifications:send")


class Consents:
    def __init__(self, scopes) -> None:
        self.scopes = frozenset(scopes)

    def consented_scopes(self, customer_id, plugin_id):
        return self.scopes


@pytest.fixture
def stores() -> dict[str, object]:
    """The storages the contexts asked for, by customer namespace ('' for plugin-wide)."""
    return {}


@pytest.fixture
def make_ctx(branch, stores):
    """``make_ctx(requested=ALL, approved=ALL, consented=ALL, customer=True)``."""
    catalog = ScopeCatalog.from_hook_results([SCOPES])

    def build(*, requested=ALL, approved=ALL, consented=ALL, customer=True) -> PluginContext:
        grant = grant_for(
            catalog, frozenset(requested), frozenset(approved), Consents(consented), PLUGIN, "c-1" if customer else None
        )
        return PluginContext(
            plugin_id=PLUGIN,
            branch=branch,
            locale="en",
            grant=grant,
            storage_factory=lambda namespace: stores.setdefault(namespace, object()),
            customer_subject=SUBJECT if customer else None,
            customer_profile=PROFILE if customer else None,
        )

    return build


def test_the_context_satisfies_the_sdk_protocol(make_ctx):
    ctx = make_ctx()

    assert isinstance(ctx, Context)
    assert isinstance(ctx.customer, Customer)
    assert ctx.plugin_id == PLUGIN
    assert ctx.branch.code == "SH001"
    assert ctx.locale == "en"
    assert ctx.scopes == ctx.grant.scopes == frozenset(ALL)


def test_has_scope_follows_the_grant(make_ctx):
    ctx = make_ctx(approved=("payments:create", "profile.basic:read"), consented=())

    assert ctx.has_scope("payments:create")
    assert not ctx.has_scope("profile.basic:read")  # approved, not consented
    assert not ctx.has_scope("refunds:create")


def test_require_passes_for_a_granted_scope(make_ctx, caplog):
    ctx = make_ctx()
    with caplog.at_level(logging.DEBUG, logger="canopy.audit"):
        assert ctx.require("payments:create") is None
    assert not caplog.records


@pytest.mark.parametrize(
    ("kwargs", "scope", "reason"),
    [
        (dict(requested=("payments:create",)), "notifications:send", "the plugin's manifest does not request it"),
        (dict(approved=("payments:create",)), "notifications:send", "head office has not approved it for this plugin version"),
        (dict(consented=("profile.basic:read",)), "notifications:send", "the customer has not consented to it"),
        (dict(customer=False), "notifications:send", "it needs a signed-in customer's consent and there is no customer"),
    ],
)
def test_require_denies_naming_scope_and_reason_and_audits_it(make_ctx, caplog, kwargs, scope, reason):
    ctx = make_ctx(**kwargs)

    with caplog.at_level(logging.INFO, logger="canopy.audit"), pytest.raises(ScopeDenied) as caught:
        ctx.require(scope)

    denied = caught.value
    assert (denied.scope, denied.reason, denied.plugin_id) == (scope, reason, PLUGIN)
    assert scope in str(denied) and reason in str(denied) and PLUGIN in str(denied)
    [record] = [r for r in caplog.records if r.name == "canopy.audit"]
    assert record.levelno == logging.WARNING
    assert record.event == "scope.denied"
    assert (record.plugin, record.scope, record.reason, record.branch) == (PLUGIN, scope, reason, "SH001")
    assert record.customer == (SUBJECT if kwargs.get("customer", True) else None)


def test_the_audit_record_never_holds_the_customers_profile(make_ctx, caplog):
    ctx = make_ctx(consented=())
    with caplog.at_level(logging.INFO, logger="canopy.audit"), pytest.raises(ScopeDenied):
        ctx.customer.profile()
    [record] = caplog.records
    assert PROFILE["phone"] not in str(record.__dict__)


def test_storage_is_plugin_wide_and_customer_storage_is_the_customers(make_ctx, stores):
    ctx = make_ctx()

    assert ctx.storage is stores[""]
    assert ctx.customer_storage is stores[SUBJECT]
    assert ctx.storage is not ctx.customer_storage


def test_customer_storage_needs_a_customer(make_ctx, stores):
    ctx = make_ctx(customer=False)

    assert ctx.customer is None
    with pytest.raises(NoCustomer, match="customer storage needs a signed-in customer"):
        ctx.customer_storage
    assert list(stores) == [""]  # no customer namespace was even opened


def test_the_customer_is_known_only_by_the_pairwise_subject(make_ctx):
    ctx = make_ctx()

    assert ctx.customer.subject == SUBJECT
    assert repr(ctx.customer) == f"<HostCustomer {SUBJECT}>"
    assert "c-1" not in repr(ctx.customer)


def test_profile_needs_profile_basic_read(make_ctx):
    ctx = make_ctx(consented=("profile.phone:read",))

    with pytest.raises(ScopeDenied) as caught:
        ctx.customer.profile()
    assert caught.value.scope == "profile.basic:read"


def test_profile_fields_follow_the_scopes(make_ctx):
    basic = make_ctx(consented=("profile.basic:read",)).customer.profile()
    with_phone = make_ctx().customer.profile()

    assert basic == {"nickname": "小明", "avatar": "/a.png", "locale": "zh-CN"}
    assert with_phone == {"nickname": "小明", "avatar": "/a.png", "locale": "zh-CN", "phone": "13800000000"}
    assert "internal_id" not in with_phone  # a field no scope opens is never shown


def test_the_log_carries_the_plugin_id(make_ctx, caplog):
    ctx = make_ctx()
    with caplog.at_level(logging.INFO, logger=f"canopy.plugin.{PLUGIN}"):
        ctx.log.info("hello")
    [record] = caplog.records
    assert record.name == f"canopy.plugin.{PLUGIN}" and record.plugin == PLUGIN
