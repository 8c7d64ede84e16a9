"""host.runtime.services: the app's PluginRuntime — contexts and per-plugin hook calls."""

from __future__ import annotations

import json

import pytest
from canopy_sdk import Event

from host.runtime import get_runtime
from host.runtime.invoke import MISSING, OK, REJECTED
from host.identity.pairwise import pairwise_subject
from host.runtime.services import DEFAULT_PLUGINS

#: A plugin implementing every hook; each call is recorded on ``plugin.calls``.
EVERY_HOOK = """\
from canopy_sdk import ApiError, Page, SearchHit, Tile, hookimpl


class Plugin:
    def __init__(self):
        self.calls = []

    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        self.calls.append(("tiles", ctx.plugin_id))
        return [Tile(title="tile of " + ctx.plugin_id)]

    @hookimpl
    def canopy_page(self, ctx, path, query):
        self.calls.append(("page", path, dict(query)))
        return Page(title="page of " + ctx.plugin_id, html="<p>" + path + "</p>")

    @hookimpl
    def canopy_api(self, ctx, method, path, body):
        self.calls.append(("api", method, path, body))
        if path == "/refuse":
            raise ApiError(403, "Not for you")
        return {"plugin": ctx.plugin_id, "echo": body}

    @hookimpl
    def canopy_search(self, ctx, query):
        self.calls.append(("search", query))
        return [SearchHit(title=query + " in " + ctx.plugin_id, score=0.9)]

    @hookimpl
    def canopy_on_event(self, ctx, event):
        self.calls.append(("event", event.type))


plugin = Plugin()
"""

SCOPED = ["payments:create", "profile.basic:read", "notifications:send"]


class Consents:
    def __init__(self, scopes) -> None:
        self.scopes = frozenset(scopes)
        self.asked = []

    def consented_scopes(self, customer_id, plugin_id):
        self.asked.append((customer_id, plugin_id))
        return self.scopes


@pytest.fixture
def runtime(make_runtime, plugins_dir, make_plugin):
    make_plugin(plugins_dir, "a.plugin", EVERY_HOOK, scopes=SCOPED)
    make_plugin(plugins_dir, "b.plugin", EVERY_HOOK)
    make_plugin(plugins_dir, "tiles.only")
    return make_runtime(plugins_dir)


def calls(runtime, plugin_id):
    return runtime.plugins[plugin_id].plugin.calls


def ctx_for(runtime, branch, plugin_id, **kwargs):
    kwargs.setdefault("approved_scopes", SCOPED)
    return runtime.context(plugin_id, branch=branch, locale="en", **kwargs)


# -- the runtime ------------------------------------------------------------------------------------


def test_the_hosts_defaults_are_plugins_on_the_same_manager(runtime):
    for name in DEFAULT_PLUGINS:
        assert runtime.pm.get_plugin(name) is not None
    assert "payments:create" in runtime.catalog
    assert runtime.catalog.needs_consent("profile.basic:read")


def test_load_takes_entry_points_when_asked(make_runtime, plugins_dir, make_plugin, monkeypatch):
    from host.runtime import services
    from host.runtime.loader import load_folder

    installed = make_plugin(plugins_dir.parent / "installed", "installed.plugin")
    monkeypatch.setattr(services, "load_entry_points", lambda: [load_folder(installed)])
    runtime = make_runtime(start=False)

    runtime.load([plugins_dir], entry_points=False)
    assert runtime.plugins == {}
    runtime.load([plugins_dir], entry_points=True)
    assert list(runtime.plugins) == ["installed.plugin"]


# -- contexts --------------------------------------------------------------------------------------


def test_context_grants_manifest_and_approval_without_a_customer(runtime, branch):
    ctx = ctx_for(runtime, branch, "a.plugin", approved_scopes=["payments:create", "profile.basic:read", "refunds:create"])

    assert ctx.plugin_id == "a.plugin" and ctx.branch == branch and ctx.locale == "en"
    assert ctx.scopes == {"payments:create"}  # profile needs a customer; refunds is not requested
    assert ctx.customer is None
    assert ctx.grant.explain("refunds:create") == "the plugin's manifest does not request it"


def test_context_asks_the_consent_source_about_the_customer(runtime, branch):
    runtime.consents = Consents({"profile.basic:read"})

    ctx = ctx_for(runtime, branch, "a.plugin", customer_id="c-1", customer_profile={"nickname": "Ming"})

    assert runtime.consents.asked == [("c-1", "a.plugin")]
    assert ctx.scopes == {"payments:create", "profile.basic:read"}
    assert ctx.customer.subject == pairwise_subject(runtime.config["SECRET_KEY"].encode(), "a.plugin", "c-1")
    assert ctx.customer.profile() == {"nickname": "Ming"}


def test_context_for_an_unknown_plugin_fails(runtime, branch):
    with pytest.raises(KeyError):
        ctx_for(runtime, branch, "nobody")


def test_context_storage_is_bound_to_the_plugin_and_customer(app_factory, plugins_dir, make_plugin, branch):
    make_plugin(plugins_dir, "a.plugin", EVERY_HOOK, scopes=SCOPED)
    make_plugin(plugins_dir, "b.plugin", EVERY_HOOK)
    runtime = get_runtime(app_factory(PLUGIN_PATHS=[str(plugins_dir)]))
    a = ctx_for(runtime, branch, "a.plugin", customer_id="c-1")
    b = ctx_for(runtime, branch, "b.plugin", customer_id="c-1")

    a.storage.set("k", "a plugin-wide")
    a.customer_storage.set("k", "a for the customer")

    assert (a.storage.plugin_id, a.storage.customer) == ("a.plugin", "")
    subject_a = pairwise_subject(runtime.config["SECRET_KEY"].encode(), "a.plugin", "c-1")
    assert (a.customer_storage.plugin_id, a.customer_storage.customer) == ("a.plugin", subject_a)
    assert b.customer_storage.customer == pairwise_subject(runtime.config["SECRET_KEY"].encode(), "b.plugin", "c-1") != subject_a
    assert a.storage.get("k") == "a plugin-wide"
    assert a.customer_storage.get("k") == "a for the customer"
    assert b.storage.get("k") is None and b.customer_storage.get("k") is None
    again = ctx_for(runtime, branch, "a.plugin", customer_id="c-1")
    assert again.customer_storage.get("k") == "a for the customer"  # the store outlives one call


# -- per-plugin dispatch ---------------------------------------------------------------------------


def test_tiles_go_to_each_named_plugin_only(runtime, branch):
    outcomes = runtime.tiles([ctx_for(runtime, branch, "b.plugin"), ctx_for(runtime, branch, "tiles.only")])

    assert [(o.plugin_id, o.status) for o in outcomes] == [("b.plugin", OK), ("tiles.only", OK)]
    assert outcomes[0].value[0].title == "tile of b.plugin"
    assert outcomes[1].value[0].title == "Hello from tiles.only"
    assert calls(runtime, "a.plugin") == []
    assert calls(runtime, "b.plugin") == [("tiles", "b.plugin")]


def test_page_goes_to_the_named_plugin_only(runtime, branch):
    outcome = runtime.page(ctx_for(runtime, branch, "a.plugin"), "/bills", {"id": "3"})

    assert outcome.status == OK
    assert outcome.value.title == "page of a.plugin" and outcome.value.html == "<p>/bills</p>"
    assert calls(runtime, "a.plugin") == [("page", "/bills", {"id": "3"})]
    assert calls(runtime, "b.plugin") == []


def test_api_goes_to_the_named_plugin_only_and_answers_json_text(runtime, branch):
    outcome = runtime.api(ctx_for(runtime, branch, "b.plugin"), "POST", "/echo", {"n": 1})
    refused = runtime.api(ctx_for(runtime, branch, "b.plugin"), "GET", "/refuse", None)

    assert outcome.status == OK and json.loads(outcome.value) == {"plugin": "b.plugin", "echo": {"n": 1}}
    assert refused.status == REJECTED and refused.error.status == 403
    assert calls(runtime, "b.plugin") == [("api", "POST", "/echo", {"n": 1}), ("api", "GET", "/refuse", None)]
    assert calls(runtime, "a.plugin") == []


def test_search_goes_to_each_named_plugin_only(runtime, branch):
    outcomes = runtime.search([ctx_for(runtime, branch, "a.plugin"), ctx_for(runtime, branch, "tiles.only")], "coffee")

    assert [o.status for o in outcomes] == [OK, MISSING]
    assert outcomes[0].value[0].title == "coffee in a.plugin"
    assert calls(runtime, "a.plugin") == [("search", "coffee")]
    assert calls(runtime, "b.plugin") == []


def test_events_go_to_the_named_plugin_only(runtime, branch):
    event = Event(id="evt-1", type="plugin.installed", plugin_id="a.plugin", occurred_at="2025-01-01T00:00:00Z")

    outcome = runtime.event(ctx_for(runtime, branch, "a.plugin"), event)
    missing = runtime.event(ctx_for(runtime, branch, "tiles.only"), event)

    assert outcome.status == OK and outcome.value is None
    assert missing.status == MISSING
    assert calls(runtime, "a.plugin") == [("event", "plugin.installed")]
    assert calls(runtime, "b.plugin") == []


def test_a_refused_plugin_is_no_longer_called(runtime, branch):
    ctx = ctx_for(runtime, branch, "b.plugin")
    plugin = runtime.plugins["b.plugin"].plugin
    runtime.refuse("b.plugin", "files changed")

    outcome = runtime.page(ctx, "/", {})

    assert outcome.status == MISSING
    assert plugin.calls == []
    assert runtime.invoker.counts[("b.plugin", "canopy_page", MISSING)] == 1
