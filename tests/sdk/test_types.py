"""canopy_sdk.types: the values hooks return, their checks and their wire form."""

from __future__ import annotations

import dataclasses
import json
import math
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canopy_sdk import BranchInfo, Event, InvalidResult, Page, SearchHit, Tile


def event(**changes) -> Event:
    fields = {"id": "ev-1", "type": "payment.succeeded", "plugin_id": "acme.bills", "occurred_at": "2024-05-01T08:00:00Z"}
    fields.update(changes)
    return Event(**fields)


# -- Tile -------------------------------------------------------------------------


def test_tile_defaults():
    tile = Tile(title="Pay bills")

    assert (tile.subtitle, tile.link, tile.badge, tile.icon) == ("", "/", None, None)


def test_tile_is_frozen():
    tile = Tile(title="Pay bills")

    with pytest.raises(dataclasses.FrozenInstanceError):
        tile.title = "Other"  # type: ignore[misc]


@pytest.mark.parametrize("title", ["", "   ", "\n"])
def test_tile_title_must_not_be_empty(title):
    with pytest.raises(InvalidResult, match="Tile.title must not be empty"):
        Tile(title=title)


@pytest.mark.parametrize(
    ("field", "limit"), [("title", 80), ("subtitle", 200), ("badge", 16), ("icon", 64)]
)
def test_tile_text_length_limits(field, limit):
    assert getattr(Tile(**{"title": "t", field: "x" * limit}), field) == "x" * limit

    with pytest.raises(InvalidResult, match=f"Tile.{field} is {limit + 1} characters; the limit is {limit}"):
        Tile(**{"title": "t", field: "x" * (limit + 1)})


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x0b", "\x7f"])
@pytest.mark.parametrize("field", ["title", "subtitle", "badge", "icon"])
def test_tile_text_refuses_control_characters(field, char):
    with pytest.raises(InvalidResult, match=f"Tile.{field} holds control characters"):
        Tile(**{"title": "t", field: f"a{char}b"})


@pytest.mark.parametrize(
    ("field", "value"), [("title", 5), ("title", None), ("subtitle", b"x"), ("badge", 3), ("icon", ["x"]), ("link", None)]
)
def test_tile_fields_must_be_strings(field, value):
    with pytest.raises(InvalidResult, match=f"Tile.{field} must be a string"):
        Tile(**{"title": "t", field: value})


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "//evil.example",
        "//evil.example/path",
        "https://x",
        "http://evil.example/",
        "\\evil",
        "/\\evil",
        "",
        "bills",
        "/a b",
        "/bills\n",
        "/x\ty",
        "/../admin",
        "/bills/../../admin",
        "/..",
        "/%2e%2e/admin",
        "/%2E%2E?x=1",
        "/" + "x" * 500,
    ],
)
def test_tile_link_must_be_a_path_inside_the_plugin(link):
    with pytest.raises(InvalidResult, match="Tile.link"):
        Tile(title="t", link=link)


@pytest.mark.parametrize("link", ["/", "/bills", "/bills?id=3", "/a/b#top", "/a/.hidden", "/..a", "/x?next=/../y", "/" + "x" * 499])
def test_tile_accepts_in_plugin_links(link):
    assert Tile(title="t", link=link).link == link


# -- Page ---------------------------------------------------------------------------


def test_page_with_template_or_html():
    assert Page(title="Bills", template="bills/list.html", context={"n": 3}).template == "bills/list.html"
    assert Page(title="Bills", html="<p>hi</p>").html == "<p>hi</p>"


@pytest.mark.parametrize("kwargs", [{}, {"template": "a.html", "html": "<p>"}, {"template": None, "html": None}])
def test_page_needs_exactly_one_of_template_or_html(kwargs):
    with pytest.raises(InvalidResult, match="exactly one of 'template' or 'html'"):
        Page(title="Bills", **kwargs)


@pytest.mark.parametrize(
    "template", ["../secret.html", "a/../../secret.html", "..", "/etc/passwd", "a\\..\\b.html", "C:\\x.html"]
)
def test_page_template_cannot_leave_the_templates_folder(template):
    with pytest.raises(InvalidResult, match="Page.template must be a relative path"):
        Page(title="Bills", template=template)


@pytest.mark.parametrize("template", ["", 3, "a\x00.html", "x" * 201])
def test_page_template_must_be_sensible_text(template):
    with pytest.raises(InvalidResult, match="Page.template"):
        Page(title="Bills", template=template)


def test_page_html_must_be_a_string():
    with pytest.raises(InvalidResult, match="Page.html must be a string, got bytes"):
        Page(title="Bills", html=b"<p>")


@pytest.mark.parametrize("status", [200, 400, 403, 404, 409, 410, 422])
def test_page_accepts_ok_and_client_error_statuses(status):
    assert Page(title="t", html="x", status=status).status == status


@pytest.mark.parametrize("status", [201, 302, 401, 500, 0, True, 404.0, "200", None])
def test_page_refuses_other_statuses(status):
    with pytest.raises(InvalidResult, match="Page.status"):
        Page(title="t", html="x", status=status)


@pytest.mark.parametrize(("context", "message"), [([("a", 1)], "must be a mapping"), ({1: "a"}, "keys must be strings")])
def test_page_context_must_be_a_mapping_with_string_keys(context, message):
    with pytest.raises(InvalidResult, match=f"Page.context {message}"):
        Page(title="t", template="a.html", context=context)


@pytest.mark.parametrize("title", ["", " ", "x" * 121, "a\x1bb", 7])
def test_page_title_is_checked(title):
    with pytest.raises(InvalidResult, match="Page.title"):
        Page(title=title, html="x")


# -- SearchHit ------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0, 0.0, 0.5, 1, 1.0])
def test_search_hit_score_in_bounds(score):
    assert SearchHit(title="t", score=score).score == score


@pytest.mark.parametrize("score", [-0.01, 1.0001, 2, -1, math.nan, math.inf, -math.inf])
def test_search_hit_score_out_of_bounds(score):
    with pytest.raises(InvalidResult, match="SearchHit.score must be between 0 and 1"):
        SearchHit(title="t", score=score)


@pytest.mark.parametrize("score", [True, False, "0.5", None, [0.5]])
def test_search_hit_score_must_be_a_number(score):
    with pytest.raises(InvalidResult, match="SearchHit.score must be a number"):
        SearchHit(title="t", score=score)


@pytest.mark.parametrize(
    "kwargs",
    [{"title": ""}, {"title": "x" * 121}, {"title": "t", "summary": "x" * 301}, {"title": "t", "link": "https://x"}],
)
def test_search_hit_text_and_link_are_checked(kwargs):
    with pytest.raises(InvalidResult, match="SearchHit"):
        SearchHit(**kwargs)


# -- Event ------------------------------------------------------------------------------


def test_event_defaults():
    ev = event()

    assert (ev.data, ev.branch, ev.customer) == ({}, None, None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "", "Event.id must not be empty"),
        ("id", "x" * 65, "Event.id is 65 characters"),
        ("type", None, "Event.type must be a string"),
        ("plugin_id", 3, "Event.plugin_id must be a string"),
        ("occurred_at", "x" * 41, "Event.occurred_at is 41 characters"),
        ("data", [1, 2], "Event.data must be a mapping"),
        ("data", {1: "x"}, "Event.data keys must be strings"),
        ("branch", "x" * 33, "Event.branch is 33 characters"),
        ("customer", "a\x00", "Event.customer holds control characters"),
    ],
)
def test_event_fields_are_checked(field, value, message):
    with pytest.raises(InvalidResult, match=message):
        event(**{field: value})


# -- wire form ----------------------------------------------------------------------------

EXAMPLES = [
    Tile(title="Pay bills", subtitle="3 due", link="/bills?due=1", badge="3", icon="receipt"),
    Page(title="Bills", template="bills.html", context=MappingProxyType({"due": [1, 2], "who": {"name": "A"}}), status=200),
    Page(title="Gone", html="<p>gone</p>", status=410),
    SearchHit(title="Water bill", summary="Pay it", link="/pay", score=0.75),
    event(data={"amount": "12.50", "items": [1, 2]}, branch="SH001", customer="sub-123"),
    event(data=MappingProxyType({"consent": "granted"})),
    BranchInfo(code="SH001", name="Shanghai Branch", parent="HQ"),
]


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_to_wire_from_wire_round_trip(value):
    wire = value.to_wire()

    assert type(wire) is dict
    assert json.loads(json.dumps(wire)) == wire  # plain, JSON-able
    assert type(value).from_wire(json.loads(json.dumps(wire))) == value


def test_page_to_wire_turns_a_read_only_context_into_a_dict():
    wire = EXAMPLES[1].to_wire()

    assert type(wire["context"]) is dict
    assert wire["context"] == {"due": [1, 2], "who": {"name": "A"}}


def test_to_wire_copies_nested_lists_and_mappings():
    items = [1, {"n": 2}]
    value = event(data={"items": items})
    wire = value.to_wire()
    wire["data"]["items"].append(3)
    wire["data"]["items"][1]["n"] = 9
    assert items == [1, {"n": 2}] and value.data == {"items": [1, {"n": 2}]}


@pytest.mark.parametrize("cls", [Tile, Page, SearchHit, Event, BranchInfo])
@pytest.mark.parametrize("data", [None, "title", ["title", "x"], 3, ("title", "x")])
def test_from_wire_refuses_non_mappings(cls, data):
    with pytest.raises(InvalidResult, match=f"{cls.__name__} must arrive as an object"):
        cls.from_wire(data)


def test_from_wire_refuses_unknown_fields():
    wire = Tile(title="t").to_wire()
    wire.update({"onclick": "alert(1)", "style": "x"})

    with pytest.raises(InvalidResult, match="Tile has unknown fields: onclick, style"):
        Tile.from_wire(wire)


def test_from_wire_refuses_missing_fields():
    with pytest.raises(InvalidResult, match="title"):
        Tile.from_wire({"link": "/"})


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (Tile, {"title": 5}),
        (Tile, {"title": "t", "link": "https://evil.example"}),
        (Page, {"title": "t", "html": "x", "status": "200"}),
        (SearchHit, {"title": "t", "score": "1"}),
        (Event, {"id": "1", "type": "t", "plugin_id": "p", "occurred_at": "now", "data": "x"}),
    ],
)
def test_from_wire_checks_values_like_the_constructor(cls, data):
    with pytest.raises(InvalidResult):
        cls.from_wire(data)


# -- properties -----------------------------------------------------------------------------

_printable = st.characters(blacklist_categories=("Cc", "Cs"))
_link_char = st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="\\%")


def _in_plugin(link: str) -> bool:
    return not link.startswith("//") and ".." not in link.split("?")[0].split("#")[0].split("/")


valid_tiles = st.builds(
    Tile,
    title=st.text(_printable, min_size=1, max_size=80).filter(str.strip),
    subtitle=st.text(_printable, max_size=200),
    link=st.text(_link_char, max_size=60).map(lambda s: "/" + s).filter(_in_plugin),
    badge=st.none() | st.text(_printable, max_size=16),
    icon=st.none() | st.text(_printable, max_size=64),
)


@given(valid_tiles)
def test_tile_wire_round_trip_property(tile):
    assert Tile.from_wire(tile.to_wire()) == tile
    assert Tile.from_wire(json.loads(json.dumps(tile.to_wire()))) == tile


_anything = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.lists(st.integers(), max_size=2)


@given(st.dictionaries(st.sampled_from(["title", "subtitle", "link", "badge", "icon", "extra"]), _anything))
def test_tile_from_wire_on_any_mapping_gives_a_tile_or_invalid_result(data):
    try:
        tile = Tile.from_wire(data)
    except InvalidResult:
        pass
    else:
        assert Tile.from_wire(tile.to_wire()) == tile


# -- the checks are the plain definitions, only cheaper ------------------------------------------


def _plainly_valid_link(link: str) -> bool:
    """The rule for a tile's link written plainly: not blank, short, no control characters, a
    path starting with one '/', no whitespace or backslash, and no '..' segment in the path
    (before '?' or '#') once percent-decoded."""
    import re
    from urllib.parse import unquote

    if not link.strip() or len(link) > 500 or re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", link):
        return False
    if not re.match(r"^/(?!/)[^\s\\]*\Z", link):
        return False
    return ".." not in unquote(re.split(r"[?#]", link, maxsplit=1)[0]).split("/")


@given(st.one_of(st.text(max_size=40), st.text(alphabet="/.%2e?#a \t\\", max_size=20).map(lambda s: "/" + s)))
def test_tile_link_check_is_the_plain_rule(link):
    try:
        Tile(title="t", link=link)
        accepted = True
    except InvalidResult:
        accepted = False

    assert accepted == _plainly_valid_link(link)


@given(st.text(max_size=100))
def test_tile_title_check_is_the_plain_rule(title):
    plainly = bool(title.strip()) and len(title) <= 80 and not any(ord(c) < 32 and c not in "\t\n\r" or c == "\x7f"
                                                                     for c in title)
    try:
        Tile(title=title)
        accepted = True
    except InvalidResult:
        accepted = False

    assert accepted == plainly
