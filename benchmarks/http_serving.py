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

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import common

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "host" / "gunicorn_conf.py"
HOST = "127.0.0.1"  # loopback only

CONCURRENCY = 8  # client threads, each with one persistent connection
WARMUP = 200  # requests per endpoint and server before measuring, on fresh connections
REQUESTS = 1500  # measured requests per endpoint, server and round
ROUNDS = 3
PHASE_TIME_LIMIT = 60.0  # seconds; a phase stops by itself after this even if requests remain
BOOT_TIMEOUT = 90.0

#: (label, bare path, Canopy path)
ENDPOINTS = [
    ("/healthz", "/healthz", "/healthz"),
    ("storefront", "/tiles", "/s/SH001"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Canopy settings that could point a server at
    another database or plugins; gunicorn's own knobs in the conf file (workers, threads)
    are kept, and are the same for both servers."""
    keep = {"CANOPY_WORKERS", "CANOPY_THREADS"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_") or k in keep}
    env.update(extra or {})
    return env


def gunicorn_settings(env: dict[str, str]) -> dict[str, object]:
    """The settings ``host/gunicorn_conf.py`` gives under ``env``."""
    code = (
        "import json, runpy, sys; s = runpy.run_path(sys.argv[1]); "
        "print(json.dumps({k: s[k] for k in ('worker_class', 'workers', 'threads', 'keepalive', 'timeout', "
        "'max_requests', 'accesslog')}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(CONF)], env=env, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def canopy(args: list[str], env: dict[str, str]) -> str:
    """Run a ``canopy`` command; return its output."""
    script = Path(sys.executable).with_name("canopy")
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from host.cli import main; main()"]
    done = subprocess.run(command + args, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"canopy {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


class Server:
    """One gunicorn process group on a free loopback port."""

    def __init__(self, name: str, app: str, env: dict[str, str], log: Path, workers: int) -> None:
        self.name = name
        self.app = app
        self.env = env
        self.log_path = log
        self.workers = workers
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "-c", str(CONF), "--bind", f"{HOST}:{self.port}", self.app]

    def start(self) -> None:
        self.port = free_port()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self) -> None:
        """Wait until every worker has booted and ``/healthz`` answers."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting:\n{self.log_tail()}")
            booted = self.log_path.read_text(errors="replace").count("Booting worker with pid")
            if booted >= self.workers and get(self.port, "/healthz")[0] == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready in {BOOT_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM (gunicorn's graceful stop), then SIGKILL."""
        # The arbiter leads its own process group (start_new_session) and is not reaped
        # before it has exited, so the group id is ours for as long as we signal it; a
        # SIGKILL of the group takes the workers with the arbiter.
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 25), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()
            self._log = None


def get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a fresh connection; (0, b'') when the server does not answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


@dataclass
class Phase:
    """What one burst of requests to one endpoint came to."""

    requests: int = 0
    errors: int = 0  # not 200, or the connection failed
    degraded: int = 0  # 200, but the page shows a zone as unavailable
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0
    timed_out: bool = False

    @property
    def rps(self) -> float:
        return self.requests / self.wall if self.wall else 0.0


def drive(port: int, path: str, total: int, concurrency: int = CONCURRENCY) -> Phase:
    """Send ``total`` GETs to ``path`` from ``concurrency`` threads with persistent connections."""
    phase = Phase()
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    deadline = [0.0]
    shares = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]

    def worker(count: int) -> None:
        latencies: list[float] = []
        errors = degraded = 0
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            conn.connect()  # outside the timed part; a failure here is retried by the first request
        except OSError:
            conn.close()
        try:
            start.wait(timeout=30)
        except threading.BrokenBarrierError:
            return
        perf = time.perf_counter
        for _ in range(count):
            if perf() > deadline[0]:
                with lock:
                    phase.timed_out = True
                break
            t0 = perf()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                status, body = 0, b""
            latencies.append(perf() - t0)
            if status != 200:
                errors += 1
            elif b"zone-unavailable" in body:
                degraded += 1
        conn.close()
        with lock:
            phase.latencies.extend(latencies)
            phase.errors += errors
            phase.degraded += degraded

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in shares]
    for thread in threads:
        thread.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline[0] = t0 + PHASE_TIME_LIMIT
    try:
        start.wait(timeout=30)
    except threading.BrokenBarrierError:
        raise RuntimeError(f"the client threads for {path} did not start") from None
    for thread in threads:
        thread.join(PHASE_TIME_LIMIT + 60)
    phase.wall = time.perf_counter() - t0
    phase.client_cpu = time.process_time() - cpu0
    phase.requests = len(phase.latencies)
    return phase


def warm_up(port: int, path: str, count: int = WARMUP) -> None:
    """Requests on fresh connections, so every worker gets some (a persistent connection stays on one)."""
    def worker(n: int) -> None:
        for _ in range(n):
            get(port, path)

    threads = [threading.Thread(target=worker, args=(count // CONCURRENCY,), daemon=True) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PHASE_TIME_LIMIT)


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

        print(common.table(["setting (host/gunicorn_conf.py)", "value"], [[k, str(v)] for k, v in settings.items()], align="ll"))
        common.note(f"\nservers: `python -m gunicorn -c host/gunicorn_conf.py --bind 127.0.0.1:<free port> APP` with APP = "
                    f"`{bare.app}` and `{host.app}`; Canopy instance: {'; '.join(prepared)}")
        common.note(f"pages: Canopy /s/SH001 {len(body):,} bytes with {zones} plugin zones; bare /tiles {len(bare_body):,} bytes")
        common.note(f"load: {CONCURRENCY} client threads with persistent connections; {WARMUP} warm-up requests per endpoint "
                    f"and server, then {ROUNDS} rounds × {REQUESTS} requests per endpoint and server\n")

        for _label, bare_path, host_path in ENDPOINTS:
            warm_up(bare.port, bare_path)
            warm_up(host.port, host_path)

        results: dict[tuple[str, str], list[Phase]] = {}
        for round_ in range(ROUNDS):
            for label, bare_path, host_path in ENDPOINTS:
                pairs = [(bare, bare_path), (host, host_path)]
                for server, path in pairs if round_ % 2 == 0 else reversed(pairs):
                    results.setdefault((server.name, label), []).append(drive(server.port, path, REQUESTS))

        rows, summary, figures = [], [], {}
        for label, bare_path, host_path in ENDPOINTS:
            per = {}
            for server, path in ((bare, bare_path), (host, host_path)):
                phases = results[(server.name, label)]
                latencies = [x for p in phases for x in p.latencies]
                lat = common.Stats.of(latencies)
                rps = common.Stats.of([p.rps for p in phases]).median
                cpu = sum(p.client_cpu for p in phases) / sum(p.wall for p in phases)
                per[server.name] = (rps, lat)
                rows.append([
                    f"{server.name} {path}", f"{sum(p.requests for p in phases):,}",
                    str(sum(p.errors for p in phases)), str(sum(p.degraded for p in phases)),
                    " / ".join(f"{p.rps:,.0f}" for p in phases), f"{rps:,.0f}",
                    common.ms(lat.median), common.ms(lat.p95), f"{cpu:.0%}",
                ])
                if any(p.timed_out for p in phases):
                    common.note(f"warning: {server.name} {path} hit the {PHASE_TIME_LIMIT:.0f} s phase limit")
                figures[f"{server.name} {path}"] = {"rps": rps, "p50": lat.median, "p95": lat.p95}
            (b_rps, b_lat), (c_rps, c_lat) = per[bare.name], per[host.name]
            summary.append([
                f"Canopy {host_path} vs bare {bare_path}", common.ratio(c_rps, b_rps),
                common.ratio(c_lat.median, b_lat.median), common.ratio(c_lat.p95, b_lat.p95),
            ])
        print(common.table(
            ["server and path", "requests", "errors", "degraded", "req/s per round", "req/s (median)",
             "p50 ms", "p95 ms", "client CPU"], rows, align="lrrrrrrrr",
        ))
        print()
        print(common.table(["comparison", "throughput", "p50 latency", "p95 latency"], summary))
        common.note(
            "\nreq/s = requests ÷ wall time of one round; latency = one request's round trip as the client saw it, "
            "over all rounds; client CPU = the load generator's CPU time ÷ wall time (100% = one core; it shares "
            "the machine's cores with the servers). degraded = 200 pages that showed a plugin zone as unavailable."
        )
        return figures
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run()
