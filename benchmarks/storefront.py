"""Storefront: requests per second of a storefront with 1 and with 50 installed mini-programs,
in the same run, under gunicorn with the repo's settings.

One Canopy instance per database (SQLite, and PostgreSQL when reachable), each prepared with
``canopy init-instance``, ``canopy db upgrade`` and ``canopy demo`` and loading the repo's
plugins plus :data:`PLUGINS` generated in-process mini-programs (publisher kind ``bank``), each
returning :data:`TILES` tiles built from a small catalogue (locale, price, a deep link: a few
microseconds of work, no I/O, no sleeps). Head office (the demo's ``hq.admin``) approves their
scopes, adds two branches under HQ and installs into them through the host's own services
(``branches.create_branch``, ``installs.install``): one generated mini-program in
:data:`BRANCHES` ``[1]``, all of them in ``[50]``.

Both pages are served by **one** gunicorn server per database, so the two storefronts share
everything — processes, plugin runtime (all plugins loaded in both cases), connection pool,
banners and feed — except what is installed. Next to them, the bare Flask app of ``http``
(``/tiles``) on the same gunicorn settings, as the ceiling for a page of that shape.

Every response must be a 200 with exactly the branch's number of zones (``data-plugin="``)
and no zone shown as unavailable; anything else is counted as a failure and printed.
The rounds interleave every page (the order reversed every other round), and every page gets
the same number of client threads. The goal (issue 5): 50 plugins at ≥ 40% of the 1-plugin
rate. The PostgreSQL database is made here and dropped at the end, also after Ctrl-C or
``SIGTERM``; the servers are stopped and the temporary folder removed.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import common, plugin_factory
from .postgres import POSTGRES, drop_database, fresh_database, server_version, url_of
from .serving import (
    CONCURRENCY, DEGRADED_MARKER, LEGEND, REPO, Call, Phase, Server, canopy, drive, get, gets, gunicorn_settings,
    print_settings, server_env, summarise, warm_up,
)

PLUGINS = 50  # generated mini-programs, all installed in the larger storefront
TILES = 2  # tiles each returns
PREFIX = "store"  # generated ids: bench.store.p0000 …
SCOPES = ["profile.basic:read"]  # approved by head office before installing
#: installed mini-programs → branch code
BRANCHES = {1: "BENCH-1", 50: "BENCH-50"}
GOAL = 0.40  # 50-plugin rate ÷ 1-plugin rate

ROUNDS = 4
PHASE_SECONDS = 2.0  # the aim for one page's phase in one round; request counts come from a calibration
WARMUP = 80  # requests per page on fresh connections, so every worker has served each page
CALIBRATION = 96  # requests per page, untimed, to size the phases
MIN_REQUESTS, MAX_REQUESTS = 80, 4000
ZONE_MARKER = b'data-plugin="'

#: The generated plugins' module: a couple of tiles from a small catalogue, chosen by the day
#: and the plugin's number, in the visitor's language, with a formatted price and a deep link.
MODULE = '''\
"""Generated storefront benchmark plugin {plugin_id}: {tiles} offer tiles from a small catalogue."""

import datetime

from canopy_sdk import Tile, hookimpl

N = {n}
TILES = {tiles}
OFFERS = [
    # Chinese, English, price in fen, merchant
    ("精品咖啡买一送一", "Coffee: buy one, get one free", 2800, "Café {n}"),
    ("周末早午餐八折", "Weekend brunch, 20% off", 16800, "Bistro {n}"),
    ("电影票立减十元", "Cinema tickets, CNY 10 off", 4500, "Cinema {n}"),
    ("书店满百减二十", "Bookshop: 20 off 100", 10000, "Books {n}"),
    ("健身月卡特惠", "Gym monthly pass offer", 19900, "Gym {n}"),
    ("洗车服务五折", "Car wash, half price", 3900, "Car care {n}"),
]


def _en(ctx):
    locale = getattr(ctx, "locale", "")
    return isinstance(locale, str) and locale.lower().startswith("en")


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        en = _en(ctx)
        first = (datetime.date.today().toordinal() + N) % len(OFFERS)
        tiles = []
        for i in range(TILES):
            k = (first + i) % len(OFFERS)
            zh_title, en_title, fen, merchant = OFFERS[k]
            price = f"¥{{fen // 100}}.{{fen % 100:02d}}"
            tiles.append(Tile(
                title=en_title if en else zh_title,
                subtitle=f"{{merchant}} · {{price}}" + (" · limited" if en else " · 限量"),
                link=f"/offer?id={{N}}-{{k}}&from={{ctx.branch.code}}",
                badge=("New" if en else "新") if i == 0 else None,
            ))
        return tiles


plugin = Plugin()
'''


def write_plugins(root: Path, count: int = PLUGINS, tiles: int = TILES, prefix: str = PREFIX,
                  publisher: str = "bank") -> list[str]:
    """Write ``count`` generated plugin folders (the layout of :mod:`plugin_factory`) whose
    module returns ``tiles`` tiles; return their ids."""
    ids = plugin_factory.generate(root, count, prefix, scopes=SCOPES, publisher=publisher)
    for n, plugin_id in enumerate(ids):
        module = root / f"{prefix}_p{n:04d}" / f"bench_{prefix}_p{n:04d}.py"
        module.write_text(MODULE.format(plugin_id=plugin_id, n=n, tiles=tiles), encoding="utf-8")
    return ids


def installs_for(ids: Sequence[str]) -> dict[str, list[str]]:
    """Branch code → the generated plugins installed in it, in grid order."""
    return {code: list(ids[:count]) for count, code in BRANCHES.items()}


def zone_count(body: bytes) -> int:
    """How many plugin zones a storefront page shows."""
    return body.count(ZONE_MARKER)


def page_problem(status: int, body: bytes, zones: int) -> str:
    """Why a storefront answer is not what it should be ('' when it is: a 200 with ``zones``
    zones, none of them shown as unavailable)."""
    if status != 200:
        return f"status {status}"
    found = zone_count(body)
    if found != zones:
        return f"{found} zones, expected {zones}"
    if DEGRADED_MARKER in body:
        return "a zone shown as unavailable"
    return ""


def requests_for(rate: float, seconds: float = PHASE_SECONDS) -> int:
    """How many requests make a phase of about ``seconds`` at ``rate`` per second (a multiple of
    the client count, within bounds)."""
    wanted = min(MAX_REQUESTS, max(MIN_REQUESTS, int(rate * seconds)))
    return max(CONCURRENCY, wanted // CONCURRENCY * CONCURRENCY)


def round_ratios(fifty: Sequence[Phase], one: Sequence[Phase]) -> list[float]:
    """Each round's 50-plugin rate ÷ the same round's 1-plugin rate."""
    return [a.rps / b.rps if b.rps else 0.0 for a, b in zip(fifty, one)]


def drive_checked(server: Server, path: str, count: int, check: Callable[[int, bytes], str],
                  concurrency: int = CONCURRENCY) -> Phase:
    """``count`` GETs of ``path`` through :func:`benchmarks.serving.drive`, each answer judged by ``check``."""
    return drive(server, [Call("GET", path)] * count, concurrency, check=check)


# -- preparing the instances ---------------------------------------------------------------------


def _setup(env: dict[str, str], layout: dict[str, list[str]]) -> list[str]:
    """In a forked child (it changes ``os.environ``): head office approves the generated plugins'
    scopes, adds the benchmark's branches and installs the plugins through the host's services
    (``layout``: branch code → plugin ids, in grid order). Return what was done, for the output."""
    for name in [name for name in os.environ if name.startswith("CANOPY_")]:
        del os.environ[name]
    os.environ.update(env)
    from sqlalchemy import select

    from host import create_app
    from host.db import get_database
    from host.identity.models import Staff
    from host.runtime import get_runtime
    from host.runtime.registry import approve_scopes
    from host.storefront import branches, installs

    app = create_app()
    with app.app_context(), get_database(app).transaction(write=True) as session:
        staff = session.scalar(select(Staff).where(Staff.username == "hq.admin"))
        for plugin_id in dict.fromkeys(p for wanted in layout.values() for p in wanted):
            approve_scopes(session, plugin_id)
        runtime = get_runtime()
        done = []
        for code, wanted in layout.items():
            branches.create_branch(session, staff, {"code": code, "name_zh": f"基准 {code}",
                                                    "name_en": f"Benchmark {code}", "parent_code": "HQ"})
            for plugin_id in wanted:
                installs.install(session, runtime, staff, code, plugin_id)
            done.append(f"{code}: {len(installs.installed(session, code))} installed")
    return done


@dataclass
class Target:
    """One Canopy server (one database) and its two storefronts."""

    kind: str  # "SQLite" or "PostgreSQL"
    server: Server
    prepared: list[str]
    pages: dict[int, str] = field(default_factory=dict)  # installed count → path


def prepare_instance(work: Path, kind: str, database_url: str | None, layout: dict[str, list[str]],
                     workers: int) -> tuple[Server, list[str]]:
    """A Canopy instance on ``database_url`` (None: SQLite in ``work``) loading the repo's plugins and
    those under ``work/plugins``, its branches installed as ``layout`` says, and its (unstarted)
    gunicorn server; also what preparing it said, for the output."""
    instance = work / f"instance-{kind.lower()}"
    env = {"CANOPY_INSTANCE_PATH": str(instance),
           "CANOPY_PLUGIN_PATHS": os.pathsep.join([str(REPO / "plugins"), str(work / "plugins")])}
    if database_url:
        env["CANOPY_DATABASE_URL"] = database_url
    prepared = [canopy(args, server_env(env)) for args in (["init-instance"], ["db", "upgrade"], ["demo"])]
    with multiprocessing.get_context("fork").Pool(1) as pool:  # the host's app in a process of its own
        prepared += pool.apply(_setup, (env, layout))
    server = Server(f"Canopy {kind}", "host:create_app()", server_env(env), work / f"canopy-{kind.lower()}.log", workers)
    return server, prepared


def _prepare(work: Path, kind: str, database_url: str | None, ids: list[str], workers: int) -> Target:
    server, prepared = prepare_instance(work, kind, database_url, installs_for(ids), workers)
    return Target(kind, server, prepared, {count: f"/s/{code}" for count, code in BRANCHES.items()})


# -- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page under load: a server, a path and the rule its answers must meet."""

    label: str
    server: Server
    path: str
    check: Callable[[int, bytes], str]


def _pages(bare: Server, targets: list[Target]) -> list[Page]:
    pages = [Page("bare Flask /tiles", bare, "/tiles", lambda status, body: "" if status == 200 else f"status {status}")]
    for target in targets:
        for count, path in target.pages.items():
            pages.append(Page(f"{target.server.name} {path} ({count} plugin{'s' if count > 1 else ''})",
                              target.server, path, lambda status, body, n=count: page_problem(status, body, n)))
    return pages


def first_look(pages: list[Page]) -> list[str]:
    """One request per page: it must pass its check; return a line per page for the output."""
    lines = []
    for page in pages:
        status, body = get(page.server.port, page.path)
        problem = page.check(status, body)
        if problem:
            raise RuntimeError(f"{page.label}: {problem}\n{body[:500]!r}\n{page.server.log_tail()}")
        zones = zone_count(body)
        lines.append(f"{page.label}: {len(body):,} bytes, {zones} zone{'' if zones == 1 else 's'}")
    return lines


def measure(pages: list[Page]) -> tuple[dict[str, list[Phase]], dict[str, int]]:
    """Warm-up, calibration (untimed), then :data:`ROUNDS` rounds over every page."""
    for page in pages:
        warm_up(page.server.port, gets(page.path, WARMUP))
    counts = {}
    for page in pages:
        calibration = drive_checked(page.server, page.path, CALIBRATION, page.check)
        counts[page.label] = requests_for(calibration.rps)
    results: dict[str, list[Phase]] = {page.label: [] for page in pages}
    for round_ in range(ROUNDS):
        for page in pages if round_ % 2 == 0 else list(reversed(pages)):
            results[page.label].append(drive_checked(page.server, page.path, counts[page.label], page.check))
    return results, counts


def _report(pages: list[Page], targets: list[Target], results: dict[str, list[Phase]]) -> dict:
    rows, summaries = [], {}
    for page in pages:
        phases = results[page.label]
        summaries[page.label] = found = summarise(page.label, phases)
        row = list(found.row)
        row.insert(4, str(sum(p.wrong for p in phases)))
        rows.append(row)
    print(common.table(
        ["page", "requests", "errors", "degraded", "wrong zones", "req/s per round", "req/s (median)", "p50 ms",
         "p95 ms", "server CPU ms/req", "client CPU"], rows, align="lrrrrrrrrrr"))
    print()

    bare = summaries[pages[0].label]
    figures: dict[str, object] = {"bare": bare.rps}
    goal_rows = []
    for target in targets:
        one_label = next(p.label for p in pages if p.server is target.server and p.path == target.pages[1])
        fifty_label = next(p.label for p in pages if p.server is target.server and p.path == target.pages[PLUGINS])
        one, fifty = summaries[one_label], summaries[fifty_label]
        ratio = fifty.rps / one.rps if one.rps else 0.0
        per_round = round_ratios(results[fifty_label], results[one_label])
        per_zone = (fifty.cpu_per_request - one.cpu_per_request) / (PLUGINS - 1)
        met = ratio >= GOAL
        goal_rows.append([
            target.kind, f"{one.rps:,.0f}", f"{fifty.rps:,.0f}", f"{ratio:.3f}",
            " / ".join(f"{r:.2f}" for r in per_round), f"{statistics.median(per_round):.2f}",
            common.ms(one.cpu_per_request), common.ms(fifty.cpu_per_request), f"{per_zone * 1e6:,.0f}",
            f"{one.rps / bare.rps:.2f}× / {fifty.rps / bare.rps:.2f}×" if bare.rps else "-",
            "met" if met else "NOT met",
        ])
        figures[target.kind] = {"one": one.rps, "fifty": fifty.rps, "ratio": ratio, "per_round": per_round,
                                "cpu_one": one.cpu_per_request, "cpu_fifty": fifty.cpu_per_request, "met": met}
    print(common.table(
        ["database", "1 plugin req/s", f"{PLUGINS} plugins req/s", f"ratio {PLUGINS}/1", "ratio per round",
         "ratio (median of rounds)", "CPU ms/req, 1", f"CPU ms/req, {PLUGINS}", "CPU µs per extra zone",
         "vs bare /tiles (1 / 50)", f"goal ≥ {GOAL:.2f}"], goal_rows, align="lrrrrrrrrrl"))
    return figures


def _failures(pages: list[Page], results: dict[str, list[Phase]]) -> int:
    """Print every page's failures loudly; return how many answers failed."""
    total = 0
    for page in pages:
        phases = results[page.label]
        bad = sum(p.errors + p.wrong for p in phases)
        if bad:
            total += bad
            first = next((p.first_error or p.first_wrong for p in phases if p.first_error or p.first_wrong), "")
            common.note(f"!!! {page.label}: {bad} bad answers; the first: {first}")
    if total:
        common.note(f"!!! {total} FAILED ANSWERS (not a 200, or not the branch's number of zones, or a zone shown as "
                    f"unavailable): this is not a clean run !!!")
    else:
        common.note("every answer was a 200 with the branch's number of zones and none unavailable")
    return total


def run() -> dict:
    common.heading(f"storefront: /s/<branch> with 1 and with {PLUGINS} installed mini-programs, same server")
    started = time.perf_counter()
    common.note(f"load average at the start: {common.load_average()}")
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-storefront-"))
    database = f"canopy_bench_storefront_{os.getpid()}"
    created_database = False
    servers: list[Server] = []
    try:
        postgres, problem = server_version()
        if postgres:
            try:
                fresh_database(database)
                created_database = True
            except Exception as exc:  # noqa: BLE001 - measure without it, and say so
                postgres, problem = None, f"cannot create a database: {exc.__class__.__name__}"
        if not postgres:
            common.note(f"PostgreSQL is not usable at {POSTGRES} ({problem}): measured on SQLite only")

        ids = write_plugins(work / "plugins")
        settings = gunicorn_settings(server_env())
        workers = int(settings["workers"])
        kinds: list[tuple[str, str | None]] = [("SQLite", None)]
        if postgres:
            kinds.append(("PostgreSQL", url_of(database)))
        targets = [_prepare(work, kind, url, ids, workers) for kind, url in kinds]
        bare = Server("bare Flask", "benchmarks.bare_app:app", server_env(), work / "bare.log", workers)
        servers = [bare, *(t.server for t in targets)]
        for server in servers:
            assert gunicorn_settings(server.env) == settings
            server.start()
        for server in servers:
            server.wait_ready()
        pages = _pages(bare, targets)
        looked = first_look(pages)

        print_settings(settings)
        common.note(f"\nservers: `python -m gunicorn -c host/gunicorn_conf.py --bind 127.0.0.1:<free port> APP` with APP = "
                    f"`{bare.app}` and, once per database, `host:create_app()`")
        common.note("databases: SQLite in a temporary instance folder" + (
            f"; {postgres} at 127.0.0.1, a fresh database {database} (dropped afterwards)" if postgres else ""))
        for target in targets:
            common.note(f"{target.kind} instance: {'; '.join(target.prepared)}")
        common.note(f"plugins: the repo's plugins/ and {PLUGINS} generated in-process ones (publisher kind bank, scope "
                    f"{', '.join(SCOPES)} approved by head office), each returning {TILES} tiles from a small catalogue "
                    f"(locale, price, deep link; no I/O); branches {', '.join(BRANCHES.values())} added under HQ by "
                    f"hq.admin, generated plugins installed with the storefront's install service "
                    f"({', '.join(f'{c}: {n}' for n, c in BRANCHES.items())}); the demo's bank-wide banners and feed "
                    f"show on both; visitors are anonymous")
        common.note("pages: " + "; ".join(looked))

        results, counts = measure(pages)
        sizes = ", ".join(f"{label.split(' (')[0]}: {count:,}" for label, count in counts.items())
        common.note(f"load: {CONCURRENCY} client threads with persistent connections for every page; {WARMUP} warm-up "
                    f"requests per page on fresh connections; phases sized from an untimed calibration of {CALIBRATION} "
                    f"requests to about {PHASE_SECONDS:.0f} s each ({sizes} requests per round); {ROUNDS} rounds over "
                    f"every page, the order reversed every other round\n")
        figures = _report(pages, targets, results)
        common.note("\n" + LEGEND + " degraded = 200 pages that showed a plugin zone as unavailable; wrong zones = 200 "
                    "pages without exactly the branch's number of zones or with one unavailable. ratio = the median "
                    f"req/s of the {PLUGINS}-plugin page ÷ the 1-plugin page's; ratio per round = the same within each "
                    "round; CPU µs per extra zone = (CPU per request with 50 − with 1) ÷ 49.")
        figures["failures"] = _failures(pages, results)
        common.note(f"(storefront: {time.perf_counter() - started:.0f} s before the clean-up, setup included; "
                    f"load average now {common.load_average()})")
        return figures
    finally:
        for server in servers:
            server.stop()
        if created_database:
            drop_database(database)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run()
