"""Tests of city.utilities: manifest, sandbox-ready imports, simulated billing, accounts, pages, API, search."""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canopy_sdk import ApiError, Page
from canopy_sdk.loading import package_name
from canopy_sdk.testing import PluginHarness

PLUGIN_FOLDER = Path(__file__).parents[1]
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
TODAY = date(2026, 11, 22)  # bills are for 2026-10, due 2026-11-20
PROPERTIES = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def module(name: str):
    """Return one of the plugin's modules, importing the plugin as the harness does."""
    PluginHarness(PLUGIN_FOLDER)
    return importlib.import_module(f"{package_name('city.utilities')}.{name}")


billing = module("billing")


@pytest.fixture(autouse=True)
def fixed_today(harness, monkeypatch):
    monkeypatch.setattr(harness.plugin, "today", lambda: TODAY)


def link(harness, customer, utility, account_no):
    return harness.api(harness.context(customer=customer), "POST", "/accounts",
                       {"utility": utility, "account_no": account_no})


def refusal(harness, ctx, method, path, body=None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        harness.api(ctx, method, path, body)
    assert caught.value.title and caught.value.detail
    return caught.value


def no_floats(value) -> bool:
    """Return whether a JSON-able value holds no float anywhere."""
    if isinstance(value, float):
        return False
    if isinstance(value, dict):
        return all(no_floats(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(no_floats(v) for v in value)
    return True


# --- manifest and code ----------------------------------------------------------------------

def test_manifest_loads(harness):
    manifest = harness.manifest
    assert manifest.id == "city.utilities"
    assert (manifest.publisher_kind, manifest.publisher_id) == ("partner", "CITYPOWER")
    assert manifest.scopes == ("payments:create", "payments:read")
    assert {page.path for page in manifest.pages} == {"/", "/bills", "/link"}


def test_code_imports_only_the_standard_library_and_the_sdk():
    """A partner plugin runs in the sandbox: nothing else is installed there."""
    for path in PLUGIN_FOLDER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # the plugin's own modules
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "canopy_sdk", f"{path.name} imports {name}"


# --- the simulated billing back end -----------------------------------------------------------

def test_bills_are_deterministic_integers():
    first = billing.monthly_bill("electricity", "310012345678", "2026-10")
    assert first == billing.monthly_bill("electricity", "310012345678", "2026-10")
    assert type(first.amount) is int and type(first.usage) is int and first.currency == "CNY"
    assert first.amount == billing.price(billing.UTILITIES["electricity"], first.usage)
    assert first.due_date == "2026-11-20" and first.id == "electricity-310012345678-202610"
    others = {billing.monthly_bill("electricity", "310012345678", f"2026-{m:02d}").usage for m in range(1, 13)}
    assert len(others) > 1, "usage should vary from month to month"


@PROPERTIES
@given(st.sampled_from(sorted(billing.UTILITIES)), st.from_regex(r"[0-9]{8,12}", fullmatch=True),
       st.integers(2000, 2099), st.integers(1, 12))
def test_every_bill_is_in_range_and_priced_in_whole_fen(code, account_no, year, month):
    utility = billing.UTILITIES[code]
    bill = billing.monthly_bill(code, account_no, f"{year}-{month:02d}")
    assert utility.min_usage <= bill.usage <= utility.max_usage
    assert type(bill.amount) is int and bill.amount > 0
    assert bill.amount * 10 - 5 <= bill.usage * utility.tariff_li < bill.amount * 10 + 5
    assert no_floats(bill.to_dict())


def test_prices_round_half_up_to_a_fen():
    electricity = billing.UTILITIES["electricity"]  # 0.617 yuan per kWh
    assert billing.price(electricity, 1) == 62
    assert billing.price(electricity, 5) == 309  # 308.5 fen rounds up
    assert billing.price(electricity, 100) == 6170
    assert billing.price(billing.UTILITIES["water"], 12) == 6000


@pytest.mark.parametrize("fen, text", [(0, "¥0.00"), (5, "¥0.05"), (123456, "¥1,234.56"), (-250, "-¥2.50")])
def test_amounts_are_formatted_from_fen(fen, text):
    assert billing.format_amount(fen) == text


@pytest.mark.parametrize("today, period", [(date(2026, 11, 22), "2026-10"), (date(2026, 1, 1), "2025-12")])
def test_billing_period_is_the_last_closed_month(today, period):
    assert billing.billing_period(today) == period
    assert billing.monthly_bill("gas", "12345678", period).due_date.startswith(f"{today.year}-{today.month:02d}")


# --- linking accounts -----------------------------------------------------------------------

def test_link_list_and_unlink(harness):
    result = link(harness, "alice", "electricity", "310012345678")
    assert result["linked"] is True and result["account"]["account_no"] == "310012345678"
    assert result["bill"]["period"] == "2026-10" and type(result["bill"]["amount"]) is int
    link(harness, "alice", "water", "12345678")
    ctx = harness.context(customer="alice")
    listed = harness.api(ctx, "GET", "/accounts")
    assert [(a["utility"], a["account_no"]) for a in listed["accounts"]] == [
        ("electricity", "310012345678"), ("water", "12345678")]
    assert listed["limit"] == 10
    assert harness.api(ctx, "DELETE", "/accounts/water/12345678") == {"unlinked": True}
    assert refusal(harness, ctx, "DELETE", "/accounts/water/12345678").status == 404
    assert len(harness.api(ctx, "GET", "/accounts")["accounts"]) == 1
    assert harness.api(harness.context(customer="bob"), "GET", "/accounts")["accounts"] == []


def test_duplicate_link_is_409(harness):
    link(harness, "alice", "gas", "87654321")
    error = refusal(harness, harness.context(customer="alice"), "POST", "/accounts",
                    {"utility": "gas", "account_no": "87654321"})
    assert error.status == 409
    assert link(harness, "alice", "water", "87654321")["linked"]  # same number, other utility: fine


def test_at_most_ten_accounts(harness):
    for n in range(10):
        link(harness, "alice", "electricity", f"{10000000 + n}")
    error = refusal(harness, harness.context(customer="alice"), "POST", "/accounts",
                    {"utility": "gas", "account_no": "99999999"})
    assert error.status == 409 and "10" in error.detail
    assert len(harness.api(harness.context(customer="alice"), "GET", "/accounts")["accounts"]) == 10


@pytest.mark.parametrize("body, field", [
    (None, None), ([], None), ("electricity", None), (12345678, None),
    ({}, "utility"), ({"utility": None, "account_no": "12345678"}, "utility"),
    ({"utility": "ELECTRICITY", "account_no": "12345678"}, "utility"),
    ({"utility": ["gas"], "account_no": "12345678"}, "utility"),
    ({"utility": 1, "account_no": "12345678"}, "utility"),
    ({"utility": "phone", "account_no": "12345678"}, "utility"),
    ({"utility": "gas"}, "account_no"), ({"utility": "gas", "account_no": 12345678}, "account_no"),
    ({"utility": "gas", "account_no": "1234567"}, "account_no"),
    ({"utility": "gas", "account_no": "1234567890123"}, "account_no"),
    ({"utility": "gas", "account_no": "12345678a"}, "account_no"),
    ({"utility": "gas", "account_no": "１２３４５６７８"}, "account_no"),
    ({"utility": "gas", "account_no": "١٢٣٤٥٦٧٨"}, "account_no"),
    ({"utility": "gas", "account_no": "12345678\n"}, "account_no"),
    ({"utility": "gas", "account_no": " 12345678"}, "account_no"),
    ({"utility": "gas", "account_no": "9" * 100_000}, "account_no"),
    ({"utility": "gas", "account_no": ["12345678"]}, "account_no"),
])
def test_bad_link_requests_are_400_naming_the_field(harness, body, field):
    error = refusal(harness, harness.context(customer="carol", locale="en"), "POST", "/accounts", body)
    assert error.status == 400
    if field:
        assert field in error.title and field in error.detail
    assert len(error.detail) < 200
    assert harness.api(harness.context(customer="carol"), "GET", "/accounts")["accounts"] == []


def test_concurrent_links_respect_the_limit(harness):
    barrier = threading.Barrier(16)
    outcomes = []

    def worker(n):
        barrier.wait()
        try:
            link(harness, "dora", "water", f"{20000000 + n}")
            outcomes.append(200)
        except ApiError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == [200] * 10 + [409] * 6
    assert len(harness.api(harness.context(customer="dora"), "GET", "/accounts")["accounts"]) == 10


def test_damaged_storage_is_read_safely(harness):
    ctx = harness.context(customer="erin")
    ctx.customer_storage.set("accounts", [{"utility": ["x"], "account_no": "12345678"}, "junk",
                                          {"utility": "gas", "account_no": "12345678"}])
    assert [a["utility"] for a in harness.api(ctx, "GET", "/accounts")["accounts"]] == ["gas"]
    ctx.customer_storage.set("accounts", {"not": "a list"})
    assert harness.api(ctx, "GET", "/bills")["bills"] == []
    assert link(harness, "erin", "gas", "12345678")["linked"]


def test_unlink_with_a_bad_path_is_400(harness):
    ctx = harness.context(customer="fay", locale="en")
    assert refusal(harness, ctx, "DELETE", "/accounts/phone/12345678").status == 400
    assert "account_no" in refusal(harness, ctx, "DELETE", "/accounts/gas/12ab").detail


def test_api_needs_a_customer(harness):
    for method, path in (("GET", "/accounts"), ("POST", "/accounts"), ("GET", "/bills"),
                         ("DELETE", "/accounts/gas/12345678"), ("POST", "/bills/gas-12345678-202610/pay")):
        assert refusal(harness, harness.context(), method, path, {"utility": "gas"}).status == 401


@pytest.mark.parametrize("method, path, status", [
    ("PUT", "/accounts", 405), ("DELETE", "/accounts", 405), ("POST", "/bills", 405),
    ("GET", "/accounts/gas/12345678", 405), ("POST", "/pay", 404), ("GET", "/", 404), ("GET", "/bills/x", 404),
    ("GET", "/accounts/gas/1/2", 404), ("GET", "/bills/gas-12345678-202610/pay", 405),
    ("POST", "/bills/gas-12345678-202610/pay/now", 404), ("POST", "/bills/gas-12345678-202610/refund", 404),
])
def test_unknown_calls(harness, method, path, status):
    assert refusal(harness, harness.context(customer="gil"), method, path).status == status


# --- bills ----------------------------------------------------------------------------------

def test_bills_list_unpaid_bills_in_fen(harness):
    link(harness, "hana", "electricity", "310012345678")
    link(harness, "hana", "gas", "55554444")
    statement = harness.api(harness.context(customer="hana"), "GET", "/bills")
    assert [b["utility"] for b in statement["bills"]] == ["electricity", "gas"]
    assert all(b["status"] == "unpaid" and b["currency"] == "CNY" and b["period"] == "2026-10"
               for b in statement["bills"])
    assert statement["total_due"] == sum(b["amount"] for b in statement["bills"])
    assert statement["bills"][0]["amount"] == billing.monthly_bill("electricity", "310012345678", "2026-10").amount
    assert no_floats(statement)
    json.dumps(statement)


# --- tiles ----------------------------------------------------------------------------------

def test_tiles_invite_without_accounts(harness):
    for ctx in (harness.context(locale="en"), harness.context(customer="ivy", locale="en")):
        (tile,) = harness.tiles(ctx)
        assert tile.title == "Link your utility accounts" and tile.link == "/link"
    assert HAN.search(harness.tiles(harness.context(locale="zh-CN"))[0].title)


def test_tile_shows_total_due(harness):
    link(harness, "jack", "electricity", "310012345678")
    link(harness, "jack", "water", "12345678")
    total = sum(billing.monthly_bill(u, n, "2026-10").amount
                for u, n in (("electricity", "310012345678"), ("water", "12345678")))
    (tile,) = harness.tiles(harness.context(customer="jack", locale="en"))
    assert tile.title == f"{billing.format_amount(total)} due"
    assert tile.badge == "2 bills" and tile.link == "/bills"
    assert tile.subtitle == "2 accounts · Electricity, Water"
    assert "5678" not in tile.subtitle  # account numbers stay off the storefront
    zh = harness.tiles(harness.context(customer="jack", locale="zh-CN"))[0]
    assert zh.title == f"待缴 {billing.format_amount(total)}" and zh.badge == "2 笔账单"


# --- pages ----------------------------------------------------------------------------------

def test_every_page_renders_for_everyone_in_both_languages(harness, render):
    link(harness, "kim", "electricity", "310012345678")
    for customer in (None, "kim", "lee"):
        ctx = harness.context(customer=customer)
        for path in ("/", "/bills", "/link"):
            page = harness.page(ctx, path, {})
            assert isinstance(page, Page) and page.status == 200
            json.dumps(dict(page.context))  # partner pages cross the sandbox boundary as JSON
            zh = render(page, "zh-CN")
            assert HAN.search(zh) and 'lang="zh-CN"' in zh
            en = render(page, "en")
            assert not HAN.search(en), (path, HAN.findall(en)[:10])


def test_bills_page_offers_to_pay_each_unpaid_bill(harness, render):
    link(harness, "mo", "gas", "55554444")
    page = harness.page(harness.context(customer="mo", locale="en"), "/bills")
    bill = billing.monthly_bill("gas", "55554444", "2026-10")
    html = render(page, "en")
    assert billing.format_amount(bill.amount) in html
    assert re.search(r'<button type="button" class="button" data-pay="/mp/city.utilities/api/bills/'
                     r'gas-55554444-202610/pay\?[^"]*"[^>]*>Pay</button>', html)
    assert "opens soon" not in html and "Paid" not in html


def test_overview_for_customer(harness, render):
    link(harness, "ned", "water", "12345678")
    html = render(harness.page(harness.context(customer="ned"), "/"))
    assert "•••• 5678" in html and "待缴" in html


def test_link_page_preselects_a_utility(harness, render):
    html = render(harness.page(harness.context(customer="ola"), "/link", {"utility": "gas"}))
    assert '<option value="gas" selected>' in html
    for junk in ("phone", "x" * 5000, ""):
        html = render(harness.page(harness.context(customer="ola"), "/link", {"utility": junk}))
        assert " selected" not in html


def test_link_page_disables_the_form_at_the_limit(harness, render):
    for n in range(10):
        link(harness, "pat", "gas", f"{30000000 + n}")
    html = render(harness.page(harness.context(customer="pat", locale="en"), "/link"), "en")
    assert "<fieldset disabled>" in html and "the most allowed" in html
    assert html.count("data-unlink=") == 10


def test_anonymous_link_page_is_disabled(harness, render):
    html = render(harness.page(harness.context(locale="en"), "/link"), "en")
    assert "<fieldset disabled>" in html and "Sign in to link" in html


TEMPLATE = re.compile(r'<template data-template="([a-z-]+)">(.*?)</template>', re.S)
FIELD = re.compile(r'data-field="([a-z_]+)"')
WHEN = re.compile(r'data-when="([a-z ]+)"')


def test_pages_rendered_without_the_customer_hold_blank_templates_of_what_the_api_answers(harness, render):
    """In the bank's app pages are anonymous: utilities.js fills these templates from GET /bills
    and GET /accounts, so every field they name must be in the API's answer."""
    link(harness, "una", "water", "12345678")
    una = harness.context(customer="una", locale="en")
    statement = harness.api(una, "GET", "/bills")
    listed = harness.api(una, "GET", "/accounts")
    fields = {
        "summary": set(statement), "total": set(statement),
        "bill": set(statement["bills"][0]) | {"paid_on"},  # paid_on: the script's " · <date of paid_at>"
        "account": set(statement["bills"][0]),
        "linked-account": set(listed["accounts"][0]) | {"utility_name"},  # the name: from the form's options
        "no-bills": set(), "introduction": set(), "accounts": set(), "linked": set(),
    }
    expected = {"/": {"total", "accounts", "account", "introduction"}, "/bills": {"summary", "bill", "no-bills"},
                "/link": {"linked", "linked-account"}}
    for path, names in expected.items():
        html = render(harness.page(harness.context(locale="en"), path), "en")
        assert "<main data-bills-api=\"/mp/city.utilities/api/bills?" in html and " data-anonymous" in html
        assert 'data-accounts-api="/mp/city.utilities/api/accounts?' in html and "data-sign-in-notice" in html
        templates = dict(TEMPLATE.findall(html))
        assert set(templates) == names, path
        for name, markup in templates.items():
            assert set(FIELD.findall(markup)) <= fields[name], (path, name)
            assert {state for when in WHEN.findall(markup) for state in when.split()} <= {"paid", "pending", "unpaid"}
            assert " id=" not in markup  # copies must not repeat an id
    bill = dict(TEMPLATE.findall(render(harness.page(harness.context(locale="en"), "/bills"), "en")))["bill"]
    assert {"utility_name", "account_no", "period", "usage", "unit", "due_date", "amount_display"} <= set(FIELD.findall(bill))
    assert re.search(r'<p class="paid" data-paid data-when="paid">', bill)
    assert re.search(r'<button type="button" class="button" data-pay="" data-when="unpaid pending"', bill)


def test_pages_rendered_with_the_customer_show_their_data_without_templates(harness, render):
    link(harness, "vic", "gas", "55554444")
    for path in ("/", "/bills", "/link"):
        html = render(harness.page(harness.context(customer="vic", locale="en"), path), "en")
        assert "<template" not in html and "data-anonymous" not in html and "data-sign-in-notice" not in html
        assert "5544" in html or "4444" in html


def test_unknown_page_is_none(harness):
    assert harness.page(harness.context(), "/pay") is None


# --- search ---------------------------------------------------------------------------------

@pytest.mark.parametrize("query, utility", [
    ("电费", "electricity"), ("水费", "water"), ("燃气", "gas"), ("electricity", "electricity"),
    ("water bill", "water"), ("gas", "gas"), ("Gas Bill", "gas"), ("交电费", "electricity"),
])
def test_search_finds_each_utility(harness, query, utility):
    hits = harness.search(harness.context(locale="en"), query)
    assert len(hits) == 1
    assert hits[0].link == f"/link?utility={utility}" and hits[0].score == 0.8


def test_general_search_and_misses(harness):
    assert len(harness.search(harness.context(), "缴费")) == 3
    assert len(harness.search(harness.context(), "bills")) == 3
    for miss in ("电影", "coffee", "风险", "z"):
        assert harness.search(harness.context(), miss) == []


def test_search_shows_what_is_due(harness):
    link(harness, "quinn", "electricity", "310012345678")
    amount = billing.format_amount(billing.monthly_bill("electricity", "310012345678", "2026-10").amount)
    (hit,) = harness.search(harness.context(customer="quinn", locale="en"), "electricity")
    assert hit.link == "/bills" and amount in hit.summary
