"""Plugin loading: what starting a runtime costs for 1, 100 and 1,000 plugins.

Each generated plugin is a folder with ``plugin.toml``, one module with one hook
implementation and one template. Timed, as ``create_app`` does it: build a
:class:`~host.runtime.PluginRuntime` (which registers the host's default plugins),
``load()`` the folder (discover, validate each manifest, checksum each folder, import each
entry, register it with pluggy) and ``start()`` (``check_pending`` and freeze).
Separately for 1,000: the registry sync into a freshly migrated SQLite file (what
``canopy db upgrade`` does), and the sync again when nothing changed (what every
``canopy serve`` does before it starts gunicorn).

Each round loads every size once, importing the modules again (they are dropped from
``sys.modules`` first); the first round also compiles them (writing ``__pycache__``), so it
is shown apart and the medians are of the later rounds. The baseline is importing one trivial module
from its file with :mod:`importlib` (``spec_from_file_location`` + ``exec_module``).
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from pathlib import Path

from . import common, plugin_factory

SIZES = (1, 100, 1000)
ROUNDS = 6  # the first is the cold one
SYNC_REPEATS = 3
TIME_LIMIT = 90.0  # seconds for the whole benchmark; later repeats are skipped past it


def _runtime_factory(work: Path):
    from host.config import load_config
    from host.db import Database
    from host.runtime import PluginRuntime

    config = load_config(plugin_factory.app_config(work / "instance", work / "unused"))
    database = Database(config["DATABASE_URL"])

    def build_and_load(folder: Path | None) -> tuple[float, PluginRuntime]:
        started = time.perf_counter()
        runtime = PluginRuntime(config, database)
        runtime.load([folder] if folder else [], entry_points=False)
        runtime.start()
        return time.perf_counter() - started, runtime

    return build_and_load, database


def _trivial_import_baseline(work: Path) -> common.Stats:
    path = work / "trivial_module.py"
    path.write_text('"""A trivial module."""\n\n\ndef hello():\n    return "hello"\n', encoding="utf-8")
    counter = iter(range(10**9))

    def import_once():
        name = f"bench_trivial_{next(counter)}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return common.time_per_call({"import": import_once}, repeats=21)["import"]


def run() -> dict:
    from host.migrations import upgrade
    from host.db import Database
    from host.runtime.registry import sync_registry

    common.heading("loading: build a PluginRuntime and load N generated plugins")
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-loading-"))
    deadline = time.perf_counter() + TIME_LIMIT
    databases = []
    try:
        build_and_load, database = _runtime_factory(work)
        databases.append(database)
        baseline = _trivial_import_baseline(work)

        folders = {}
        for size in SIZES:
            folders[size] = work / f"plugins_{size}"
            plugin_factory.generate(folders[size], size, f"n{size}")

        # Rounds: each loads every size once (and a runtime with no plugins, the fixed
        # cost), so a slow spell of the machine falls on all sizes alike. Round 1 is the
        # cold one (it compiles the modules); the medians are of the later rounds.
        samples: dict[int, list[float]] = {size: [] for size in (0, *SIZES)}
        runtimes = {}
        for round_ in range(ROUNDS):
            if round_ >= 3 and time.perf_counter() > deadline:
                break
            samples[0].append(build_and_load(None)[0])
            for size in SIZES:
                plugin_factory.forget_modules(f"n{size}")
                elapsed, runtime = build_and_load(folders[size])
                assert len(runtime.plugins) == size and not runtime.refused, [p.problem for p in runtime.refused][:3]
                samples[size].append(elapsed)
                runtimes[size] = runtime
        fixed = common.Stats.of(samples[0][1:])
        results = {size: {"cold": samples[size][0], "warm": common.Stats.of(samples[size][1:]), "n": len(samples[size]) - 1}
                   for size in SIZES}
        paired = common.Stats.of([(t1000 / 1000) / (t100 / 100) for t100, t1000 in zip(samples[100][1:], samples[1000][1:])])

        rows = []
        for size in SIZES:
            r = results[size]
            warm = r["warm"]
            per = warm.median / size
            marginal = (warm.median - fixed.median) / size
            rows.append([
                f"{size:,}", common.ms(r["cold"]), common.ms(warm.median), common.ms(warm.p95), str(r["n"]),
                common.us(per), common.us(marginal), common.ratio(marginal, baseline.median),
            ])
        print(common.table(
            ["plugins", "first (compiles) ms", "total ms (median)", "total ms (p95)", "rounds",
             "µs/plugin", "µs/plugin beyond fixed", "vs trivial import"],
            rows,
        ))
        per_100 = results[100]["warm"].median / 100
        per_1000 = results[1000]["warm"].median / 1000
        marg_100 = (results[100]["warm"].median - fixed.median) / 100
        marg_1000 = (results[1000]["warm"].median - fixed.median) / 1000
        paired_min = min((t1000 / 1000) / (t100 / 100) for t100, t1000 in zip(samples[100][1:], samples[1000][1:]))
        common.note(
            f"\nfixed cost (runtime with no plugins): {common.ms(fixed.median)} ms; "
            f"baseline, importing one trivial module from file: {common.us(baseline.median)} µs "
            f"(p95 {common.us(baseline.p95)})\n"
            f"per plugin, 1,000 vs 100: {common.ratio(per_1000, per_100)} (medians of total ÷ N), "
            f"{common.ratio(marg_1000, marg_100)} (beyond the fixed cost), {common.ratio(paired.median, 1)} "
            f"(median of the rounds' own ratios, range {paired_min:.2f}–{paired.p95:.2f}); 1.00× would be linear"
        )

        # Registry sync of the 1,000 into SQLite.
        template = work / "template.db"
        engine_db = Database(f"sqlite:///{template}")
        upgrade(engine_db.engine)
        with engine_db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine_db.dispose()
        runtime = runtimes[1000]
        first, again = [], []
        for attempt in range(SYNC_REPEATS):
            if attempt >= 1 and time.perf_counter() > deadline:
                break
            path = work / f"sync_{attempt}.db"
            shutil.copyfile(template, path)
            db = Database(f"sqlite:///{path}")
            databases.append(db)
            for bucket, expect in ((first, "added"), (again, "unchanged")):
                started = time.perf_counter()
                with db.transaction(write=True) as session:
                    report = sync_registry(session, runtime)
                bucket.append(time.perf_counter() - started)
                assert len(getattr(report, expect)) == 1000, (expect, len(report.added), len(report.unchanged))
            db.dispose()
        sync_rows = []
        for label, samples in (("first sync: 1,000 new plugins and versions", first), ("sync again: 1,000 unchanged", again)):
            s = common.Stats.of(samples)
            sync_rows.append([label, common.ms(s.median), common.ms(s.p95), str(s.n), common.us(s.median / 1000),
                              common.ratio(s.median / 1000, baseline.median)])
        print()
        print(common.table(["registry sync into SQLite (one transaction)", "ms (median)", "ms (p95)", "repeats",
                            "µs/plugin", "vs trivial import"], sync_rows))
        return {
            "fixed": fixed.median, "baseline": baseline.median,
            **{f"load_{size}": results[size]["warm"].median for size in SIZES},
            "sync_first": common.Stats.of(first).median, "sync_again": common.Stats.of(again).median,
        }
    finally:
        for db in databases:
            db.dispose()
        for size in SIZES:
            plugin_factory.forget_modules(f"n{size}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run()
