"""canopy_sdk.testing: MemoryStorage, FakeContext and PluginHarness."""

from __future__ import annotations

import logging
import threading

import pluggy
import pytest

from canopy_sdk import (
    Context,
    Event,
    InvalidKey,
    InvalidResult,
    InvalidValue,
    ManifestError,
    NoCustomer,
    Page,
    QuotaExceeded,
    ScopeDenied,
    SearchHit,
    Storage,
    Tile,
    ValueTooLarge,
    storage_rules,
)
from canopy_sdk.loading import PluginImportError
from canopy_sdk.testing import FakeContext, FakeCustomer, MemoryStorage, PluginHarness


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- MemoryStorage: reads and writes ------------------------------------------------


def test_memory_storage_satisfies_the_storage_protocol():
    assert isinstance(MemoryStorage(), Storage)


def test_get_of_an_absent_key_gives_the_default():
    store = MemoryStorage()

    assert store.get("missing") is None
    assert store.get("missing", 7) == 7
    assert store.get_item("missing") is None


def test_set_returns_the_new_version_and_get_item_reports_it():
    store = MemoryStorage()

    assert store.set("bills/1", {"due": 3}) == 1
    assert store.set("bills/1", {"due": 4}) == 2

    item = store.get_item("bills/1")
    assert (item.value, item.version, item.expires_at) == ({"due": 4}, 2, None)
    assert store.get("bills/1") == {"due": 4}


def test_stored_values_are_copies():
    store = MemoryStorage()
    value = {"items": [1]}
    store.set("k", value)

    value["items"].append(2)
    store.get("k")["items"].append(3)

    assert store.get("k") == {"items": [1]}


@pytest.mark.parametrize(
    ("key", "value", "ttl", "error"),
    [
        ("/k", 2, None, InvalidKey),
        ("k", float("nan"), None, InvalidValue),
        ("k", "x" * storage_rules.MAX_VALUE_BYTES, None, ValueTooLarge),
        ("k", 2, 0, InvalidValue),
        ("k", 2, True, InvalidValue),
    ],
)
def test_a_refused_write_changes_nothing(key, value, ttl, error):
    store = MemoryStorage()
    store.set("k", 1)

    with pytest.raises(error):
        store.set(key, value, ttl=ttl)
    with pytest.raises(error):
        store.compare_and_set(key, value, version=1, ttl=ttl)

    assert store.get_item("k").value == 1
    assert store.get_item("k").version == 1


def test_compare_and_set_with_none_writes_only_if_absent():
    store = MemoryStorage()

    assert store.compare_and_set("k", "first", version=None) is True
    assert store.compare_and_set("k", "second", version=None) is False
    assert store.get_item("k").value == "first"
    assert store.get_item("k").version == 1


def test_compare_and_set_with_a_stale_version_loses():
    store = MemoryStorage()
    store.set("k", "a")
    store.set("k", "b")  # now at version 2

    assert store.compare_and_set("k", "stale", version=1) is False
    assert store.get("k") == "b"
    assert store.compare_and_set("k", "c", version=2) is True
    assert store.get_item("k").version == 3


def test_compare_and_set_with_a_version_on_an_absent_key_loses():
    store = MemoryStorage()

    assert store.compare_and_set("k", "x", version=1) is False
    assert store.get_item("k") is None


@pytest.mark.parametrize("version", [True, "1", 1.0])
def test_compare_and_set_version_must_be_an_int_or_none(version):
    store = MemoryStorage()
    store.set("k", "a")

    with pytest.raises(InvalidValue, match="version must be an integer or None"):
        store.compare_and_set("k", "b", version=version)
    assert store.get("k") == "a"


def test_delete_says_whether_the_key_was_there():
    store = MemoryStorage()
    store.set("k", 1)

    assert store.delete("k") is True
    assert store.delete("k") is False
    assert store.get("k") is None
    assert store.compare_and_set("k", 2, version=None) is True


def test_delete_checks_the_key():
    with pytest.raises(InvalidKey):
        MemoryStorage().delete("")


def test_list_filters_by_prefix_sorts_and_limits():
    store = MemoryStorage()
    for key in ["b/2", "a/9", "b/10", "b/1", "c", "b"]:
        store.set(key, 0)

    assert store.list() == ["a/9", "b", "b/1", "b/10", "b/2", "c"]
    assert store.list("b/") == ["b/1", "b/10", "b/2"]
    assert store.list("b/", limit=2) == ["b/1", "b/10"]
    assert store.list("zzz") == []


def test_list_checks_prefix_and_limit():
    store = MemoryStorage()

    with pytest.raises(InvalidKey):
        store.list("/")
    with pytest.raises(InvalidValue):
        store.list(limit=0)
    with pytest.raises(InvalidValue):
        store.list(limit=storage_rules.MAX_LIST_LIMIT + 1)


# -- MemoryStorage: expiry and quota ---------------------------------------------------


def test_keys_expire_by_the_injected_clock():
    clock = Clock(1_000.0)
    store = MemoryStorage(clock=clock)
    store.set("session", "abc", ttl=10)
    store.set("keep", 1)

    assert store.get_item("session").expires_at == 1_010.0
    clock.now = 1_009.5
    assert store.get("session") == "abc"
    assert store.list() == ["keep", "session"]

    clock.now = 1_010.0
    assert store.get("session") is None
    assert store.list() == ["keep"]
    assert store.delete("session") is False
    # An expired key counts as absent: it can be created again and starts at version 1.
    assert store.compare_and_set("session", "new", version=None) is True
    assert store.get_item("session").version == 1


def test_a_set_without_ttl_clears_an_earlier_expiry():
    clock = Clock()
    store = MemoryStorage(clock=clock)
    store.set("k", 1, ttl=5)
    store.set("k", 2)

    clock.now += 10

    assert store.get_item("k").expires_at is None
    assert store.get("k") == 2


def test_quota_counts_live_keys(monkeypatch):
    monkeypatch.setattr(storage_rules, "MAX_KEYS_PER_NAMESPACE", 3)
    clock = Clock()
    store = MemoryStorage(clock=clock)
    store.set("a", 1)
    store.set("b", 1)
    store.set("c", 1, ttl=5)

    with pytest.raises(QuotaExceeded):
        store.set("d", 1)
    with pytest.raises(QuotaExceeded):
        store.compare_and_set("d", 1, version=None)
    assert store.get("d") is None
    assert store.set("a", 2) == 2  # overwriting an existing key needs no room

    store.delete("a")
    assert store.set("d", 1) == 1

    clock.now += 5  # "c" expires and frees its place
    assert store.set("e", 1) == 1
    assert store.list() == ["b", "d", "e"]


# -- MemoryStorage: concurrency -----------------------------------------------------------


def _run_threads(count: int, target) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # surfaced below, so a thread's failure fails the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_concurrent_create_if_absent_has_exactly_one_winner():
    store = MemoryStorage()
    wins: list[int] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        if store.compare_and_set("lock", index, version=None):
            with lock:
                wins.append(index)

    _run_threads(32, attempt)

    assert len(wins) == 1
    assert store.get_item("lock").value == wins[0]
    assert store.get_item("lock").version == 1


def test_concurrent_compare_and_set_increments_lose_no_update():
    store = MemoryStorage()

    def increment_50_times(_: int) -> None:
        for _ in range(50):
            while True:
                item = store.get_item("counter")
                current, version = (0, None) if item is None else (item.value, item.version)
                if store.compare_and_set("counter", current + 1, version=version):
                    break

    _run_threads(8, increment_50_times)

    assert store.get("counter") == 400
    assert store.get_item("counter").version == 400


# -- FakeContext ------------------------------------------------------------------------------


def test_require_raises_scope_denied_naming_the_scope():
    ctx = FakeContext("acme.bills", scopes={"payments:create"})

    ctx.require("payments:create")
    assert ctx.has_scope("payments:create") and not ctx.has_scope("profile.basic:read")
    with pytest.raises(ScopeDenied, match="profile.basic:read") as caught:
        ctx.require("profile.basic:read")
    assert caught.value.scope == "profile.basic:read"
    assert caught.value.plugin_id == "acme.bills"
    assert "acme.bills" in str(caught.value)


def test_fake_context_defaults():
    ctx = FakeContext("acme.bills")

    assert ctx.scopes == frozenset()
    assert ctx.customer is None
    assert (ctx.branch.code, ctx.locale) == ("SH001", "en")
    assert isinstance(ctx.storage, MemoryStorage)
    assert isinstance(ctx.log, logging.LoggerAdapter) and ctx.log.extra == {"plugin": "acme.bills"}


def test_customer_profile_needs_its_scope():
    customer = FakeCustomer("sub-1", {"name": "Li"})
    denied = FakeContext("acme.bills", customer=customer)

    with pytest.raises(ScopeDenied, match="profile.basic:read"):
        denied.customer.profile()

    allowed = FakeContext("acme.bills", customer=FakeCustomer("sub-1", {"name": "Li"}), scopes={"profile.basic:read"})
    profile = allowed.customer.profile()
    profile["name"] = "changed"
    assert allowed.customer.profile() == {"name": "Li"}


def test_signed_in_fake_context_satisfies_the_context_protocol():
    assert isinstance(FakeContext("acme.bills", customer=FakeCustomer("sub-1")), Context)


def test_customer_storage_needs_a_customer():
    with pytest.raises(NoCustomer, match="customer storage"):
        FakeContext("acme.bills").customer_storage


def test_customer_storage_is_separate_per_customer_and_from_plugin_storage():
    stores: dict[str, MemoryStorage] = {}
    shared = MemoryStorage()
    alice = FakeContext("acme.bills", customer=FakeCustomer("alice"), storage=shared, customer_stores=stores)
    bob = FakeContext("acme.bills", customer=FakeCustomer("bob"), storage=shared, customer_stores=stores)
    alice_again = FakeContext("acme.bills", customer=FakeCustomer("alice"), storage=shared, customer_stores=stores)

    alice.customer_storage.set("cart", ["tea"])

    assert bob.customer_storage.get("cart") is None
    assert alice.storage.get("cart") is None
    assert alice_again.customer_storage.get("cart") == ["tea"]


# -- PluginHarness ------------------------------------------------------------------------------

FULL_PLUGIN = '''\
from canopy_sdk import ApiError, Page, SearchHit, Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        who = ctx.customer.subject if ctx.customer else "guest"
        return [Tile(title=f"Hello {who}", link="/bills")]

    @hookimpl
    def canopy_page(self, ctx, path, query):
        if path == "/":
            return Page(title="Home", template="home.html", context={"q": dict(query)})
        if path == "/inline":
            return Page(title="Inline", html="<p>hi</p>")
        if path == "/missing-template":
            return Page(title="Oops", template="nope.html")
        return None

    @hookimpl
    def canopy_api(self, ctx, method, path, body):
        if path == "/count":
            return {"count": ctx.storage.set("hits", 1), "method": method, "body": body}
        raise ApiError(404, "No such endpoint")

    @hookimpl
    def canopy_search(self, ctx, query):
        return [SearchHit(title=f"Result for {query}", score=0.9)]

    @hookimpl
    def canopy_on_event(self, ctx, event):
        ctx.storage.set("last-event", event.type)
        return "ignored"


plugin = Plugin()
'''


def _plugin_with(hooks: str) -> str:
    """A main.py whose Plugin class holds ``hooks`` (indented method source)."""
    return (
        "from canopy_sdk import Page, SearchHit, Tile, hookimpl\n\n\n"
        "class Plugin:\n" + hooks + "\n\nplugin = Plugin()\n"
    )


@pytest.fixture
def harness(tmp_path, make_plugin) -> PluginHarness:
    folder = make_plugin(tmp_path, files={"main.py": FULL_PLUGIN, "templates/home.html": "<h1>{{ q }}</h1>"})
    return PluginHarness(folder)


def test_harness_loads_a_plugin_and_calls_its_hooks(harness):
    assert harness.manifest.id == "acme.bills"

    assert harness.tiles(harness.context()) == [Tile(title="Hello guest", link="/bills")]
    assert harness.tiles(harness.context(customer="alice")) == [Tile(title="Hello alice", link="/bills")]
    assert harness.search(harness.context(), "water") == [SearchHit(title="Result for water", score=0.9)]


def test_harness_pages_and_templates(harness):
    ctx = harness.context()

    page = harness.page(ctx, "/", {"id": "3"})
    assert page == Page(title="Home", template="home.html", context={"q": {"id": "3"}})
    assert harness.template_path(page) == harness.folder / "templates" / "home.html"
    assert harness.page(ctx, "/nowhere") is None
    with pytest.raises(AssertionError, match="nope.html"):
        harness.template_path(harness.page(ctx, "/missing-template"))
    with pytest.raises(AssertionError):
        harness.template_path(harness.page(ctx, "/inline"))


def test_harness_api_upper_cases_the_method_and_contexts_share_storage(harness):
    first = harness.api(harness.context(), "post", "/count", {"a": 1})
    second = harness.api(harness.context(customer="bob"), "get", "/count")

    assert first == {"count": 1, "method": "POST", "body": {"a": 1}}
    assert second["count"] == 2  # one store per harness, as one host


def test_harness_event_is_delivered_and_its_result_ignored(harness):
    ctx = harness.context()
    event = Event(id="ev-1", type="payment.succeeded", plugin_id="acme.bills", occurred_at="2024-05-01T08:00:00Z")

    assert harness.event(ctx, event) is None
    assert ctx.storage.get("last-event") == "payment.succeeded"


def test_harness_context_scopes_default_to_the_manifest(harness):
    assert harness.context().scopes == frozenset({"payments:create", "profile.basic:read"})
    assert harness.context(scopes=set()).scopes == frozenset()
    with pytest.raises(ScopeDenied, match="payments:create"):
        harness.context(scopes={"profile.basic:read"}).require("payments:create")


def test_harness_context_gives_the_customer_profile(harness):
    ctx = harness.context(customer="alice", profile={"name": "Alice"})

    assert ctx.customer.subject == "alice"
    assert ctx.customer.profile() == {"name": "Alice"}


def test_hooks_a_plugin_does_not_implement_give_empty_results(tmp_path, make_plugin):
    harness = PluginHarness(make_plugin(tmp_path, files={"main.py": _plugin_with("    pass")}))
    ctx = harness.context()

    assert harness.tiles(ctx) == []
    assert harness.search(ctx, "x") == []
    assert harness.page(ctx) is None
    assert harness.api(ctx, "GET", "/") is None


@pytest.mark.parametrize(
    "hook",
    [
        "    @hookimpl\n    def canopy_storefront_tile(self, ctx):\n        return []",
        "    @hookimpl\n    def canopy_serach(self, ctx, query):\n        return []",
        # optionalhook must not let a misspelt name through: the host refuses it.
        "    @hookimpl(optionalhook=True)\n    def canopy_storefront_tile(self, ctx):\n        return []",
    ],
    ids=["tile", "serach", "optional"],
)
def test_harness_refuses_a_misspelt_hook(tmp_path, make_plugin, hook):
    folder = make_plugin(tmp_path, files={"main.py": _plugin_with(hook)})

    with pytest.raises(pluggy.PluginValidationError, match=r"canopy_s\w+"):
        PluginHarness(folder)


def test_harness_refuses_a_hook_with_wrong_argument_names(tmp_path, make_plugin):
    hook = "    @hookimpl\n    def canopy_search(self, ctx, text):\n        return []"

    with pytest.raises(pluggy.PluginValidationError):
        PluginHarness(make_plugin(tmp_path, files={"main.py": _plugin_with(hook)}))


@pytest.mark.parametrize(
    "result",
    [
        '{"title": "Hello", "link": "/"}',
        '[{"title": "Hello", "link": "/"}]',
        '[Tile(title="t")] * 13',
        '"Hello"',
        '[Tile(title="t"), None]',
        "[SubTile(title='t')]",
        '(t for t in [Tile(title="t")])',
    ],
)
def test_harness_checks_tile_results(tmp_path, make_plugin, result):
    hook = (
        "    @hookimpl\n    def canopy_storefront_tiles(self, ctx):\n"
        "        class SubTile(Tile):\n            pass\n"
        f"        return {result}"
    )
    harness = PluginHarness(make_plugin(tmp_path, files={"main.py": _plugin_with(hook)}))

    with pytest.raises(InvalidResult, match="canopy_storefront_tiles"):
        harness.tiles(harness.context())


@pytest.mark.parametrize("result", ["{1, 2}", 'float("nan")', "object()", '"x" * (1024 * 1024 + 1)'])
def test_harness_checks_api_results(tmp_path, make_plugin, result):
    hook = f"    @hookimpl\n    def canopy_api(self, ctx, method, path, body):\n        return {result}"
    harness = PluginHarness(make_plugin(tmp_path, files={"main.py": _plugin_with(hook)}))

    with pytest.raises(InvalidResult, match="canopy_api"):
        harness.api(harness.context(), "GET", "/")


@pytest.mark.parametrize("result", ['"<p>hi</p>"', '{"title": "t", "html": "x"}', "[Page(title='t', html='x')]"])
def test_harness_checks_page_results(tmp_path, make_plugin, result):
    hook = f"    @hookimpl\n    def canopy_page(self, ctx, path, query):\n        return {result}"
    harness = PluginHarness(make_plugin(tmp_path, files={"main.py": _plugin_with(hook)}))

    with pytest.raises(InvalidResult, match="canopy_page"):
        harness.page(harness.context())


def test_harness_checks_search_results(tmp_path, make_plugin):
    hook = "    @hookimpl\n    def canopy_search(self, ctx, query):\n        return [Tile(title='not a hit')]"
    harness = PluginHarness(make_plugin(tmp_path, files={"main.py": _plugin_with(hook)}))

    with pytest.raises(InvalidResult, match="canopy_search must return SearchHit items, got Tile"):
        harness.search(harness.context(), "x")


def test_harness_refuses_a_bad_manifest(tmp_path, make_plugin, valid_manifest, to_toml):
    folder = make_plugin(tmp_path, to_toml(valid_manifest(version="one")))

    with pytest.raises(ManifestError) as caught:
        PluginHarness(folder)
    assert [path for path, _ in caught.value.problems] == ["version"]


def test_harness_reports_an_entry_module_that_fails_to_import(tmp_path, make_plugin):
    folder = make_plugin(tmp_path, files={"main.py": "raise RuntimeError('boom')\n"})

    with pytest.raises(PluginImportError, match="acme.bills"):
        PluginHarness(folder)
