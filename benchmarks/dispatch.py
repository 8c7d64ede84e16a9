"""Hook dispatch: what the runtime's per-plugin calls cost next to calling the function.

A temporary app (``create_app`` on a temporary SQLite instance) loads 50 generated
in-process plugins whose ``canopy_storefront_tiles`` returns one tile. Measured per call:

a. the plugin's implementation called directly (the baseline);
b. the plain pluggy hook call, which runs all 50 implementations;
c. ``runtime.invoker.call`` for one plugin: thread pool, time budget, in-flight bulkhead,
   result check, outcome counting;
d. ``runtime.tiles`` for all 50 plugins at once, next to 50 direct calls (a50);
e. ``runtime.context`` for one plugin (the storefront builds one per zone per request).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import common, plugin_factory

PLUGINS = 50
HOOK = "canopy_storefront_tiles"


def run() -> dict:
    from canopy_sdk import results
    from canopy_sdk.types import BranchInfo

    from host import create_app
    from host.db import get_database
    from host.runtime import get_runtime

    common.heading(f"dispatch: one storefront hook, {PLUGINS} in-process plugins")
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-dispatch-"))
    app = None
    try:
        ids = plugin_factory.generate(work / "plugins", PLUGINS, "dispatch")
        app = create_app(plugin_factory.app_config(work / "instance", work / "plugins"))
        runtime = get_runtime(app)
        assert sorted(runtime.plugins) == sorted(ids), f"expected {PLUGINS} plugins, got {sorted(runtime.plugins)}"
        assert not runtime.refused, [p.problem for p in runtime.refused]

        branch = BranchInfo(code="SH001", name="上海分行", parent="HQ")

        def context(pid: str):
            return runtime.context(pid, branch=branch, locale="zh-CN", approved_scopes=())

        contexts = [context(pid) for pid in ids]
        first, ctx = ids[0], contexts[0]
        fn = runtime.impl(first, HOOK)
        functions = [(runtime.impl(c.plugin_id, HOOK), c) for c in contexts]
        hook = runtime.pm.hook.canopy_storefront_tiles
        invoker = runtime.invoker
        check = results.check_tiles

        # Sanity: every path returns what the direct call returns.
        assert len(hook(ctx=ctx)) == PLUGINS  # one list of tiles per implementation
        outcome = invoker.call(first, HOOK, fn, {"ctx": ctx}, check)
        assert outcome.ok and outcome.value == fn(ctx=ctx), outcome
        outcomes = runtime.tiles(contexts)
        assert len(outcomes) == PLUGINS and all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:3]

        def direct_50():
            for f, c in functions:
                f(ctx=c)

        cases = [
            ("a", "direct call of the plugin's function", lambda: fn(ctx=ctx)),
            ("b", f"pm.hook.{HOOK}(ctx) through all {PLUGINS} impls", lambda: hook(ctx=ctx)),
            ("c", "runtime.invoker.call, 1 plugin (pool + budget + check)", lambda: invoker.call(first, HOOK, fn, {"ctx": ctx}, check)),
            ("a50", f"{PLUGINS} direct calls, one per plugin", direct_50),
            ("d", f"runtime.tiles({PLUGINS} contexts), all at once", lambda: runtime.tiles(contexts)),
            ("e", "runtime.context() for 1 plugin", lambda: context(first)),
        ]
        measured = common.time_per_call({key: call for key, _label, call in cases})

        a, a50 = measured["a"].median, measured["a50"].median
        rows = []
        for key, label, _call in cases:
            s = measured[key]
            vs_a50 = common.ratio(s.median, a50) if key in ("b", "d") else ""
            rows.append([key, label, common.us(s.median), common.us(s.p95), common.ratio(s.median, a), vs_a50])
        print(common.table(
            ["", "what is called", "µs/call (median)", "µs/call (p95)", "vs a", "vs a50"], rows, align="llrrrr"
        ))
        common.note(
            f"\nPer call = one timed loop ÷ its length; {measured['a'].n} repeats per row, rows interleaved, gc off (as timeit). "
            f"d per plugin: {common.us(measured['d'].median / PLUGINS)} µs; "
            f"d − a50 = {common.us(measured['d'].median - a50)} µs of runtime overhead for one {PLUGINS}-zone storefront."
        )
        return {key: s.median for key, s in measured.items()}
    finally:
        if app is not None:
            get_runtime(app).invoker.shutdown()
            get_database(app).dispose()
        plugin_factory.forget_modules("dispatch")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run()
