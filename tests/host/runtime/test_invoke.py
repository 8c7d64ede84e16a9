"""host.runtime.invoke: one plugin's hook call with a budget, error isolation and a bulkhead."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from canopy_sdk import ApiError, InvalidResult, Tile, results

from host.runtime.invoke import BUSY, ERROR, INVALID, MISSING, OK, REJECTED, TIMEOUT, BudgetOverrun, HookInvoker

TILES = "canopy_storefront_tiles"
API = "canopy_api"
PAGE = "canopy_page"  #: the hook hung calls use: it always has a small budget


@pytest.fixture
def release():
    """An event hung hooks wait on; set at the end of the test so their threads finish."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def make_invoker():
    built = []

    def build(*, budget_ms: int = 5000, max_in_flight: int = 4, pool_size: int = 8) -> HookInvoker:
        invoker = HookInvoker(
            pool_size=pool_size, max_in_flight=max_in_flight, budgets_ms={TILES: budget_ms, API: budget_ms, PAGE: 50}
        )
        built.append(invoker)
        return invoker

    yield build
    for invoker in built:
        invoker.shutdown()


@pytest.fixture
def invoker(make_invoker) -> HookInvoker:
    return make_invoker()


def wait_until(condition, timeout: float = 10.0) -> None:
    """Poll ``condition`` (for background threads to finish); fail if it never holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition never held")
        time.sleep(0.005)


def tiles(*titles: str):
    return lambda ctx: [Tile(title=t) for t in titles]


# -- single calls ------------------------------------------------------------------------------


def test_ok_returns_the_checked_value_and_counts_it(invoker):
    outcome = invoker.call("a.b", TILES, tiles("one", "two"), {"ctx": None}, results.check_tiles)

    assert outcome.status == OK and outcome.ok
    assert [t.title for t in outcome.value] == ["one", "two"]
    assert outcome.error is None
    assert invoker.counts[("a.b", TILES, OK)] == 1


def test_keyword_arguments_reach_the_hook(invoker):
    seen = {}

    def hook(ctx, method, path, body):
        seen.update(ctx=ctx, method=method, path=path, body=body)
        return {"echo": body}

    outcome = invoker.call("a.b", API, hook, {"ctx": "C", "method": "POST", "path": "/x", "body": [1]}, results.encode_api_result)

    assert outcome.value == '{"echo":[1]}'
    assert seen == {"ctx": "C", "method": "POST", "path": "/x", "body": [1]}


def test_a_raising_hook_is_an_error_logged_with_the_plugin_id(invoker, caplog):
    def hook(ctx):
        raise KeyError("boom")

    with caplog.at_level(logging.WARNING, logger="canopy.runtime"):
        outcome = invoker.call("a.b", TILES, hook, {"ctx": None}, results.check_tiles)

    assert outcome.status == ERROR and not outcome.ok
    assert isinstance(outcome.error, KeyError)
    assert invoker.counts[("a.b", TILES, ERROR)] == 1
    [record] = [r for r in caplog.records if r.name == "canopy.runtime"]
    assert record.plugin == "a.b" and record.outcome == ERROR
    assert "a.b" in record.getMessage() and "boom" in record.getMessage()


def test_a_hook_raising_its_own_timeout_error_is_an_error_not_an_overrun(invoker):
    def hook(ctx):
        raise TimeoutError("the upstream bill service timed out")

    outcome = invoker.call("a.b", TILES, hook, {"ctx": None}, results.check_tiles)

    assert outcome.status == ERROR
    assert "upstream" in str(outcome.error)


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
def test_a_hook_raising_a_base_exception_loses_only_its_own_call(invoker, exc):
    def hook(ctx):
        raise exc

    outcome = invoker.call("a.b", TILES, hook, {"ctx": None}, results.check_tiles)

    assert outcome.status == ERROR
    assert outcome.error is exc


def test_a_hook_past_its_budget_times_out_and_its_late_answer_is_dropped(make_invoker, release, caplog):
    invoker = make_invoker(budget_ms=50)
    answered = threading.Event()

    def hook(ctx):
        release.wait(30)
        answered.set()
        return [Tile(title="too late")]

    with caplog.at_level(logging.WARNING, logger="canopy.runtime"):
        outcome = invoker.call("slow.one", TILES, hook, {"ctx": None}, results.check_tiles)

    assert outcome.status == TIMEOUT
    assert isinstance(outcome.error, TimeoutError) and "50 ms" in str(outcome.error)
    assert outcome.value is None
    assert invoker.counts[("slow.one", TILES, TIMEOUT)] == 1
    assert any(getattr(r, "plugin", None) == "slow.one" and r.outcome == TIMEOUT for r in caplog.records)
    assert invoker.in_flight("slow.one") == 1  # abandoned, still running

    release.set()
    assert answered.wait(10)
    wait_until(lambda: invoker.in_flight("slow.one") == 0)
    assert invoker.counts[("slow.one", TILES, OK)] == 0  # the late answer counted for nothing


@dataclass(frozen=True)
class NotQuiteATile:
    title: str


class FancyTile(Tile):
    __slots__ = ()


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param({"title": "a dict, not tiles"}, id="dict"),
        pytest.param([Tile(title=f"t{i}") for i in range(13)], id="13-tiles"),
        pytest.param([FancyTile(title="subclass")], id="tile-subclass"),
        pytest.param([NotQuiteATile("lookalike")], id="lookalike"),
        pytest.param("a string", id="string"),
        pytest.param([Tile(title="ok"), None], id="none-in-list"),
    ],
)
def test_junk_tiles_are_invalid(invoker, junk):
    outcome = invoker.call("junk.tiles", TILES, lambda ctx: junk, {"ctx": None}, results.check_tiles)

    assert outcome.status == INVALID
    assert isinstance(outcome.error, InvalidResult)
    assert outcome.value is None
    assert invoker.counts[("junk.tiles", TILES, INVALID)] == 1


def test_twelve_tiles_are_the_limit_and_fine(invoker):
    outcome = invoker.call("a.b", TILES, tiles(*(f"t{i}" for i in range(12))), {"ctx": None}, results.check_tiles)
    assert outcome.status == OK and len(outcome.value) == 12


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param({1, 2}, id="set"),
        pytest.param(float("nan"), id="nan"),
        pytest.param({"ratio": float("inf")}, id="inf-inside"),
        pytest.param(object(), id="object"),
    ],
)
def test_junk_api_results_are_invalid(invoker, junk):
    outcome = invoker.call("a.b", API, lambda **kw: junk, {"ctx": None, "method": "GET", "path": "/", "body": None}, results.encode_api_result)

    assert outcome.status == INVALID
    assert isinstance(outcome.error, InvalidResult)


def test_a_check_that_breaks_is_invalid_not_a_crash(invoker):
    def check(value):
        raise RuntimeError("checker tripped")

    outcome = invoker.call("a.b", TILES, lambda ctx: [], {"ctx": None}, check)
    assert outcome.status == INVALID and "tripped" in str(outcome.error)


def test_api_error_is_rejected_not_a_failure(invoker, caplog):
    def hook(**kwargs):
        raise ApiError(409, "Already claimed", "one per customer")

    with caplog.at_level(logging.WARNING, logger="canopy.runtime"):
        outcome = invoker.call("a.b", API, hook, {"ctx": None, "method": "POST", "path": "/", "body": None}, results.encode_api_result)

    assert outcome.status == REJECTED and not outcome.ok
    assert outcome.error.status == 409 and outcome.error.title == "Already claimed"
    assert invoker.counts[("a.b", API, REJECTED)] == 1
    assert not caplog.records  # a client error is normal, not a plugin fault


def test_missing_hook_is_missing_and_not_logged(invoker, caplog):
    with caplog.at_level(logging.WARNING, logger="canopy.runtime"):
        outcome = invoker.call("a.b", TILES, None, {"ctx": None}, results.check_tiles)

    assert outcome.status == MISSING
    assert invoker.counts[("a.b", TILES, MISSING)] == 1
    assert not caplog.records


def test_unknown_hooks_get_the_default_budget(invoker):
    assert invoker.budget(TILES) == 5.0
    assert invoker.budget("canopy_something_new") == 1.0


# -- the bulkhead --------------------------------------------------------------------------------


def test_a_plugin_with_max_in_flight_hung_calls_is_busy_until_they_return(make_invoker, release):
    invoker = make_invoker(max_in_flight=2, pool_size=8)

    def hang(ctx, path, query):
        release.wait(30)

    first = invoker.call("hung.one", PAGE, hang, {"ctx": None, "path": "/", "query": {}}, results.check_page)
    second = invoker.call("hung.one", PAGE, hang, {"ctx": None, "path": "/", "query": {}}, results.check_page)
    assert (first.status, second.status) == (TIMEOUT, TIMEOUT)
    assert invoker.in_flight("hung.one") == 2

    called = []  # the bulkhead is per plugin, whatever the hook
    busy = invoker.call("hung.one", TILES, lambda ctx: called.append(1) or [], {"ctx": None}, results.check_tiles)
    assert busy.status == BUSY and not busy.ok
    assert "2 calls" in str(busy.error)
    assert called == []  # a busy call never runs the hook
    assert invoker.counts[("hung.one", TILES, BUSY)] == 1

    # Other plugins are not held back by the hung one.
    other = invoker.call("other.one", TILES, tiles("fine"), {"ctx": None}, results.check_tiles)
    assert other.status == OK

    release.set()
    wait_until(lambda: invoker.in_flight("hung.one") == 0)
    again = invoker.call("hung.one", TILES, tiles("back"), {"ctx": None}, results.check_tiles)
    assert again.status == OK and again.value[0].title == "back"


def test_in_flight_is_released_after_errors_too(invoker):
    for _ in range(invoker.max_in_flight + 2):
        assert invoker.call("a.b", TILES, lambda ctx: 1 / 0, {"ctx": None}, results.check_tiles).status == ERROR
    wait_until(lambda: invoker.in_flight("a.b") == 0)
    assert invoker.call("a.b", TILES, tiles("ok"), {"ctx": None}, results.check_tiles).status == OK


# -- several plugins at once --------------------------------------------------------------------


def test_call_each_isolates_each_plugins_failure(make_invoker, release, caplog):
    invoker = make_invoker(budget_ms=1000)  # the shared budget: the hung plugin runs it out

    def raises(ctx):
        raise ValueError("raiser broke")

    def hangs(ctx):
        release.wait(30)
        return [Tile(title="never shown")]

    calls = [
        ("p.raises", raises, {"ctx": "c1"}),
        ("p.hangs", hangs, {"ctx": "c2"}),
        ("p.junk", lambda ctx: {"not": "tiles"}, {"ctx": "c3"}),
        ("p.good", lambda ctx: [Tile(title="good " + ctx)], {"ctx": "c4"}),
        ("p.none", None, {"ctx": "c5"}),
    ]
    with caplog.at_level(logging.WARNING, logger="canopy.runtime"):
        outcomes = invoker.call_each(TILES, calls, results.check_tiles)

    assert [o.plugin_id for o in outcomes] == ["p.raises", "p.hangs", "p.junk", "p.good", "p.none"]
    assert [o.status for o in outcomes] == [ERROR, TIMEOUT, INVALID, OK, MISSING]
    assert [t.title for t in outcomes[3].value] == ["good c4"]
    for plugin_id, status in [("p.raises", ERROR), ("p.hangs", TIMEOUT), ("p.junk", INVALID), ("p.good", OK)]:
        assert invoker.counts[(plugin_id, TILES, status)] == 1
    logged = {(r.plugin, r.outcome) for r in caplog.records if r.name == "canopy.runtime"}
    assert logged == {("p.raises", ERROR), ("p.hangs", TIMEOUT), ("p.junk", INVALID)}
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "p.raises" in messages and "raiser broke" in messages


def test_call_each_survives_a_plugin_that_exits(invoker):
    calls = [
        ("p.exits", lambda ctx: sys.exit(1), {"ctx": None}),
        ("p.good", tiles("still here"), {"ctx": None}),
    ]
    outcomes = invoker.call_each(TILES, calls, results.check_tiles)
    assert [o.status for o in outcomes] == [ERROR, OK]
    assert outcomes[1].value[0].title == "still here"


def test_call_each_marks_busy_plugins_without_calling_them(make_invoker, release):
    invoker = make_invoker(max_in_flight=1)

    def hang(ctx, path, query):
        release.wait(30)

    assert invoker.call("p.hung", PAGE, hang, {"ctx": None, "path": "/", "query": {}}, results.check_page).status == TIMEOUT
    outcomes = invoker.call_each(
        TILES, [("p.hung", tiles("x"), {"ctx": None}), ("p.good", tiles("y"), {"ctx": None})], results.check_tiles
    )
    assert [o.status for o in outcomes] == [BUSY, OK]


def test_call_each_with_nothing_to_call(invoker):
    assert invoker.call_each(TILES, [], results.check_tiles) == []


# -- hook functions that keep their own budget (sandboxed plugins' proxies) ----------------------


def own_budget(function):
    function.keeps_budget = True
    return function


def test_a_function_that_keeps_its_own_budget_runs_in_the_callers_thread(invoker):
    ran_in = []
    function = own_budget(lambda ctx: ran_in.append(threading.current_thread()) or [Tile(title="here")])
    outcome = invoker.call("p", TILES, function, {"ctx": None}, results.check_tiles)
    assert outcome.ok and [t.title for t in outcome.value] == ["here"]
    assert ran_in == [threading.current_thread()]
    assert invoker.in_flight("p") == 0 and invoker.snapshot()[("p", TILES, OK)] == 1


def test_its_overrun_is_a_timeout_and_its_other_failures_are_judged_as_usual(invoker):
    def overran(ctx):
        raise BudgetOverrun("no answer within its budget; worker killed")

    def timed_out_itself(ctx):
        raise TimeoutError("the plugin's own")

    assert invoker.call("p", TILES, own_budget(overran), {"ctx": None}, results.check_tiles).status == TIMEOUT
    assert invoker.call("p", TILES, own_budget(timed_out_itself), {"ctx": None}, results.check_tiles).status == ERROR
    assert invoker.call("p", TILES, own_budget(lambda ctx: "junk"), {"ctx": None}, results.check_tiles).status == INVALID
    assert invoker.in_flight("p") == 0


def test_in_a_batch_one_such_function_runs_here_while_the_pool_runs_the_rest(invoker, release):
    threads = {}

    def record(name):
        def function(ctx):
            threads[name] = threading.current_thread()
            return [Tile(title=name)]
        return function

    calls = [("a", record("a"), {"ctx": None}), ("own", own_budget(record("own")), {"ctx": None}),
             ("b", record("b"), {"ctx": None})]
    outcomes = invoker.call_each(TILES, calls, results.check_tiles)
    assert [o.plugin_id for o in outcomes] == ["a", "own", "b"] and all(o.ok for o in outcomes)
    assert threads["own"] is threading.current_thread()
    assert threads["a"] is not threading.current_thread() and threads["b"] is not threading.current_thread()


def test_several_such_functions_in_a_batch_overlap_on_the_pool(invoker, release):
    started = threading.Barrier(2, timeout=5)

    def meet(ctx):
        started.wait()  # both must run at once, or the barrier breaks
        return [Tile(title="met")]

    calls = [("x", own_budget(meet), {"ctx": None}), ("y", own_budget(meet), {"ctx": None})]
    assert [o.status for o in invoker.call_each(TILES, calls, results.check_tiles)] == [OK, OK]
