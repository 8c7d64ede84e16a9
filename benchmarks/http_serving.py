"""HTTP: Canopy under gunicorn next to a bare Flask app under the same gunicorn settings.

Two gunicorn servers run side by side on free loopback ports, both started as
``python -m gunicorn -c host/gunicorn_conf.py --bind 127.0.0.1:<port> <app>`` (so the worker
class, workers, threads, keep-alive and access log are the same):

a. the bare Flask app of :mod:`benchmarks.bare_app` (``/healthz``, ``/tiles``);
b. Canopy (``host:create_app()``) on a temporary SQLite instance prepared with
   ``canopy init-instance``, ``canopy db upgrade`` and ``canopy demo`` and the repo's plugins.

A load generator in this process (threads, one persistent ``http.client`` connection
each) sends a fixed number of GET requests per endpoint after a warm-up, in rounds that
alternate which server goes first. Compared: Canopy's ``/healthz`` with the bare one, and
Canopy's storefront ``/s/SH001`` (its plugin zones) with the bare ``/tiles`` page.
The servers are stopped at the end whatever happens (their whole process group).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import common
from .serving import (
    CONCURRENCY, LEGEND, REPO, Phase, Server, canopy, comparison, comparison_table, drive, get, gets, gunicorn_settings,
    print_settings, results_table, server_env, summarise, warm_up,
)

WARMUP = 200  # requests per endpoint and server before measuring, on fresh connections
REQUESTS = 1500  # measured requests per endpoint, server and round
ROUNDS = 3

#: (label, bare path, Canopy path)
ENDPOINTS = [
    ("/healthz", "/healthz", "/healthz"),
    ("storefront", "/tiles", "/s/SH001"),
]


def run() -> dict:
    common.heading("http: Canopy vs bare Flask, same gunicorn settings")
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-http-"))
    servers: list[Server] = []
    try:
        instance = work / "instance"
        canopy_env = server_env({"CANOPY_INSTANCE_PATH": str(instance), "CANOPY_PLUGIN_PATHS": str(REPO / "plugins")})
        bare_env = server_env()
        settings = gunicorn_settings(bare_env)
        assert settings == gunicorn_settings(canopy_env)
        workers = int(settings["workers"])

        prepared = [canopy(args, canopy_env) for args in (["init-instance"], ["db", "upgrade"], ["demo"])]

        bare = Server("bare Flask", "benchmarks.bare_app:app", bare_env, work / "bare.log", workers)
        host = Server("Canopy", "host:create_app()", canopy_env, work / "canopy.log", workers)
        servers = [bare, host]
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()

        status, body = get(host.port, "/s/SH001")
        zones = body.count(b'class="zone"')
        if status != 200 or zones == 0:
            raise RuntimeError(f"Canopy's /s/SH001 answered {status} with {zones} zones:\n{host.log_tail()}")
        status, bare_body = get(bare.port, "/tiles")
        assert status == 200, status

        print_settings(settings)
        common.note(f"\nservers: `python -m gunicorn -c host/gunicorn_conf.py --bind 127.0.0.1:<free port> APP` with APP = "
                    f"`{bare.app}` and `{host.app}`; Canopy instance: {'; '.join(prepared)}")
        common.note(f"pages: Canopy /s/SH001 {len(body):,} bytes with {zones} plugin zones; bare /tiles {len(bare_body):,} bytes")
        common.note(f"load: {CONCURRENCY} client threads with persistent connections; {WARMUP} warm-up requests per endpoint "
                    f"and server, then {ROUNDS} rounds × {REQUESTS} requests per endpoint and server\n")

        for _label, bare_path, host_path in ENDPOINTS:
            warm_up(bare.port, gets(bare_path, WARMUP))
            warm_up(host.port, gets(host_path, WARMUP))

        results: dict[tuple[str, str], list[Phase]] = {}
        for round_ in range(ROUNDS):
            for label, bare_path, host_path in ENDPOINTS:
                pairs = [(bare, bare_path), (host, host_path)]
                for server, path in pairs if round_ % 2 == 0 else reversed(pairs):
                    results.setdefault((server.name, label), []).append(drive(server, gets(path, REQUESTS), CONCURRENCY))

        rows, summary, figures = [], [], {}
        for label, bare_path, host_path in ENDPOINTS:
            per = {}
            for server, path in ((bare, bare_path), (host, host_path)):
                per[server.name] = found = summarise(f"{server.name} {path}", results[(server.name, label)])
                rows.append(found.row)
                figures[f"{server.name} {path}"] = {"rps": found.rps, "p50": found.latency.median, "p95": found.latency.p95}
            summary.append(comparison(f"Canopy {host_path} vs bare {bare_path}", per[host.name], per[bare.name]))
        print(results_table(rows))
        print()
        print(comparison_table(summary))
        common.note("\n" + LEGEND + " degraded = 200 pages that showed a plugin zone as unavailable.")
        return figures
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run()
