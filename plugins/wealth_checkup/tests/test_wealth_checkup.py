"""Tests of wealth.checkup: manifest, tiles, pages, scoring rules, saved answers, API and search."""

from __future__ import annotations

import importlib
import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canopy_sdk import ApiError, Page
from canopy_sdk.loading import package_name
from canopy_sdk.testing import PluginHarness

PLUGIN_FOLDER = Path(__file__).parents[1]
#: Property tests: no example database, and no complaint about the first, slow text draw.
PROPERTIES = settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

GOOD = {"age": "30to44", "horizon": "5to10", "drawdown": "hold", "income": "stable",
        "experience": "funds", "goal": "balanced"}  # 3+3+3+2+2+2 = 15 points: level 4


def modules(harness: PluginHarness):
    """Return the plugin's questionnaire and scoring modules, as the harness imported them."""
    package = package_name(harness.manifest.id)
    return importlib.import_module(f"{package}.questionnaire"), importlib.import_module(f"{package}.scoring")


def every_answer_set(harness: PluginHarness):
    """Yield every complete set of answers (4·5·4·4·4·4 = 5,120 of them)."""
    questionnaire, _ = modules(harness)
    ids = [q.id for q in questionnaire.QUESTIONS]
    for codes in itertools.product(*[[o.code for o in q.options] for q in questionnaire.QUESTIONS]):
        yield dict(zip(ids, codes))


# --- manifest -----------------------------------------------------------------------------

def test_manifest_loads(harness):
    manifest = harness.manifest
    assert manifest.id == "wealth.checkup"
    assert (manifest.publisher_kind, manifest.publisher_id) == ("bank", "HQ")
    assert manifest.scopes == ("profile.basic:read",)
    assert {page.path for page in manifest.pages} == {"/", "/result"}
    assert manifest.description and manifest.description["zh"] and manifest.description["en"]
    assert "risk" in manifest.keywords and "风险" in manifest.keywords


# --- scoring ------------------------------------------------------------------------------

def test_every_combination_gives_a_whole_allocation(harness):
    _, scoring = modules(harness)
    seen_levels = set()
    count = 0
    for answers in every_answer_set(harness):
        result = scoring.assess(answers)
        shares = result["allocation"]
        assert list(shares) == ["cash", "bonds", "equities", "alternatives"]
        assert all(type(p) is int and 0 <= p <= 100 for p in shares.values()), (answers, shares)
        assert sum(shares.values()) == 100, (answers, shares)
        assert 1 <= result["level"] <= 5
        assert result["name"] == scoring.LEVEL_NAMES[result["level"]]
        json.dumps(result)  # storable and returnable as JSON
        seen_levels.add(result["level"])
        count += 1
    assert count == 4 * 5 * 4 * 4 * 4 * 4
    assert seen_levels == {1, 2, 3, 4, 5}


def test_extremes(harness):
    questionnaire, scoring = modules(harness)
    lowest = {q.id: min(q.options, key=lambda o: o.points).code for q in questionnaire.QUESTIONS}
    highest = {q.id: max(q.options, key=lambda o: o.points).code for q in questionnaire.QUESTIONS}
    assert scoring.assess(lowest)["level"] == 1
    assert scoring.assess(lowest)["name"] == {"zh": "保守型", "en": "Conservative"}
    top = scoring.assess(highest)
    assert top["level"] == 5 and top["name"] == {"zh": "进取型", "en": "Aggressive"}
    assert top["allocation"]["equities"] > scoring.assess(lowest)["allocation"]["equities"]


def test_a_bolder_answer_never_lowers_the_level(harness):
    questionnaire, scoring = modules(harness)
    for answers in itertools.islice(every_answer_set(harness), 0, None, 7):
        level = scoring.assess(answers)["level"]
        for question in questionnaire.QUESTIONS:
            current = question.option(answers[question.id])
            for option in question.options:
                if option.points > current.points:
                    bolder = scoring.assess({**answers, question.id: option.code})["level"]
                    assert bolder >= level, (answers, question.id, option.code)


@pytest.mark.parametrize("cap_answer", [("horizon", "lt1"), ("drawdown", "sell_all")])
def test_suitability_caps_the_level_at_two(harness, cap_answer):
    _, scoring = modules(harness)
    question_id, code = cap_answer
    for answers in every_answer_set(harness):
        if answers[question_id] == code:
            result = scoring.assess(answers)
            assert result["level"] <= 2
            if scoring.level_for_score(result["score"]) > 2:
                assert result["notes"], "a capped level must say why"


def test_money_needed_soon_keeps_more_cash(harness):
    _, scoring = modules(harness)
    long_run = scoring.assess({**GOOD, "horizon": "3to5"})
    soon = scoring.assess({**GOOD, "horizon": "1to3"})
    assert soon["level"] == long_run["level"] - 1 or soon["level"] == long_run["level"]
    same_level = scoring.allocation(soon["level"], {**GOOD, "horizon": "3to5"})
    assert soon["allocation"]["cash"] == same_level["cash"] + 10
    assert soon["allocation"]["equities"] == same_level["equities"] - 10


def test_incomplete_answers_are_refused_by_the_rules(harness):
    _, scoring = modules(harness)
    with pytest.raises(scoring.IncompleteAnswers):
        scoring.assess({k: v for k, v in GOOD.items() if k != "goal"})
    with pytest.raises(scoring.IncompleteAnswers):
        scoring.assess({**GOOD, "goal": "lottery"})


@PROPERTIES
@given(st.dictionaries(st.sampled_from(list(GOOD) + ["other", ""]),
                       st.one_of(st.text(max_size=300), st.integers(), st.none(), st.lists(st.text(max_size=3)))))
def test_reading_answers_never_raises(query):
    questionnaire, _ = modules(PluginHarness(PLUGIN_FOLDER))
    answers, errors = questionnaire.read_answers(query)
    assert set(answers) | set(errors) == set(GOOD)
    assert not set(answers) & set(errors)


# --- tiles --------------------------------------------------------------------------------

def test_anonymous_tile_invites(harness):
    tiles = harness.tiles(harness.context(locale="en"))
    assert len(tiles) == 1
    assert tiles[0].title == "2-minute wealth check-up"
    assert tiles[0].link == "/" and tiles[0].badge is None
    zh = harness.tiles(harness.context(locale="zh-CN"))[0]
    assert HAN.search(zh.title) and "2 分钟" in zh.title


def test_customer_without_result_is_invited(harness):
    tiles = harness.tiles(harness.context(customer="alice", locale="en"))
    assert tiles[0].title == "2-minute wealth check-up"


def test_customer_with_result_sees_profile(harness):
    ctx = harness.context(customer="alice", locale="en")
    harness.page(ctx, "/result", GOOD)
    tile = harness.tiles(ctx)[0]
    assert tile.title == "Your risk profile: Growth"
    assert tile.badge == "Level 4"
    assert tile.subtitle == "Cash 5% · Bonds 25% · Equities 60% · Alternatives 10%"
    zh = harness.tiles(harness.context(customer="alice", locale="zh-CN"))[0]
    assert "成长型" in zh.title and "股票 60%" in zh.subtitle
    # another customer's tile is unaffected
    assert harness.tiles(harness.context(customer="bob", locale="en"))[0].title == "2-minute wealth check-up"


def test_a_damaged_record_is_treated_as_absent(harness):
    ctx = harness.context(customer="alice", locale="en")
    for junk in ([1, 2], {"answers": {"age": "999"}}, {"answers": "x"}, "text", None):
        ctx.customer_storage.set("checkup", junk)
        assert harness.tiles(ctx)[0].title == "2-minute wealth check-up"
        assert harness.page(ctx, "/").context["saved"] is None
        assert harness.api(ctx, "GET", "/answers") == {"answers": None, "result": None, "saved_at": None}


def test_a_damaged_stored_result_is_recomputed(harness):
    ctx = harness.context(customer="alice", locale="en")
    ctx.customer_storage.set("checkup", {"answers": GOOD, "result": {"level": [3], "allocation": {"cash": 200}}})
    assert harness.tiles(ctx)[0].badge == "Level 4"


# --- pages --------------------------------------------------------------------------------

def test_questionnaire_renders_for_anonymous(harness, render):
    page = harness.page(harness.context(), "/")
    assert isinstance(page, Page) and page.status == 200 and page.template == "index.html"
    assert len(page.context["questions"]) == 6
    html = render(page)
    assert "无需登录即可测评" in html
    assert html.count('type="radio"') == 4 + 5 + 4 + 4 + 4 + 4
    assert "checked" not in html


def test_questionnaire_is_prefilled_from_saved_answers(harness, render):
    ctx = harness.context(customer="alice")
    harness.page(ctx, "/result", GOOD)
    page = harness.page(ctx, "/")
    assert page.context["answers"] == GOOD
    html = render(page)
    assert html.count(" checked") == 6
    assert 'value="hold" checked' in html
    assert "您上次的结果" in html and "data-forget=" in html


def test_result_page_computes_and_saves(harness, render):
    ctx = harness.context(customer="alice", locale="en")
    page = harness.page(ctx, "/result", GOOD)
    assert page.status == 200 and page.template == "result.html"
    assert page.context["result"]["level"] == 4
    assert sum(row["percent"] for row in page.context["rows"]) == 100
    assert page.context["saved"] is True
    html = render(page, "en")
    assert "Growth" in html and "Saved." in html and 'value="60"' in html
    saved = harness.api(ctx, "GET", "/answers")
    assert saved["answers"] == GOOD and saved["result"]["level"] == 4 and saved["saved_at"]


def test_anonymous_result_is_shown_but_not_saved(harness, render):
    page = harness.page(harness.context(locale="en"), "/result", GOOD)
    assert page.status == 200 and page.context["saved"] is False
    html = render(page, "en")
    assert "Sign in to save" in html
    assert harness.customer_stores == {}


def test_missing_answers_return_the_questionnaire_with_errors(harness, render):
    page = harness.page(harness.context(locale="en"), "/result", {})
    assert page.status == 400 and page.template == "index.html"
    assert set(page.context["errors"]) == set(GOOD)
    html = render(page, "en")
    assert html.count("Please choose an answer.") == 6
    assert 'role="alert"' in html


def test_invalid_answers_are_named_per_question(harness, render):
    query = {**GOOD, "horizon": "forever", "goal": "x" * 10_000}
    del query["age"]
    page = harness.page(harness.context(customer="carol"), "/result", query)
    assert page.status == 400
    assert set(page.context["errors"]) == {"age", "horizon", "goal"}
    assert page.context["answers"] == {k: GOOD[k] for k in ("drawdown", "income", "experience")}
    html = render(page)
    assert html.count("请选择一个选项。") == 1
    assert html.count("这不是有效的选项") == 2
    assert "x" * 100 not in html
    assert harness.api(harness.context(customer="carol"), "GET", "/answers")["answers"] is None


@PROPERTIES
@given(st.dictionaries(st.sampled_from(list(GOOD) + ["zzz"]), st.text(max_size=50)))
def test_any_query_gives_a_page_not_an_exception(query):
    harness = PluginHarness(PLUGIN_FOLDER)
    page = harness.page(harness.context(customer="dave"), "/result", query)
    assert page.status in (200, 400)


def test_every_page_renders_in_both_languages(harness, render):
    ctx = harness.context(customer="erin")
    pages = [harness.page(ctx, "/"), harness.page(ctx, "/result", GOOD), harness.page(ctx, "/result", {"age": "?"}),
             harness.page(ctx, "/")]
    for page in pages:
        json.dumps(dict(page.context))  # the context crosses a process boundary for sandboxed plugins
        zh = render(page, "zh-CN")
        assert HAN.search(zh) and 'lang="zh-CN"' in zh
        en = render(page, "en")
        assert 'lang="en"' in en
        assert not HAN.search(en), HAN.findall(en)[:10]


def test_unknown_page_is_none(harness):
    assert harness.page(harness.context(), "/nope") is None


# --- API ----------------------------------------------------------------------------------

def test_api_needs_a_customer(harness):
    for method in ("GET", "DELETE"):
        with pytest.raises(ApiError) as caught:
            harness.api(harness.context(), method, "/answers")
        assert caught.value.status == 401


def test_api_get_and_delete(harness):
    ctx = harness.context(customer="frank")
    assert harness.api(ctx, "GET", "/answers") == {"answers": None, "result": None, "saved_at": None}
    harness.page(ctx, "/result", GOOD)
    assert harness.api(ctx, "GET", "/answers")["result"]["allocation"]["equities"] == 60
    assert harness.api(ctx, "DELETE", "/answers", {"ignored": [1, 2]}) == {"deleted": True}
    assert harness.api(ctx, "DELETE", "/answers") == {"deleted": False}
    assert harness.api(ctx, "GET", "/answers")["answers"] is None
    assert harness.tiles(ctx)[0].badge is None


@pytest.mark.parametrize("method, path, status", [
    ("POST", "/answers", 405), ("PUT", "/answers", 405), ("GET", "/nope", 404), ("GET", "/answers/1", 404),
])
def test_api_refuses_unknown_calls(harness, method, path, status):
    with pytest.raises(ApiError) as caught:
        harness.api(harness.context(customer="gina"), method, path, [1, 2, 3])
    assert caught.value.status == status and caught.value.title


# --- search -------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["风险", "risk", "理财", "allocation", "wealth", "Asset Allocation", "风险测评"])
def test_search_answers_its_topics(harness, query):
    hits = harness.search(harness.context(locale="en"), query)
    assert len(hits) == 1
    assert hits[0].title == "Wealth check-up" and hits[0].link == "/" and hits[0].score >= 0.8


@pytest.mark.parametrize("query", ["mortgage", "电费", "a", " "])
def test_search_ignores_other_topics(harness, query):
    assert harness.search(harness.context(), query) == []


def test_search_mentions_the_saved_profile(harness):
    ctx = harness.context(customer="hana", locale="zh-CN")
    harness.page(ctx, "/result", GOOD)
    hit = harness.search(ctx, "理财")[0]
    assert hit.title == "财富体检" and "成长型" in hit.summary
