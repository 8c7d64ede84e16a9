"""Tests of sh.deals: catalogue, tiles, pages, claiming (including under concurrency), API and search."""

from __future__ import annotations

import importlib
import json
import re
from datetime import date
from pathlib import Path

import pytest

from canopy_sdk import ApiError, Page, StorageError
from canopy_sdk.loading import package_name
from canopy_sdk.testing import MemoryStorage, PluginHarness

from .conftest import ContendedStorage, run_together

PLUGIN_FOLDER = Path(__file__).parents[1]
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
TODAY = date(2026, 11, 22)


def module(harness: PluginHarness, name: str):
    """Return one of the plugin's modules, as the harness imported it."""
    return importlib.import_module(f"{package_name(harness.manifest.id)}.{name}")


@pytest.fixture(autouse=True)
def fixed_today(harness, monkeypatch):
    """Pin the plugin's clock so validity dates do not depend on when the tests run."""
    monkeypatch.setattr(harness.plugin, "today", lambda: TODAY)


@pytest.fixture
def catalogue(harness):
    return module(harness, "catalogue")


@pytest.fixture
def claims(harness):
    return module(harness, "claims")


def claim(harness, customer, coupon_id, locale="en"):
    return harness.api(harness.context(customer=customer, locale=locale), "POST", "/claim", {"coupon_id": coupon_id})


def api_status(harness, ctx, method, path, body=None) -> int:
    with pytest.raises(ApiError) as caught:
        harness.api(ctx, method, path, body)
    assert caught.value.title and caught.value.detail
    return caught.value.status


# --- manifest and catalogue ---------------------------------------------------------------

def test_manifest_loads(harness):
    manifest = harness.manifest
    assert manifest.id == "sh.deals"
    assert (manifest.publisher_kind, manifest.publisher_id) == ("branch", "SH001")
    assert manifest.slots == ("tile", "banner")
    assert {page.path for page in manifest.pages} == {"/", "/deal"}
    assert manifest.name == {"zh": "上海商圈优惠", "en": "Shanghai Neighbourhood Deals"}


def test_catalogue_is_complete_and_bilingual(catalogue):
    assert 5 <= len(catalogue.COUPONS) <= 8
    assert len(catalogue.COUPONS_BY_ID) == len(catalogue.COUPONS)
    for coupon in catalogue.COUPONS:
        assert re.fullmatch(r"[a-z0-9-]+", coupon.id)
        for text in (coupon.name, coupon.merchant, coupon.district, coupon.discount):
            assert set(text) == {"zh", "en"} and HAN.search(text["zh"]) and not HAN.search(text["en"])
        assert coupon.total_stock > 0 and coupon.valid_until >= TODAY
        assert len(coupon.name["en"]) <= 80 and len(coupon.name["zh"]) <= 80  # fits a tile title
    assert catalogue.find(["wukang-coffee"]) is None and catalogue.find(None) is None


# --- tiles --------------------------------------------------------------------------------

def test_anonymous_tiles_show_three_deals_with_stock(harness, catalogue):
    tiles = harness.tiles(harness.context(locale="en"))
    assert len(tiles) == 3
    soonest = sorted(catalogue.COUPONS, key=lambda c: c.valid_until)[:3]
    assert [t.link for t in tiles] == [f"/deal?id={c.id}" for c in soonest]
    assert [t.badge for t in tiles] == [f"{c.total_stock} left" for c in soonest]
    zh = harness.tiles(harness.context(locale="zh-CN"))
    assert zh[0].badge == f"仅剩 {soonest[0].total_stock}" and HAN.search(zh[0].title)


def test_tiles_skip_claimed_sold_out_and_ended_deals(harness, catalogue, monkeypatch):
    first, second, third, fourth = [c.id for c in sorted(catalogue.COUPONS, key=lambda c: c.valid_until)[:4]]
    claim(harness, "alice", first)
    harness.storage.set(f"stock/{second}", 0)
    links = [t.link for t in harness.tiles(harness.context(customer="alice"))]
    assert f"/deal?id={first}" not in links and f"/deal?id={second}" not in links
    assert links[0] == f"/deal?id={third}"
    # bob has not claimed the first deal: he still sees it, with one fewer left
    bob = harness.tiles(harness.context(customer="bob", locale="en"))
    first_coupon = catalogue.COUPONS_BY_ID[first]
    assert bob[0].link == f"/deal?id={first}" and bob[0].badge == f"{first_coupon.total_stock - 1} left"
    monkeypatch.setattr(harness.plugin, "today", lambda: date(2030, 1, 1))
    assert harness.tiles(harness.context()) == []


# --- pages --------------------------------------------------------------------------------

def test_index_for_anonymous_offers_claim_buttons(harness, render, catalogue):
    # Pages are anonymous; in the bank's app the bridge signs the customer in when they tap.
    page = harness.page(harness.context(locale="en"), "/")
    assert isinstance(page, Page) and page.status == 200 and page.template == "index.html"
    assert len(page.context["deals"]) == len(catalogue.COUPONS)
    html = render(page, "en")
    open_deals = [deal for deal in page.context["deals"] if deal["claimable"]]
    assert open_deals and html.count("data-claim=") == len(open_deals)
    assert ">Sign in to claim</button>" not in html
    assert "data-claim-api=" in html


def test_index_for_customer_shows_claim_state(harness, render, catalogue):
    result = claim(harness, "alice", "wukang-coffee")
    page = harness.page(harness.context(customer="alice"), "/")
    deals = {deal["id"]: deal for deal in page.context["deals"]}
    assert deals["wukang-coffee"]["claimed"] and deals["wukang-coffee"]["code"] == result["code"]
    assert not deals["lane-bookshop"]["claimed"] and deals["lane-bookshop"]["claimable"]
    html = render(page)
    assert result["code"] in html
    assert html.count("data-claim=") == len(catalogue.COUPONS) - 1
    assert 'data-claim="wukang-coffee"' not in html


def test_deal_page(harness, render):
    harness.storage.set("stock/lane-bookshop", 4)
    page = harness.page(harness.context(customer="bob", locale="en"), "/deal", {"id": "lane-bookshop"})
    assert page.status == 200 and page.template == "deal.html"
    assert page.context["deal"]["remaining"] == 4
    html = render(page, "en")
    assert "4 left" in html and "20% off at Lane Bookshop" in html and 'data-claim="lane-bookshop"' in html


def test_sold_out_and_ended_deals_have_no_button(harness, render, monkeypatch):
    harness.storage.set("stock/lane-bookshop", 0)
    html = render(harness.page(harness.context(customer="bob", locale="en"), "/deal", {"id": "lane-bookshop"}), "en")
    assert "All claimed." in html and "data-claim=" not in html
    monkeypatch.setattr(harness.plugin, "today", lambda: date(2027, 3, 1))
    html = render(harness.page(harness.context(customer="bob", locale="en"), "/deal", {"id": "wukang-coffee"}), "en")
    assert "This deal has ended." in html and "data-claim=" not in html


@pytest.mark.parametrize("query", [{}, {"id": ""}, {"id": "nope"}, {"id": "x" * 5000}, {"id": "../wukang-coffee"}])
def test_unknown_deal_is_a_404_page(harness, render, query):
    page = harness.page(harness.context(), "/deal", query)
    assert page.status == 404 and page.template == "not_found.html"
    assert "找不到这个优惠" in render(page)


def test_unknown_path_is_none(harness):
    assert harness.page(harness.context(), "/deals") is None


def test_every_page_renders_in_both_languages(harness, render):
    claim(harness, "carol", "riverside-cinema")
    ctx = harness.context(customer="carol")
    pages = [harness.page(ctx, "/"), harness.page(ctx, "/deal", {"id": "riverside-cinema"}),
             harness.page(ctx, "/deal", {"id": "jingan-bakery"}), harness.page(ctx, "/deal", {"id": "?"}),
             harness.page(harness.context(), "/")]
    for page in pages:
        json.dumps(dict(page.context))
        zh = render(page, "zh-CN")
        assert HAN.search(zh) and 'lang="zh-CN"' in zh
        en = render(page, "en")
        assert not HAN.search(en), HAN.findall(en)[:10]


# --- claiming -----------------------------------------------------------------------------

def test_claim_gives_a_code_and_takes_one_from_stock(harness, catalogue):
    coupon = catalogue.COUPONS_BY_ID["wukang-coffee"]
    result = claim(harness, "alice", coupon.id)
    assert result["claimed"] is True
    assert re.fullmatch(r"PTC-[A-Z2-9]{8}", result["code"])
    assert result["remaining"] == coupon.total_stock - 1
    assert harness.storage.get("stock/wukang-coffee") == coupon.total_stock - 1
    assert claim(harness, "bob", coupon.id)["code"] != result["code"]


def test_double_claim_is_refused_and_stock_kept(harness):
    claim(harness, "alice", "wukang-coffee")
    left = harness.storage.get("stock/wukang-coffee")
    assert api_status(harness, harness.context(customer="alice"), "POST", "/claim", {"coupon_id": "wukang-coffee"}) == 409
    assert harness.storage.get("stock/wukang-coffee") == left


def test_sold_out_is_410_and_stock_never_negative(harness):
    harness.storage.set("stock/jingan-bakery", 1)
    assert claim(harness, "alice", "jingan-bakery")["remaining"] == 0
    for customer in ("bob", "carol"):
        ctx = harness.context(customer=customer)
        assert api_status(harness, ctx, "POST", "/claim", {"coupon_id": "jingan-bakery"}) == 410
        assert harness.api(ctx, "GET", "/claims") == {"claims": []}
    assert harness.storage.get("stock/jingan-bakery") == 0


def test_expired_coupon_is_410_and_takes_no_stock(harness, monkeypatch):
    monkeypatch.setattr(harness.plugin, "today", lambda: date(2026, 12, 16))
    assert api_status(harness, harness.context(customer="alice"), "POST", "/claim", {"coupon_id": "jingan-bakery"}) == 410
    assert harness.storage.get_item("stock/jingan-bakery") is None
    monkeypatch.setattr(harness.plugin, "today", lambda: date(2026, 12, 15))  # the last valid day counts
    assert claim(harness, "alice", "jingan-bakery")["claimed"] is True


@pytest.mark.parametrize("junk", ["lots", -3, 2.5, None, [1], {"n": 1}, True])
def test_a_damaged_stock_counter_gives_nothing_out(harness, junk):
    harness.storage.set("stock/lane-bookshop", junk)
    assert api_status(harness, harness.context(customer="dan"), "POST", "/claim", {"coupon_id": "lane-bookshop"}) == 410
    assert harness.storage.get("stock/lane-bookshop") == junk
    assert harness.page(harness.context(), "/deal", {"id": "lane-bookshop"}).context["deal"]["remaining"] == 0


def test_failed_marking_gives_the_stock_back(harness, claims, catalogue):
    coupon = catalogue.COUPONS_BY_ID["lane-bookshop"]
    shop = MemoryStorage()

    class RefusingStore(MemoryStorage):
        def compare_and_set(self, key, value, *, version, ttl=None):
            raise StorageError("disk full")

    with pytest.raises(StorageError):
        claims.claim(shop, RefusingStore(), coupon, today=TODAY)
    assert shop.get("stock/lane-bookshop") == coupon.total_stock

    class LosingStore(MemoryStorage):  # a concurrent claim by the same customer got there first
        def compare_and_set(self, key, value, *, version, ttl=None):
            return False

    with pytest.raises(claims.AlreadyClaimed):
        claims.claim(shop, LosingStore(), coupon, today=TODAY)
    assert shop.get("stock/lane-bookshop") == coupon.total_stock


def test_give_back_never_invents_stock(claims, catalogue):
    coupon = catalogue.COUPONS_BY_ID["lane-bookshop"]
    shop = MemoryStorage()
    assert claims.give_back(shop, coupon) is False and shop.get_item("stock/lane-bookshop") is None
    shop.set("stock/lane-bookshop", coupon.total_stock)
    assert claims.give_back(shop, coupon) is True
    assert shop.get("stock/lane-bookshop") == coupon.total_stock


def test_sixteen_customers_race_for_the_last_five(harness):
    harness.storage = ContendedStorage()
    harness.storage.set("stock/riverside-cinema", 5)
    jobs = [lambda n=n: claim(harness, f"customer-{n}", "riverside-cinema") for n in range(16)]
    outcomes = run_together(jobs)
    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) == 5
    assert sorted(o for o in outcomes if not isinstance(o, dict)) == [410] * 11
    assert sorted(w["remaining"] for w in winners) == [0, 1, 2, 3, 4]
    assert len({w["code"] for w in winners}) == 5
    assert harness.storage.get("stock/riverside-cinema") == 0
    holders = [s for s, store in harness.customer_stores.items() if store.get("claims/riverside-cinema")]
    assert len(holders) == 5
    assert harness.storage.lost > 0, "the threads never contended; the test proves nothing"


def test_one_customer_tapping_many_times_gets_one_coupon(harness):
    harness.storage = ContendedStorage()
    harness.customer_stores["erin"] = ContendedStorage()
    harness.storage.set("stock/riverside-cinema", 3)
    outcomes = run_together([lambda: claim(harness, "erin", "riverside-cinema") for _ in range(16)])
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    # A losing tap is "already claimed", or "sold out" while other doomed taps held the stock.
    assert set(o for o in outcomes if not isinstance(o, dict)) <= {409, 410}
    assert harness.storage.get("stock/riverside-cinema") == 2  # every losing tap gave its stock back


def test_mixed_race_never_oversells_nor_loses_stock(harness):
    harness.storage = ContendedStorage()
    harness.storage.set("stock/neighbourhood-market", 4)
    jobs = [lambda n=n: claim(harness, f"c{n % 8}", "neighbourhood-market") for n in range(16)]
    outcomes = run_together(jobs)
    assert set(o for o in outcomes if not isinstance(o, dict)) <= {409, 410}

    def holders():
        return {s for s, store in harness.customer_stores.items() if store.get("claims/neighbourhood-market")}

    # Stock held by a customer's doomed second tap can make a third customer see "sold out"
    # for a moment; it comes back, so stock plus claims always equals what there was.
    assert 1 <= len(holders()) <= 4
    assert harness.storage.get("stock/neighbourhood-market") + len(holders()) == 4
    for n in range(8):  # the race is over: whoever still wants one gets what is left
        try:
            claim(harness, f"c{n}", "neighbourhood-market")
        except ApiError as exc:
            assert exc.status in (409, 410)
    assert len(holders()) == 4 and harness.storage.get("stock/neighbourhood-market") == 0


# --- API input ----------------------------------------------------------------------------

def test_claim_needs_a_customer(harness):
    assert api_status(harness, harness.context(), "POST", "/claim", {"coupon_id": "wukang-coffee"}) == 401
    assert api_status(harness, harness.context(), "GET", "/claims") == 401
    assert harness.storage.get_item("stock/wukang-coffee") is None


@pytest.mark.parametrize("body", [
    None, [], ["wukang-coffee"], "wukang-coffee", 5, {}, {"coupon_id": None}, {"coupon_id": 5},
    {"coupon_id": ["wukang-coffee"]}, {"coupon_id": {"id": "x"}}, {"coupon_id": ""}, {"coupon": "wukang-coffee"},
])
def test_malformed_claims_are_400(harness, body):
    assert api_status(harness, harness.context(customer="fay"), "POST", "/claim", body) == 400
    assert harness.storage.list("stock/") == []


@pytest.mark.parametrize("coupon_id", ["nope", "WUKANG-COFFEE", "x" * 100_000, "stock/../x", "wukang-coffee "])
def test_unknown_coupons_are_404(harness, coupon_id):
    with pytest.raises(ApiError) as caught:
        harness.api(harness.context(customer="fay"), "POST", "/claim", {"coupon_id": coupon_id})
    assert caught.value.status == 404 and len(caught.value.detail) < 200


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/claim", 405), ("DELETE", "/claims", 405), ("POST", "/claims", 405), ("GET", "/nope", 404),
    ("POST", "/claim/wukang-coffee", 404),
])
def test_unknown_calls(harness, method, path, status):
    assert api_status(harness, harness.context(customer="fay"), method, path, {"coupon_id": "wukang-coffee"}) == status


def test_list_claims(harness):
    ctx = harness.context(customer="gus", locale="zh-CN")
    assert harness.api(ctx, "GET", "/claims") == {"claims": []}
    first = claim(harness, "gus", "lane-bookshop")
    claim(harness, "gus", "wukang-coffee")
    listed = harness.api(ctx, "GET", "/claims")["claims"]
    assert [c["id"] for c in listed] == ["wukang-coffee", "lane-bookshop"]
    assert listed[1]["code"] == first["code"] and listed[1]["merchant"] == "弄堂书店（田子坊）"
    assert listed[1]["claimed_at"]
    assert harness.api(harness.context(customer="hal"), "GET", "/claims") == {"claims": []}


# --- search -------------------------------------------------------------------------------

@pytest.mark.parametrize("query, coupon_id", [
    ("咖啡", "wukang-coffee"), ("coffee", "wukang-coffee"), ("Plane Tree", "wukang-coffee"),
    ("小笼包", "old-town-xiaolongbao"), ("Lujiazui", "riverside-cinema"), ("电影", "riverside-cinema"),
    ("菜场", "neighbourhood-market"), ("bakery", "jingan-bakery"), ("田子坊", "lane-bookshop"),
])
def test_search_finds_merchants(harness, query, coupon_id):
    hits = harness.search(harness.context(locale="en"), query)
    assert hits and hits[0].link == f"/deal?id={coupon_id}" and hits[0].score == 0.8


@pytest.mark.parametrize("query", ["优惠", "coupons", "Shanghai deals"])
def test_general_search_lists_every_open_deal(harness, catalogue, query):
    assert len(harness.search(harness.context(), query)) == len(catalogue.COUPONS)


def test_search_misses_and_ended_deals(harness, monkeypatch):
    assert harness.search(harness.context(), "电费") == []
    assert harness.search(harness.context(), "x") == []
    monkeypatch.setattr(harness.plugin, "today", lambda: date(2027, 2, 1))
    assert harness.search(harness.context(), "咖啡") == []
