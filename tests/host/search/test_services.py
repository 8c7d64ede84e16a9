"""host.search.services: the query's rules, the ranking, what a branch offers, and plugins'
hits called per plugin with their budget and isolation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from host.db import get_database
from host.runtime import get_runtime
from host.search import services
from host.search.services import InvalidQuery, normalize_query, search
from host.storefront.models import Branch


# -- the query --------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (None, ""),
    ("", ""),
    ("   ", ""),
    ("  coffee  ", "coffee"),
    ("water\t\n  bill", "water bill"),
    ("ＣＯＦＦＥＥ", "COFFEE"),  # full-width letters from a Chinese keyboard
    ("电费", "电费"),
    ("'; DROP TABLE plugins; --", "'; DROP TABLE plugins; --"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("x" * 100, "x" * 100),
    ("  " + "x" * 100 + "  ", "x" * 100),
])
def test_queries_are_trimmed_and_normalised(raw, expected):
    assert normalize_query(raw) == expected


@pytest.mark.parametrize(("raw", "fragment"), [
    ("x" * 101, "at most 100"),
    ("x" * 10_000, "at most 100"),
    ("a\x00b", "control"),
    ("a\x1bb", "control"),
    ("a\x7fb", "control"),
    (123, "text"),
    (["coffee"], "text"),
    (b"coffee", "text"),
])
def test_bad_queries_are_refused_naming_the_field(raw, fragment):
    with pytest.raises(InvalidQuery) as caught:
        normalize_query(raw)
    assert list(caught.value.errors) == ["q"] and fragment in caught.value.errors["q"][0]


# -- ranking ----------------------------------------------------------------------------------


def zone(names=("城市缴费", "City Utilities"), keywords=(), description=None):
    manifest = SimpleNamespace(name={"zh": names[0], "en": names[1]}, keywords=tuple(keywords), description=description)
    return SimpleNamespace(plugin=SimpleNamespace(manifest=manifest))


@pytest.mark.parametrize(("query", "score"), [
    ("City Utilities", services.EXACT_NAME),
    ("city utilities", services.EXACT_NAME),
    ("城市缴费", services.EXACT_NAME),
    ("City", services.NAME_PREFIX),
    ("城市", services.NAME_PREFIX),
    ("Utilities", services.NAME_CONTAINS),
    ("缴费", services.NAME_CONTAINS),
    ("electricity", services.EXACT_KEYWORD),
    ("电费", services.EXACT_KEYWORD),
    ("elec", services.KEYWORD),
    ("电费账单", services.KEYWORD),  # holds the keyword 电费
    ("monthly", services.DESCRIPTION),
    ("每月", services.DESCRIPTION),
    ("bank", 0.0),
    ("y", 0.0),  # one letter inside a word matches nothing
])
def test_exact_names_beat_prefixes_beat_keywords_beat_descriptions(query, score):
    utilities = zone(keywords=("电费", "electricity", "bills"),
                     description={"zh": "每月账单在线缴纳", "en": "Pay your monthly bills"})
    assert services.match_score(query, utilities) == score


def test_a_query_of_several_words_matches_word_by_word():
    utilities = zone(keywords=("electricity", "water bill"))
    assert services.match_score("water bill", utilities) == services.EXACT_KEYWORD
    assert services.match_score("city electricity", utilities) == pytest.approx(services.EVERY_WORD * services.EXACT_KEYWORD)  # its weaker word
    assert services.match_score("city coffee", utilities) == 0.0


# -- searching a branch -----------------------------------------------------------------------


def run(app, branch_code, query, locale="en", customer=None):
    with app.test_request_context(), get_database(app).transaction() as session:
        return search(session, get_runtime(app), session.get(Branch, branch_code), query, locale, customer)


def test_an_empty_query_lists_the_branchs_mini_programs_in_grid_order(demo_app):
    found = run(demo_app, "SH001", "")
    assert [r.plugin_id for r in found.results] == ["wealth.checkup", "sh.deals"]
    assert all(r.kind == services.MINIPROGRAM and r.matched == "all" for r in found.results)
    assert found.results[0].href == "/mp/wealth.checkup/?branch=SH001&lang=en"


def test_only_what_the_branch_offers_is_found(demo_app):
    shanghai = run(demo_app, "SH001", "coffee")
    assert {r.plugin_id for r in shanghai.results} == {"sh.deals"}
    assert shanghai.results[0].kind == services.MINIPROGRAM  # on a tie the mini-program comes first
    assert any(r.kind == services.SERVICE and "/mp/sh.deals/deal?id=" in r.href for r in shanghai.results)
    beijing = run(demo_app, "BJ001", "coffee")
    assert beijing.results == []  # sh.deals is not installed in Beijing: neither it nor its hits


def test_names_and_keywords_match_in_both_languages(demo_app):
    for query in ("财富", "Wealth", "WEALTH CHECK-UP", "风险", "risk", "理财"):
        found = run(demo_app, "BJ001", query, locale="zh-CN")
        assert found.results and found.results[0].plugin_id == "wealth.checkup", query
        assert found.results[0].title == "财富体检"


def test_hostile_queries_find_nothing_and_break_nothing(demo_app):
    for query in ("'; DROP TABLE plugins; --", "<script>alert(1)</script>", "%_%", "\\", "😀"):
        assert run(demo_app, "SH001", query).results == [], query
    assert run(demo_app, "SH001", "").results  # the tables are all there


SHOUTS = """
@hookimpl
def canopy_search(ctx, query):
    return [SearchHit(title="Shout " + query, summary="<b>" + ctx.branch.code + "</b>", link="/shout?q=1", score=1.0)]
"""
RAISES = """
@hookimpl
def canopy_search(ctx, query):
    raise RuntimeError("search index down")
"""
HANGS = """
@hookimpl
def canopy_search(ctx, query):
    RELEASE.wait(3)
    return [SearchHit(title="too late")]
"""
JUNK = """
@hookimpl
def canopy_search(ctx, query):
    return [{"title": "a dict is not a SearchHit"}]
"""
ELSEWHERE = """
@hookimpl
def canopy_search(ctx, query):
    return [SearchHit(title="phish", link="https://evil.example/")]
"""
TOO_MANY = """
@hookimpl
def canopy_search(ctx, query):
    return [SearchHit(title=str(i)) for i in range(21)]
"""
SEES_CUSTOMER = """
@hookimpl
def canopy_search(ctx, query):
    who = ctx.customer.subject if ctx.customer is not None else "nobody"
    return [SearchHit(title=who, summary=ctx.locale)]
"""


def test_a_failing_plugin_loses_only_its_own_hits(installed):
    import time

    plugins = {"t.shouts": SHOUTS, "t.raises": RAISES, "t.hangs": HANGS, "t.junk": JUNK,
               "t.elsewhere": ELSEWHERE, "t.many": TOO_MANY}
    app = installed(plugins)
    runtime = get_runtime(app)
    started = time.perf_counter()
    found = run(app, "SH001", "coffee")
    elapsed = time.perf_counter() - started
    assert sorted(found.unavailable) == ["t.elsewhere", "t.hangs", "t.junk", "t.many", "t.raises"]
    services_found = [r for r in found.results if r.kind == services.SERVICE]
    assert {r.plugin_id for r in services_found} == {"t.shouts", "sh.deals"}
    shout = next(r for r in services_found if r.plugin_id == "t.shouts")
    assert shout.title == "Shout coffee" and shout.summary == "<b>SH001</b>"
    assert shout.href == "/mp/t.shouts/shout?q=1&branch=SH001&lang=en"
    assert found.results[0].plugin_id == "t.shouts"  # score 1.0 beats sh.deals' keyword match (0.8)
    assert elapsed < 2.0  # the hung plugin costs one budget (300 ms), not its 3 s
    counts = runtime.invoker.snapshot()
    assert counts[("t.hangs", "canopy_search", "timeout")] == 1
    assert counts[("t.junk", "canopy_search", "invalid")] == 1
    assert counts[("t.raises", "canopy_search", "error")] == 1
    # An empty query asks no plugin.
    assert run(app, "SH001", "").unavailable == []
    assert counts == runtime.invoker.snapshot()


def test_plugins_see_the_searching_customer_by_their_pairwise_id(installed):
    from sqlalchemy import select

    from host.identity.models import Customer

    app = installed({"t.who": SEES_CUSTOMER})
    with get_database(app).transaction() as session:
        customer = session.scalars(select(Customer).where(Customer.phone == "13800000001")).one()
    anonymous = [r for r in run(app, "SH001", "anything").results if r.plugin_id == "t.who"]
    signed_in = [r for r in run(app, "SH001", "anything", locale="zh-CN", customer=customer).results
                 if r.plugin_id == "t.who"]
    assert anonymous[0].title == "nobody" and anonymous[0].summary == "en"
    assert signed_in[0].title not in ("nobody", customer.id) and len(signed_in[0].title) > 10
    assert signed_in[0].summary == "zh-CN"


def test_results_are_capped(installed):
    code = """
@hookimpl
def canopy_search(ctx, query):
    return [SearchHit(title=f"{ctx.plugin_id} {i}", score=0.9) for i in range(20)]
"""
    app = installed({f"t.many{n}": code for n in range(4)})
    found = run(app, "SH001", "x")
    assert len(found.results) == services.MAX_RESULTS
