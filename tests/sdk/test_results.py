"""canopy_sdk.results: the checks the host (and the test kit) apply to hook results."""

from __future__ import annotations

import json
import math

import pytest

from canopy_sdk import InvalidResult, Page, SearchHit, Tile
from canopy_sdk import results


class TileSubclass(Tile):
    pass


class PageSubclass(Page):
    pass


# -- tiles and search hits ------------------------------------------------------------


def test_tile_results_up_to_the_limit_are_accepted():
    tiles = [Tile(title=f"t{i}") for i in range(results.MAX_TILES)]

    assert results.check_tiles(tiles) == tiles
    assert results.check_tiles(tuple(tiles)) == tiles  # canonical form is a list
    assert type(results.check_tiles(tuple(tiles))) is list


def test_none_and_a_single_tile_are_accepted():
    tile = Tile(title="only")

    assert results.check_tiles(None) == []
    assert results.check_tiles(tile) == [tile]


def test_thirteen_tiles_are_refused():
    with pytest.raises(InvalidResult, match="returned 13 items; the limit is 12"):
        results.check_tiles([Tile(title="t")] * 13)


@pytest.mark.parametrize(
    "value",
    [
        {"title": "t"},
        [{"title": "t"}],
        "tile",
        [Tile(title="t"), None],
        [SearchHit(title="t")],
        {Tile(title="t")},
        iter([Tile(title="t")]),
    ],
)
def test_tile_results_of_the_wrong_type_are_refused(value):
    with pytest.raises(InvalidResult, match="canopy_storefront_tiles"):
        results.check_tiles(value)


def test_tile_subclass_instances_are_refused():
    with pytest.raises(InvalidResult, match="got TileSubclass"):
        results.check_tiles([TileSubclass(title="t")])
    with pytest.raises(InvalidResult):
        results.check_tiles(TileSubclass(title="t"))


def test_search_hit_limit_and_types():
    hits = [SearchHit(title=f"h{i}") for i in range(results.MAX_SEARCH_HITS)]

    assert results.check_search_hits(hits) == hits
    assert results.check_search_hits(None) == []
    with pytest.raises(InvalidResult, match="returned 21 items; the limit is 20"):
        results.check_search_hits(hits + [SearchHit(title="one more")])
    with pytest.raises(InvalidResult, match="canopy_search must return SearchHit items, got Tile"):
        results.check_search_hits([Tile(title="t")])


# -- pages ------------------------------------------------------------------------------------


def test_page_results():
    page = Page(title="Home", html="<p>hi</p>")

    assert results.check_page(page) is page
    assert results.check_page(None) is None


@pytest.mark.parametrize("value", ["<p>hi</p>", {"title": "t", "html": "x"}, [Page(title="t", html="x")], PageSubclass(title="t", html="x")])
def test_other_page_results_are_refused(value):
    with pytest.raises(InvalidResult, match="canopy_page must return a Page or None"):
        results.check_page(value)


# -- api results -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, "账单", [1, 2], {"a": {"b": [True, None]}}, (1, 2)])
def test_json_api_results_are_encoded(value):
    assert json.loads(results.encode_api_result(value)) == json.loads(json.dumps(value))


def test_api_result_encoding_is_compact_utf8():
    assert results.encode_api_result({"a": "账", "b": [1, 2]}) == '{"a":"账","b":[1,2]}'


@pytest.mark.parametrize("value", [{1, 2}, object(), b"x", Tile(title="t"), {("k",): 1}])
def test_api_results_that_are_not_json_are_refused(value):
    with pytest.raises(InvalidResult, match="canopy_api must return a JSON-able value"):
        results.encode_api_result(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"x": [math.nan]}])
def test_api_results_with_nan_or_infinity_are_refused(value):
    with pytest.raises(InvalidResult):
        results.encode_api_result(value)


def test_api_result_size_limit_counts_utf8_bytes():
    just_fits = "a" * (results.MAX_API_RESULT_BYTES - 2)
    assert len(results.encode_api_result(just_fits).encode("utf-8")) == results.MAX_API_RESULT_BYTES

    with pytest.raises(InvalidResult, match="more than 1048576 bytes"):
        results.encode_api_result(just_fits + "a")
    # 349,526 three-byte characters: under a million characters, over 1 MiB of UTF-8.
    with pytest.raises(InvalidResult, match="more than"):
        results.encode_api_result("汉" * (results.MAX_API_RESULT_BYTES // 3 + 1))


def test_circular_and_deep_api_results_are_refused():
    circular: dict = {}
    circular["self"] = circular
    deep: list = []
    for _ in range(100_000):
        deep = [deep]

    for value in (circular, deep):
        with pytest.raises(InvalidResult):
            results.encode_api_result(value)
