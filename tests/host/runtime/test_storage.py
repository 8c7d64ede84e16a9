"""host.runtime.storage: each plugin's key–value store on the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from canopy_sdk import InvalidKey, InvalidValue, QuotaExceeded, ValueTooLarge, storage_rules
from sqlalchemy import select, update

from host.db import get_database, utcnow
from host.runtime.models import StorageEntry
from host.runtime.storage import PluginStorage, purge_expired


@pytest.fixture
def db(app_factory):
    """The migrated database of an app with no plugins."""
    return get_database(app_factory(PLUGIN_PATHS=[]))


@pytest.fixture
def store(db) -> PluginStorage:
    return PluginStorage(db, "plugin.a", "")


def expire(db, store: PluginStorage, key: str) -> None:
    """Move ``key``'s expiry into the past (time travel without waiting)."""
    with db.transaction(write=True) as session:
        changed = session.execute(
            update(StorageEntry)
            .where(StorageEntry.plugin_id == store.plugin_id, StorageEntry.customer == store.customer, StorageEntry.key == key)
            .values(expires_at=utcnow() - timedelta(seconds=5))
        ).rowcount
    assert changed == 1


def rows(db, plugin_id: str | None = None) -> list[tuple]:
    """Every stored row (of one plugin), expired or not, as (plugin, customer, key, value, version)."""
    query = select(StorageEntry.plugin_id, StorageEntry.customer, StorageEntry.key, StorageEntry.value, StorageEntry.version)
    if plugin_id is not None:
        query = query.where(StorageEntry.plugin_id == plugin_id)
    with db.transaction() as session:
        return sorted(tuple(row) for row in session.execute(query))


# -- get, set, versions -----------------------------------------------------------------------------


def test_an_absent_key_reads_as_the_default(store):
    assert store.get("missing") is None
    assert store.get("missing", 7) == 7
    assert store.get_item("missing") is None


def test_set_then_get_with_versions(store):
    assert store.set("greeting", {"zh": "你好", "n": [1, 2.5, None, True]}) == 1
    assert store.get("greeting") == {"zh": "你好", "n": [1, 2.5, None, True]}

    assert store.set("greeting", "again") == 2
    item = store.get_item("greeting")
    assert (item.value, item.version, item.expires_at) == ("again", 2, None)


def test_a_stored_null_is_a_value(store):
    store.set("nothing", None)
    item = store.get_item("nothing")
    assert item is not None and item.value is None and item.version == 1
    assert store.get("nothing", "default") is None


def test_ttl_sets_an_expiry_and_a_later_set_without_ttl_clears_it(store):
    store.set("session", "s", ttl=3600)
    expires = store.get_item("session").expires_at
    assert expires is not None and expires > time.time()

    store.set("session", "s2")
    assert store.get_item("session").expires_at is None


def test_an_expired_key_is_gone_for_every_read(db, store):
    store.set("flash", "x", ttl=60)
    store.set("keep", "y")
    expire(db, store, "flash")

    assert store.get("flash", "gone") == "gone"
    assert store.get_item("flash") is None
    assert store.list() == ["keep"]
    assert store.delete("flash") is False
    assert [r[2] for r in rows(db)] == ["keep"]  # delete also removed the expired leftover


def test_set_on_an_expired_key_starts_again_at_version_1(db, store):
    store.set("k", 1, ttl=60)
    store.set("k", 2, ttl=60)
    expire(db, store, "k")

    assert store.set("k", 3) == 1


# -- compare-and-set ---------------------------------------------------------------------------------


def test_cas_none_writes_only_when_absent(store):
    assert store.compare_and_set("lock", "me", version=None) is True
    assert store.get_item("lock").version == 1

    assert store.compare_and_set("lock", "you", version=None) is False
    assert store.get("lock") == "me"


def test_cas_with_the_current_version_wins_and_a_stale_one_loses(store):
    store.set("counter", 0)
    assert store.compare_and_set("counter", 1, version=1) is True
    assert store.get_item("counter").version == 2

    assert store.compare_and_set("counter", 99, version=1) is False  # stale
    assert store.compare_and_set("counter", 99, version=3) is False  # from the future
    item = store.get_item("counter")
    assert (item.value, item.version) == (1, 2)


def test_cas_with_a_version_on_an_absent_key_loses(store):
    assert store.compare_and_set("ghost", 1, version=1) is False
    assert store.get_item("ghost") is None


def test_an_expired_key_counts_as_absent_for_cas(db, store):
    store.set("hold", "old", ttl=60)
    store.set("hold", "older", ttl=60)  # version 2
    expire(db, store, "hold")

    assert store.compare_and_set("hold", "stale", version=2) is False  # its old version is gone with it
    assert store.compare_and_set("hold", "new", version=None) is True
    item = store.get_item("hold")
    assert (item.value, item.version, item.expires_at) == ("new", 1, None)


def test_cas_can_set_a_ttl(store):
    assert store.compare_and_set("lease", "me", version=None, ttl=30)
    assert store.get_item("lease").expires_at > time.time()


@pytest.mark.parametrize("version", [True, "1", 1.0, [1]])
def test_cas_refuses_a_version_that_is_not_an_integer(store, version):
    store.set("k", "v")
    with pytest.raises(InvalidValue, match="version"):
        store.compare_and_set("k", "w", version=version)
    assert store.get_item("k").version == 1


# -- delete ------------------------------------------------------------------------------------------


def test_delete(store):
    store.set("k", "v")
    store.set("k", "w")

    assert store.delete("k") is True
    assert store.get("k") is None
    assert store.delete("k") is False
    assert store.delete("never-there") is False
    assert store.compare_and_set("k", "fresh", version=None)
    assert store.get_item("k").version == 1  # a deleted key starts over


# -- list --------------------------------------------------------------------------------------------


def test_list_by_prefix_sorted(store):
    for key in ["user:2", "user:10", "user:1", "order:1", "user/x", "users"]:
        store.set(key, True)

    assert store.list("user:") == ["user:1", "user:10", "user:2"]
    assert store.list("user") == ["user/x", "user:1", "user:10", "user:2", "users"]
    assert store.list() == ["order:1", "user/x", "user:1", "user:10", "user:2", "users"]
    assert store.list("nothing") == []


def test_list_order_is_the_same_on_every_database(store):
    keys = ["b", "B", "a", "A", "_x", "-x", "1", "a.b", "a-b", "a_b", "a:b", "a/b", "Z"]
    for key in keys:
        store.set(key, 0)

    assert store.list(limit=100) == sorted(keys)


def test_underscore_is_not_a_wildcard(store):
    for key in ["a_b", "axb", "a_c", "ab", "a__"]:
        store.set(key, 0)

    assert store.list("a_") == ["a__", "a_b", "a_c"]
    assert store.list("a__") == ["a__"]
    assert store.list("a.") == []


def test_percent_cannot_be_a_prefix_or_a_key(store):
    store.set("a.b", 0)
    with pytest.raises(InvalidKey):
        store.list("%")
    with pytest.raises(InvalidKey):
        store.list("a%")
    with pytest.raises(InvalidKey):
        store.set("100%", 0)


def test_list_limit(store):
    for index in range(5):
        store.set(f"k{index}", index)

    assert store.list(limit=2) == ["k0", "k1"]
    assert store.list("k", limit=1) == ["k0"]
    assert store.list(limit=storage_rules.MAX_LIST_LIMIT) == [f"k{i}" for i in range(5)]


@pytest.mark.parametrize("limit", [0, -1, storage_rules.MAX_LIST_LIMIT + 1, True, 2.0, "10"])
def test_list_refuses_a_bad_limit(store, limit):
    with pytest.raises(InvalidValue, match="limit"):
        store.list(limit=limit)


def test_list_refuses_a_bad_prefix(store):
    with pytest.raises(InvalidKey):
        store.list("/root")


# -- namespaces --------------------------------------------------------------------------------------


def test_namespaces_are_isolated(db):
    a = PluginStorage(db, "plugin.a", "")
    b = PluginStorage(db, "plugin.b", "")
    a_x = PluginStorage(db, "plugin.a", "customer-x")
    a_y = PluginStorage(db, "plugin.a", "customer-y")

    a.set("secret", "a's")
    a.set("secret", "a's again")
    a_x.set("secret", "x's")

    assert b.get("secret") is None and b.list() == []
    assert a_y.get("secret") is None and a_y.list() == []
    assert a.get("secret") == "a's again" and a.get_item("secret").version == 2
    assert a_x.get("secret") == "x's" and a_x.get_item("secret").version == 1

    assert b.compare_and_set("secret", "b's", version=None) is True
    assert b.delete("secret") is True
    assert a.get("secret") == "a's again"
    assert a_x.delete("secret") is True
    assert a.get("secret") == "a's again"
    assert a.list() == ["secret"]


def test_a_customer_namespace_does_not_see_plugin_wide_keys(db):
    plugin_wide = PluginStorage(db, "plugin.a", "")
    customer = PluginStorage(db, "plugin.a", "customer-x")
    plugin_wide.set("stock", 10)

    assert customer.list() == []
    assert customer.compare_and_set("stock", 1, version=1) is False
    assert plugin_wide.get_item("stock").version == 1


def test_similar_plugin_ids_do_not_share(db):
    PluginStorage(db, "plugin.a", "").set("k", "a")
    assert PluginStorage(db, "plugin.a.b", "").get("k") is None
    assert PluginStorage(db, "plugin", "").list() == []


# -- limits and refused writes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["", "x" * (storage_rules.MAX_KEY_LENGTH + 1), "/absolute", "has space", "ünicode", "new\nline", 5, None],
)
def test_bad_keys_are_refused_everywhere(store, key):
    for call in (
        lambda: store.get(key),
        lambda: store.get_item(key),
        lambda: store.set(key, 1),
        lambda: store.compare_and_set(key, 1, version=None),
        lambda: store.delete(key),
    ):
        with pytest.raises(InvalidKey):
            call()


def test_the_longest_key_is_fine(store):
    key = "k" * storage_rules.MAX_KEY_LENGTH
    store.set(key, 1)
    assert store.list() == [key]


@pytest.mark.parametrize("ttl", [0, -1, 0.5, storage_rules.MAX_TTL_SECONDS + 1, float("nan"), float("inf"), "60", True])
def test_bad_ttls_are_refused(store, ttl):
    with pytest.raises(InvalidValue, match="ttl"):
        store.set("k", 1, ttl=ttl)
    with pytest.raises(InvalidValue, match="ttl"):
        store.compare_and_set("k", 1, version=None, ttl=ttl)


@pytest.mark.parametrize("value", [float("nan"), {"x": float("inf")}, {1, 2}, object(), b"bytes"])
def test_values_that_are_not_json_are_refused(store, value):
    with pytest.raises(InvalidValue):
        store.set("k", value)


def test_an_oversized_value_is_refused_and_the_limit_itself_is_fine(store):
    exactly = "x" * (storage_rules.MAX_VALUE_BYTES - 2)  # two quote marks make it the limit
    store.set("big", exactly)
    assert store.get("big") == exactly

    with pytest.raises(ValueTooLarge):
        store.set("big", exactly + "x")
    with pytest.raises(ValueTooLarge):
        store.set("wide", "汉" * (storage_rules.MAX_VALUE_BYTES // 3))  # counted in UTF-8 bytes


def test_nothing_is_half_written_by_a_refused_write(db, store):
    store.set("k", "original", ttl=3600)
    before = rows(db)
    expires = store.get_item("k").expires_at

    attempts = [
        lambda: store.set("k", "x" * (storage_rules.MAX_VALUE_BYTES + 1)),
        lambda: store.set("k", float("nan")),
        lambda: store.set("k", "new", ttl=-5),
        lambda: store.compare_and_set("k", "new", version=1, ttl=0),
        lambda: store.compare_and_set("k", {"bad": {1}}, version=1),
        lambda: store.set("new key", "x"),
    ]
    for attempt in attempts:
        with pytest.raises((InvalidKey, InvalidValue, ValueTooLarge)):
            attempt()

    assert rows(db) == before
    assert store.get_item("k").expires_at == expires


def test_quota_refusals_and_what_still_works(db, store, monkeypatch):
    monkeypatch.setattr(storage_rules, "MAX_KEYS_PER_NAMESPACE", 3)
    for key in ("a", "b", "c"):
        store.set(key, 0, ttl=600)

    with pytest.raises(QuotaExceeded, match="'plugin.a' already holds 3 keys"):
        store.set("d", 0)
    with pytest.raises(QuotaExceeded):
        store.compare_and_set("d", 0, version=None)
    assert store.get("d") is None
    assert len(rows(db)) == 3

    assert store.set("a", 1, ttl=600) == 2  # changing a key the namespace holds is no new key
    assert store.compare_and_set("b", 1, version=1) is True
    PluginStorage(db, "plugin.b", "").set("d", 0)  # other namespaces have their own quota
    PluginStorage(db, "plugin.a", "customer-x").set("d", 0)

    store.delete("a")
    assert store.set("d", 0) == 1
    expire(db, store, "b")  # an expired key no longer counts
    assert store.set("e", 0) == 1
    with pytest.raises(QuotaExceeded):
        store.set("f", 0)


# -- purge ---------------------------------------------------------------------------------------------


def test_purge_expired_removes_only_expired_keys_of_every_plugin(db):
    a = PluginStorage(db, "plugin.a", "")
    b = PluginStorage(db, "plugin.b", "customer-x")
    a.set("old", 1, ttl=60)
    b.set("old", 1, ttl=60)
    a.set("live", 1, ttl=3600)
    b.set("forever", 1)
    expire(db, a, "old")
    expire(db, b, "old")

    assert purge_expired(db) == 2
    assert [(r[0], r[2]) for r in rows(db)] == [("plugin.a", "live"), ("plugin.b", "forever")]
    assert purge_expired(db) == 0


# -- concurrency ---------------------------------------------------------------------------------------


def race(threads: int, work) -> list:
    """Run ``work(i)`` on ``threads`` threads released together; return the results."""
    barrier = threading.Barrier(threads)

    def run(index):
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, range(threads)))


def cas_increment(store: PluginStorage, key: str, times: int) -> int:
    """Increment ``key`` ``times`` times with compare-and-set; return how many attempts lost."""
    lost = 0
    done = 0
    while done < times:
        item = store.get_item(key)
        if store.compare_and_set(key, item.value + 1, version=item.version):
            done += 1
        else:
            lost += 1
    return lost


def check_only_one_wins_the_absent_key(db, threads: int) -> None:
    results = race(threads, lambda i: PluginStorage(db, "plugin.a", "").compare_and_set("lock", i, version=None))

    assert results.count(True) == 1
    winner = results.index(True)
    item = PluginStorage(db, "plugin.a", "").get_item("lock")
    assert (item.value, item.version) == (winner, 1)


def check_increments_are_never_lost(db, threads: int, times: int) -> None:
    store = PluginStorage(db, "plugin.a", "")
    store.set("counter", 0)

    race(threads, lambda i: cas_increment(PluginStorage(db, "plugin.a", ""), "counter", times))

    item = store.get_item("counter")
    assert item.value == threads * times
    assert item.version == threads * times + 1


def test_only_one_of_16_concurrent_cas_on_an_absent_key_wins(db, postgres_only):
    check_only_one_wins_the_absent_key(db, 16)


def test_8_threads_of_25_cas_increments_lose_nothing(db, postgres_only):
    check_increments_are_never_lost(db, 8, 25)


def test_only_one_concurrent_cas_on_an_absent_key_wins_small(db):
    check_only_one_wins_the_absent_key(db, 6)


def test_concurrent_cas_increments_lose_nothing_small(db):
    check_increments_are_never_lost(db, 4, 10)


def test_concurrent_cas_on_an_expired_key_lets_one_restart_it(db):
    store = PluginStorage(db, "plugin.a", "")
    store.set("lease", "old", ttl=60)
    expire(db, store, "lease")

    results = race(6, lambda i: PluginStorage(db, "plugin.a", "").compare_and_set("lease", i, version=None, ttl=60))

    assert results.count(True) == 1
    assert store.get_item("lease").version == 1
