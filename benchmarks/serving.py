"""Serving helpers shared by the HTTP benchmarks (``http``, ``oauth``): gunicorn servers on
free loopback ports with the repo's gunicorn settings, ``canopy`` commands, and the load
generator.

The load generator sends prepared :class:`Call` s — the same GET many times, or requests
made one by one before the clock starts (each DPoP proof is good once) — from a fixed
number of threads, each with one persistent ``http.client`` connection.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from . import common

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "host" / "gunicorn_conf.py"
HOST = "127.0.0.1"  # loopback only

CONCURRENCY = 8  # client threads, each with one persistent connection
PHASE_TIME_LIMIT = 60.0  # seconds; a phase stops by itself after this even if requests remain
BOOT_TIMEOUT = 90.0
#: A 200 page that shows a plugin zone as unavailable counts as "degraded".
DEGRADED_MARKER = b"zone-unavailable"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Canopy settings that could point a server at
    another database or plugins; gunicorn's own knobs in the conf file (workers, threads)
    are kept, and are the same for every server."""
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


def print_settings(settings: Mapping[str, object]) -> None:
    """The gunicorn settings as a table."""
    print(common.table(["setting (host/gunicorn_conf.py)", "value"], [[k, str(v)] for k, v in settings.items()], align="ll"))


def canopy(args: list[str], env: dict[str, str]) -> str:
    """Run a ``canopy`` command; return its output."""
    script = Path(sys.executable).with_name("canopy")
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from host.cli import main; main()"]
    done = subprocess.run(command + args, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"canopy {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


class Server:
    """One gunicorn process group on a loopback port (``port`` 0: a free one, chosen at start)."""

    def __init__(self, name: str, app: str, env: dict[str, str], log: Path, workers: int, port: int = 0) -> None:
        self.name = name
        self.app = app
        self.env = env
        self.log_path = log
        self.workers = workers
        self.port = port
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "-c", str(CONF), "--bind", f"{HOST}:{self.port}", self.app]

    def start(self) -> None:
        self.port = self.port or free_port()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the arbiter and every process descended from it
        (its workers, and what they start: the sandbox's jailed workers run in sessions of their
        own); Linux ``/proc``, 0.0 where there is none. Processes that exited are not counted."""
        if self.proc is None:
            return 0.0
        tick = os.sysconf("SC_CLK_TCK")
        parents, ticks = {}, {}
        for entry in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = entry.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended meanwhile
            pid = int(entry.parent.name)
            parents[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])  # ppid; utime + stime

        def descends(pid: int) -> bool:
            seen = set()
            while pid not in (0, 1) and pid not in seen:
                if pid == self.proc.pid:
                    return True
                seen.add(pid)
                pid = parents.get(pid, 0)
            return False

        return sum(used for pid, used in ticks.items() if descends(pid)) / tick

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


@dataclass(frozen=True)
class Call:
    """One prepared HTTP request."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


def gets(path: str, count: int) -> list[Call]:
    """``count`` plain GETs of ``path``."""
    return [Call("GET", path)] * count


def send(port: int, call: Call, timeout: float = 10) -> tuple[int, bytes, http.client.HTTPMessage | None]:
    """One request on a fresh connection: (status, body, headers); (0, b'', None) when the server does not answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(call.method, call.path, body=call.body, headers=dict(call.headers))
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    except OSError:
        return 0, b"", None
    finally:
        conn.close()


def get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a fresh connection; (0, b'') when the server does not answer."""
    status, body, _ = send(port, Call("GET", path))
    return status, body


@dataclass
class Phase:
    """What one burst of requests to one endpoint came to."""

    requests: int = 0
    errors: int = 0  # not 200, or the connection failed
    degraded: int = 0  # 200, but the page shows a zone as unavailable
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    timed_out: bool = False
    first_error: str = ""
    wrong: int = 0  # 200 answers that ``check`` refused
    first_wrong: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.wall if self.wall else 0.0


def drive(server: Server, calls: Sequence[Call], concurrency: int = CONCURRENCY,
          check: Callable[[int, bytes], str] | None = None) -> Phase:
    """Send every one of ``calls`` to ``server`` from ``concurrency`` threads with persistent
    connections (thread ``i`` sends calls ``i``, ``i + concurrency``, …); stops after
    :data:`PHASE_TIME_LIMIT`. Also counts the CPU time the server's processes spent meanwhile.
    ``check(status, body)`` judges each 200 answer ('' = good; anything else is counted as wrong)."""
    port = server.port
    phase = Phase()
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(share: Sequence[Call]) -> None:
        latencies: list[float] = []
        errors = degraded = wrong = 0
        first_error = first_wrong = ""
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
        for call in share:
            if perf() > deadline[0]:
                with lock:
                    phase.timed_out = True
                break
            t0 = perf()
            try:
                conn.request(call.method, call.path, body=call.body, headers=call.headers)
                response = conn.getresponse()
                body = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                status, body = 0, repr(exc).encode()
            latencies.append(perf() - t0)
            if status != 200:
                errors += 1
                first_error = first_error or f"{status} {body[:200].decode(errors='replace')}"
                continue
            if DEGRADED_MARKER in body:
                degraded += 1
            problem = check(status, body) if check else ""
            if problem:
                wrong += 1
                first_wrong = first_wrong or problem
        conn.close()
        with lock:
            phase.latencies.extend(latencies)
            phase.errors += errors
            phase.degraded += degraded
            phase.wrong += wrong
            phase.first_error = phase.first_error or first_error
            phase.first_wrong = phase.first_wrong or first_wrong

    threads = [threading.Thread(target=worker, args=(calls[i::concurrency],), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    cpu0 = time.process_time()
    server_cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    deadline[0] = t0 + PHASE_TIME_LIMIT
    try:
        start.wait(timeout=30)
    except threading.BrokenBarrierError:
        raise RuntimeError(f"the client threads for {calls[0].path if calls else '?'} did not start") from None
    for thread in threads:
        thread.join(PHASE_TIME_LIMIT + 60)
    phase.wall = time.perf_counter() - t0
    phase.client_cpu = time.process_time() - cpu0
    phase.server_cpu = server.cpu_seconds() - server_cpu0
    phase.requests = len(phase.latencies)
    return phase


def warm_up(port: int, calls: Sequence[Call], concurrency: int = CONCURRENCY) -> None:
    """Send ``calls`` on fresh connections, so every worker gets some (a persistent connection stays on one)."""
    def worker(share: Sequence[Call]) -> None:
        for call in share:
            send(port, call)

    threads = [threading.Thread(target=worker, args=(calls[i::concurrency],), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PHASE_TIME_LIMIT)


@dataclass(frozen=True)
class Summary:
    """The figures of one server and endpoint over all its rounds."""

    rps: float  # median of the rounds' req/s
    latency: common.Stats
    cpu_per_request: float  # the server's CPU seconds per request, over all rounds
    row: list[str]  # the row of :func:`results_table`


def summarise(label: str, phases: Sequence[Phase]) -> Summary:
    """One table row (and the figures behind it) for ``label`` over ``phases``."""
    latency = common.Stats.of([x for p in phases for x in p.latencies])
    rps = common.Stats.of([p.rps for p in phases]).median
    cpu = sum(p.client_cpu for p in phases) / sum(p.wall for p in phases)
    requests = sum(p.requests for p in phases)
    server_cpu = sum(p.server_cpu for p in phases) / requests if requests else 0.0
    row = [
        label, f"{requests:,}", str(sum(p.errors for p in phases)),
        str(sum(p.degraded for p in phases)), " / ".join(f"{p.rps:,.0f}" for p in phases), f"{rps:,.0f}",
        common.ms(latency.median), common.ms(latency.p95), common.ms(server_cpu), f"{cpu:.0%}",
    ]
    if any(p.timed_out for p in phases):
        common.note(f"warning: {label} hit the {PHASE_TIME_LIMIT:.0f} s phase limit")
    errors = [p.first_error for p in phases if p.first_error]
    if errors:
        common.note(f"warning: {label} had errors; the first: {errors[0]}")
    return Summary(rps, latency, server_cpu, row)


def results_table(rows: Sequence[Sequence[str]]) -> str:
    """The per-server table of :func:`summarise` rows."""
    return common.table(
        ["server and path", "requests", "errors", "degraded", "req/s per round", "req/s (median)",
         "p50 ms", "p95 ms", "server CPU ms/req", "client CPU"], rows, align="lrrrrrrrrr",
    )


def comparison(label: str, value: Summary, baseline: Summary) -> list[str]:
    """A row of the comparison table: throughput and latency of ``value`` against ``baseline``."""
    return [label, common.ratio(value.rps, baseline.rps), common.ratio(value.latency.median, baseline.latency.median),
            common.ratio(value.latency.p95, baseline.latency.p95),
            common.ratio(baseline.cpu_per_request, value.cpu_per_request) if value.cpu_per_request else "-"]


def comparison_table(rows: Sequence[Sequence[str]]) -> str:
    return common.table(["comparison", "throughput", "p50 latency", "p95 latency", "CPU efficiency"], rows)


LEGEND = (
    "req/s = requests ÷ wall time of one round; latency = one request's round trip as the client saw it, "
    "over all rounds; server CPU ms/req = the CPU time of the server's processes (arbiter and workers, user + "
    "system) during the rounds ÷ requests; client CPU = the load generator's CPU time ÷ wall time (100% = one "
    "core; it shares the machine's cores with the servers); CPU efficiency = the baseline's server CPU per "
    "request ÷ this one's (1.00× = as cheap per request as the baseline)."
)
