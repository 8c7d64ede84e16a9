"""Payments: confirmations per second on PostgreSQL, at the service layer and through HTTP, each
next to pgbench's TPC-B-like script on the same server with the same number of clients, in the
same run; the ledger's invariants are checked afterwards.

* **pgbench** (the baseline): ``pgbench -b tpcb-like -c C -j C -T <s> -n`` on a database of its
  own, made with ``pgbench -i -s C`` (a branch per client, as TPC-B intends).
* **service layer**: C worker processes (processes, so the GIL does not put them all on one
  core), each with its own app (``host.create_app``) and customers, confirming intents made
  before the clock starts, each paying for its customers in turn: per intent one write transaction that locks the intent
  (``intents.find(..., lock=True)``), calls ``confirmation.confirm`` and commits — what
  ``POST /pay/<id>`` does after the PIN.
* **HTTP**: a gunicorn server with the repo's settings on the same database; C client threads,
  each paying for a few customers signed in at ``/signin``, post the PIN to ``/pay/<id>`` for intents made before
  the clock starts. Each must answer 200 and leave its intent succeeded (read back afterwards).

The rounds interleave the three, so a slow spell of the machine falls on all of them alike.
Canopy's database is fresh (``canopy db upgrade``, ``canopy demo``) with the benchmark's customers
(:data:`CUSTOMERS_PER_CLIENT` per client); it and pgbench's database are dropped at the end, even on Ctrl-C.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import common
from .pgbench import Pgbench
from .postgres import POSTGRES, drop_database, fresh_database, server_version
from .partner import FORM, Browser
from .serving import (
    CONCURRENCY, PHASE_TIME_LIMIT, REPO, Call, Server, canopy, drive, gunicorn_settings, print_settings, server_env,
    warm_up,
)

CLIENTS = CONCURRENCY  # pgbench connections = service worker processes = HTTP client threads
PGBENCH_SCALE = CLIENTS  # pgbench's branches: one per client
ROUNDS = 3
PHASE_SECONDS = 8  # each measurement in each round
WARMUP_SECONDS = 2  # the service layer's warm-up, which also gives its first rate estimate
HTTP_WARMUP = 6  # payments per HTTP client on fresh connections before the rounds
HEADROOM = 1.5  # a service worker gets this many times the intents it is expected to confirm
EVENT_POLL = 0.2  # seconds between the event worker's passes when it found nothing to do
GOALS = {"service": 0.30, "http": 0.15}  # of pgbench's transactions per second

PLUGIN = "sh.deals"  # the demo's in-process shop that takes payments (merchant account: branch:SH001)
PIN = "147258"
PASSWORD = "canopy-bench-payments"
BRANCHES = ("SH001", "BJ001", "GZ001", "SH001-PD")
FUNDS = 20_000_000  # minor units each customer holds: 200,000.00 CNY, the default daily limit
#: Customers each client pays for, in turn: a payment's risk checks read the customer's own
#: history (today's payments, recent attempts), so a handful of customers paying thousands of
#: times each would measure a workload no bank has — and the velocity rule would stop it.
CUSTOMERS_PER_CLIENT = 40
#: Of those, the customers each HTTP client signs in as (at /signin) and pays for, in turn.
HTTP_CUSTOMERS = 4
#: Velocity still runs (it counts the customer's attempts in the window) but allows the few dozen
#: a benchmark customer makes within minutes; every other rule keeps its defaults.
VELOCITY = {"window_minutes": 10, "challenge_above": 1_000, "deny_above": 1_000}


@dataclass(frozen=True)
class Client:
    """One client of the measurements: its customers (their ids once made), all of one home branch."""

    phones: tuple[str, ...]
    branch: str
    customer_ids: tuple[str, ...] = ()


def amount(n: int) -> int:
    """The amount of a client's ``n``-th intent: 1.00 to 9.99 CNY, in fen."""
    return 100 + (n * 37) % 900


def interleave(per_client: list[list[Call]]) -> list[Call]:
    """One list in which :func:`~benchmarks.serving.drive`'s thread ``i`` (it sends calls ``i``,
    ``i + C``, …) gets exactly client ``i``'s calls, in order. Every client needs as many."""
    if len({len(calls) for calls in per_client}) > 1:
        raise ValueError("every client needs the same number of calls")
    return [calls[k] for k in range(len(per_client[0]) if per_client else 0) for calls in per_client]


# -- processes with an app of their own (forked; each builds its app from the instance's settings) --


def _app(env: dict[str, str]):
    """A Canopy app configured by ``env`` alone (only in a child process: it changes ``os.environ``)."""
    for name in [name for name in os.environ if name.startswith("CANOPY_")]:
        del os.environ[name]
    os.environ.update(env)
    from host import create_app

    return create_app()


def _setup(env: dict[str, str], clients: list[Client]) -> list[Client]:
    """The benchmark's customers, made as the demo makes its customers (one password hash shared,
    to keep the setup short; a PIN each) and topped up to :data:`FUNDS` through the app's rail;
    velocity raised bank-wide by head office."""
    app = _app(env)
    from sqlalchemy import select

    from host.db import get_database
    from host.identity import services
    from host.identity.models import Customer, Staff, new_id
    from host.payments import rails
    from host.payments.risk.settings import update_setting

    made = []
    with app.app_context(), get_database(app).transaction(write=True) as session:
        password_hash, pins = services.hasher().hash(PASSWORD), services.pin_hasher()
        for n, client in enumerate(clients):
            ids = tuple(new_id() for _ in client.phones)
            for k, (customer_id, phone) in enumerate(zip(ids, client.phones)):
                session.add(Customer(id=customer_id, phone=phone, password_hash=password_hash,
                                     pin_hash=pins.hash(customer_id, PIN), nickname=f"Bench {n}.{k}", locale="en",
                                     branch_code=client.branch))
            session.flush()
            for customer_id in ids:
                rails.top_up(session, customer_id, FUNDS, "CNY")
            made.append(replace(client, customer_ids=ids))
        staff = session.scalar(select(Staff).where(Staff.username == "hq.admin"))
        update_setting(session, staff, "*", "velocity", True, VELOCITY)
    return made


@dataclass
class Run:
    """What one service worker did in one timed run."""

    outcomes: Counter = field(default_factory=Counter)
    paid: int = 0
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0  # time.monotonic(): one clock for every process
    ended: float = 0.0
    cpu: float = 0.0
    ran_out: bool = False
    first_error: str = ""


def _worker(pipe, barrier, env: dict[str, str], client: Client) -> None:
    """A service-layer client with its own app, customers and device, doing what the parent asks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers and drops the databases
    try:
        app = _app(env)
        from host.db import get_database
        from host.payments import confirmation, intents

        database = get_database(app)
        accepted = app.extensions["canopy.payments.currencies"]
        device = hashlib.sha256(secrets.token_hex(16).encode()).hexdigest()  # as the page digests its cookie
        queue: deque[tuple[str, str]] = deque()  # (intent id, its customer's id)
        made = 0

        def make(count: int, customers: tuple[str, ...]) -> list[tuple[str, str]]:
            """``count`` intents for ``customers`` in turn."""
            nonlocal made
            ids = []
            for start in range(0, count, 250):  # a transaction per 250
                with database.transaction(write=True) as session:
                    for _ in range(min(250, count - start)):
                        request = intents.IntentRequest.check(amount(made), "CNY", f"Deal voucher #{made}",
                                                              {"order": made}, accepted)
                        customer_id = customers[made % len(customers)]
                        ids.append((intents.create(session, plugin_id=PLUGIN, request=request, customer_id=customer_id,
                                                   branch_code=client.branch).id, customer_id))
                        made += 1
            return ids

        def confirm(item: tuple[str, str], acknowledged: bool = False):
            intent_id, customer_id = item
            with database.transaction(write=True) as session:
                intent = intents.find(session, None, intent_id, lock=True)
                return confirmation.confirm(session, intent, customer_id=customer_id,
                                            home_branch=client.branch, device=device, acknowledged=acknowledged)

        with app.app_context():
            pipe.send(("ready", None))
            while (command := pipe.recv())[0] != "stop":
                name, *args = command
                if name == "make":  # top the queue up to args[0]; args[1] more for this client's HTTP customers
                    queue.extend(make(max(0, args[0] - len(queue)), client.customer_ids))
                    answer = make(args[1], client.customer_ids[:HTTP_CUSTOMERS])
                elif name == "device":  # each customer's first payment from this device: challenged, then acknowledged
                    answer = Counter()
                    for customer_id in client.customer_ids:
                        item = make(1, (customer_id,))[0]
                        first, again = confirm(item), confirm(item, acknowledged=True)
                        answer[f"{first.outcome} ({first.rule}), then {again.outcome}"] += 1
                else:  # "run"
                    answer = _timed_run(barrier, args[0], queue, confirm, confirmation.PAID)
                pipe.send((name, answer))
    except Exception:  # noqa: BLE001 - the parent reports it and stops
        pipe.send(("error", traceback.format_exc()))


def _timed_run(barrier, seconds: float, queue: deque[tuple[str, str]], confirm, paid: str) -> Run:
    """Confirm intents from ``queue`` for ``seconds``, starting with every other worker."""
    run, perf = Run(), time.perf_counter
    barrier.wait(timeout=120)
    cpu0, run.started = time.process_time(), time.monotonic()
    while time.monotonic() < run.started + seconds:
        if not queue:
            run.ran_out = True
            break
        t0 = perf()
        try:
            outcome = confirm(queue.popleft()).outcome
        except Exception as exc:  # noqa: BLE001 - counted and shown; the run goes on
            outcome, run.first_error = "error", run.first_error or repr(exc)[:300]
        run.latencies.append(perf() - t0)
        run.outcomes[outcome] += 1
    run.ended, run.cpu, run.paid = time.monotonic(), time.process_time() - cpu0, run.outcomes[paid]
    return run


class Workers:
    """The service layer's worker processes, one per client."""

    def __init__(self, env: dict[str, str], clients: list[Client]) -> None:
        context = multiprocessing.get_context("fork")  # the parent has imported the host already
        self.barrier = context.Barrier(len(clients) + 1)
        self.pipes, self.processes = [], []
        for client in clients:
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(theirs, self.barrier, env, client), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)
        self._gather("ready")

    def _gather(self, name: str) -> list:
        answers = []
        for n, pipe in enumerate(self.pipes):
            if not pipe.poll(PHASE_TIME_LIMIT + 240):
                raise RuntimeError(f"service worker {n} did not answer {name!r}")
            kind, value = pipe.recv()
            if kind != name:
                raise RuntimeError(f"service worker {n} failed:\n{value}")
            answers.append(value)
        return answers

    def ask(self, *command) -> list:
        for pipe in self.pipes:
            pipe.send(command)
        if command[0] == "run":
            self.barrier.wait(timeout=120)
        return self._gather(command[0])

    def stop(self) -> None:
        for pipe, process in zip(self.pipes, self.processes):
            if process.is_alive():
                try:
                    pipe.send(("stop",))
                except OSError:
                    pass
        for process in self.processes:
            for end in (lambda: None, process.terminate, process.kill):
                end()
                process.join(10)
                if not process.is_alive():
                    break


# -- the event worker --------------------------------------------------------------------------


class EventWorker:
    """``canopy worker``, delivering the events confirmations write (``CANOPY_EVENTS_DELIVERY=worker``),
    as in production; its CPU time is counted with the measurement it works for."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        script = Path(sys.executable).with_name("canopy")
        command = [str(script)] if script.exists() else [sys.executable, "-c", "from host.cli import main; main()"]
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(command + ["worker", "--interval", str(EVENT_POLL)], env=env, cwd=REPO,
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the worker has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def drain(self, engine) -> float:
        """Wait until no event is waiting for delivery; return how long that took (seconds)."""
        from sqlalchemy import text

        started = time.monotonic()
        while time.monotonic() < started + PHASE_TIME_LIMIT:
            if self.proc.poll() is not None:
                raise RuntimeError(f"canopy worker exited ({self.proc.returncode})")
            with engine.connect() as connection:
                if not connection.execute(text("SELECT count(*) FROM outbox_events WHERE next_attempt_at IS NOT NULL "
                                               "AND delivered_at IS NULL")).scalar():
                    return time.monotonic() - started
            time.sleep(0.02)
        raise RuntimeError(f"events still undelivered {PHASE_TIME_LIMIT:.0f} s after the phase")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# -- HTTP --------------------------------------------------------------------------------------


@dataclass
class SignedIn:
    """A signed-in customer's browser, and the form of its confirmations."""

    browser: Browser
    csrf: str = ""

    def pay(self, intent_id: str) -> Call:
        cookies = "; ".join(f"{name}={value}" for name, value in self.browser.cookies.items())
        body = urlencode({"pin": PIN, "csrf_token": self.csrf}).encode()
        return Call("POST", f"/pay/{intent_id}", {"Cookie": cookies, **FORM}, body)


def _sign_in(port: int, phone: str, intent_id: str) -> tuple[SignedIn, str]:
    """Sign in, then pay ``intent_id`` from this browser's new device (challenged, then acknowledged)."""
    customer = SignedIn(Browser(port))
    _, page, _ = customer.browser.request("GET", "/signin")
    status, page, _ = customer.browser.request("POST", "/signin", {"phone": phone, "password": PASSWORD,
                                                                     "csrf_token": Browser.csrf(page)})
    if status != 303:
        raise RuntimeError(f"{phone} could not sign in: {status} {page[:300]}")
    status, page, _ = customer.browser.request("GET", f"/pay/{intent_id}")  # sets the device cookie
    if status != 200:
        raise RuntimeError(f"GET /pay answered {status}: {page[:300]}")
    customer.csrf = Browser.csrf(page)
    form = {"pin": PIN, "csrf_token": customer.csrf}
    first = customer.browser.request("POST", f"/pay/{intent_id}", form)
    again = customer.browser.request("POST", f"/pay/{intent_id}", {**form, "acknowledge": "yes"})
    if first[0] == 200 and 'name="acknowledge"' in first[1] and again[0] == 200 and 'data-state="succeeded"' in again[1]:
        return customer, "challenged, then paid"
    return customer, f"{first[0]}, then {again[0]} (unexpected)"


def _states(engine, ids: list[str]) -> Counter:
    """How many of the intents ``ids`` are in each state."""
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT state, count(*) FROM payment_intents WHERE id = ANY(:ids) GROUP BY state"),
                                  {"ids": list(ids)})
        return Counter({state: int(count) for state, count in rows})


# -- measuring and reporting -------------------------------------------------------------------


@dataclass
class Measurement:
    """pgbench, the service layer or HTTP over the rounds."""

    label: str
    clients: str
    rates: list[float] = field(default_factory=list)
    done: int = 0
    failures: int = 0
    notes: list[str] = field(default_factory=list)
    cpu: float | None = None  # seconds over all rounds; None: not measured
    latencies: list[float] = field(default_factory=list)
    latency_text: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def add(self, done: int, wall: float, failures: int = 0, note: str = "") -> None:
        self.rates.append(done / wall if wall else 0.0)
        self.done += done
        self.failures += failures
        if note:
            self.notes.append(f"round {len(self.rates)}: {note}")


def _service_round(workers: Workers, events: EventWorker, engine, m: Measurement) -> None:
    cpu0 = events.cpu_seconds()
    runs = workers.ask("run", PHASE_SECONDS)
    drained = events.drain(engine)
    outcomes = sum((r.outcomes for r in runs), Counter())
    paid = sum(r.paid for r in runs)
    errors = [r.first_error for r in runs if r.first_error]
    note = "; ".join(filter(None, [
        f"outcomes {dict(outcomes)}" if paid != sum(outcomes.values()) else "",
        f"first error: {errors[0]}" if errors else "",
        f"a worker ran out of intents before the {PHASE_SECONDS} s were up" if any(r.ran_out for r in runs) else ""]))
    m.add(paid, max(r.ended for r in runs) - min(r.started for r in runs) + drained, sum(outcomes.values()) - paid, note)
    m.cpu = (m.cpu or 0.0) + sum(r.cpu for r in runs) + events.cpu_seconds() - cpu0
    m.latencies += [x for r in runs for x in r.latencies]


def _http_round(server: Server, events: EventWorker, engine, customers: dict[str, SignedIn],
                ids: list[list[tuple[str, str]]], m: Measurement) -> None:
    cpu0 = events.cpu_seconds()
    phase = drive(server, interleave([[customers[customer_id].pay(intent_id) for intent_id, customer_id in mine]
                                      for mine in ids]))
    drained = events.drain(engine)
    sent = [intent_id for mine in ids for intent_id, _ in mine]
    states = _states(engine, sent)
    paid = states.get("succeeded", 0)
    note = "; ".join(filter(None, [
        f"{phase.errors} answers not 200, {len(sent) - paid} intents not succeeded {dict(states)}"
        if phase.errors or paid != len(sent) else "",
        f"first error: {phase.first_error}" if phase.first_error else "",
        f"the phase hit its {PHASE_TIME_LIMIT:.0f} s limit" if phase.timed_out else ""]))
    m.add(paid, phase.wall + drained, phase.errors + len(sent) - paid, note)
    m.cpu = (m.cpu or 0.0) + phase.server_cpu + events.cpu_seconds() - cpu0
    m.latencies += phase.latencies


def share(value: float, baseline: float) -> str:
    """``value / baseline`` as ``0.035×`` (three decimals: the shares here are small)."""
    return f"{value / baseline:.3f}×" if baseline > 0 else "n/a"


def _table(baseline: Measurement, others: list[Measurement]) -> str:
    rows = []
    for m in [baseline, *others]:
        stats = common.Stats.of(m.latencies) if m.latencies else None
        rows.append([
            m.label, m.clients, f"{m.done:,}", str(m.failures), " / ".join(f"{r:,.0f}" for r in m.rates),
            f"{m.median:,.0f}", share(m.median, baseline.median),
            "" if m is baseline else " / ".join(share(a, b) for a, b in zip(m.rates, baseline.rates)),
            f"{common.ms(stats.median)} / {common.ms(stats.p95)}" if stats else m.latency_text,
            common.ms(m.cpu / m.done) if m.cpu is not None and m.done else "-",
        ])
    return common.table(["measurement", "clients", "committed", "failures", "per second, each round",
                         "per second (median)", "vs pgbench", "vs pgbench, each round", "latency ms p50 / p95",
                         "CPU ms each"], rows, align="llrrrrrrrr")


LEGEND = (
    "committed = pgbench's transactions, or payments that succeeded (service layer: confirm answered paid; HTTP: "
    "the intents sent, read back as succeeded from the database; each answer must also be a 200, and any that is "
    "not, or any intent not succeeded, is a failure); per second = committed ÷ the phase's wall time "
    "(pgbench: its tps without connection time); vs pgbench = median ÷ pgbench's median, and each round's ÷ that "
    "round's pgbench; latency = one confirmation as its client saw it (pgbench: its average, each round); CPU ms "
    "each = the service workers' own CPU time, or the gunicorn server's (arbiter and workers), with the event "
    "worker's in both, per payment; PostgreSQL's CPU is in neither. A phase's wall time runs until every event its "
    "payments wrote was delivered."
)


@dataclass
class Stage:
    """What the rounds run on; :meth:`close` stops and drops all of it, after a failure too."""

    work: Path
    databases: list[str]  # Canopy's, then pgbench's
    env: dict[str, str] = field(default_factory=dict)  # the CANOPY_* settings of Canopy's instance
    created: list[str] = field(default_factory=list)
    pgbench: Pgbench | None = None
    workers: Workers | None = None
    server: Server | None = None
    engine: Any = None
    customers: dict[str, SignedIn] = field(default_factory=dict)  # by customer id
    counted: int = 0  # payments that succeeded, by the benchmark's own count
    events: EventWorker | None = None
    service_rate: float = 0.0  # the latest, for the size of the next round
    http_rate: float = 0.0

    def close(self) -> None:
        for running in (self.server, self.workers, self.events):
            if running is not None:
                running.stop()
        if self.engine is not None:
            self.engine.dispose()
        for database in reversed(self.created):  # pgbench's first: PostgreSQL 15 checkpoints at each drop
            drop_database(database)
        shutil.rmtree(self.work, ignore_errors=True)


def _build(stage: Stage, executable: str) -> tuple[list[str], dict, list[Client]]:
    """Both databases, Canopy's instance and customers, the service workers and the server; return
    what the ``canopy`` commands said, the gunicorn settings and the clients."""
    from host.db import engine_for

    urls = []
    for database in stage.databases:
        urls.append(fresh_database(database))
        stage.created.append(database)
    url = urls[0]
    stage.env = {"CANOPY_INSTANCE_PATH": str(stage.work / "instance"), "CANOPY_DATABASE_URL": url,
                 "CANOPY_PLUGIN_PATHS": str(REPO / "plugins")}
    stage.env["CANOPY_EVENTS_DELIVERY"] = "worker"  # and EventWorker delivers them, as in production
    prepared = [canopy(args, server_env(stage.env)) for args in (["init-instance"], ["db", "upgrade"], ["demo"])]
    clients = [Client(tuple(f"137{n:02d}{k:06d}" for k in range(CUSTOMERS_PER_CLIENT)), BRANCHES[n % len(BRANCHES)])
               for n in range(CLIENTS)]
    with multiprocessing.get_context("fork").Pool(1) as pool:  # the host's models in a process of their own
        clients = pool.apply(_setup, (stage.env, clients))
    stage.pgbench = Pgbench(executable, stage.databases[1])
    stage.pgbench("--initialize", f"--scale={PGBENCH_SCALE}", "--quiet")
    stage.workers = Workers(stage.env, clients)
    settings = gunicorn_settings(server_env())
    stage.server = Server("Canopy", "host:create_app()", server_env(stage.env), stage.work / "canopy.log",
                          int(settings["workers"]))
    stage.server.start()
    stage.server.wait_ready()
    stage.engine = engine_for(url)
    stage.events = EventWorker(server_env(stage.env), stage.work / "worker.log")
    return prepared, settings, clients


def _warm_up(stage: Stage, clients: list[Client]) -> tuple[Counter, Counter]:
    """Not timed: each client's first payment from its device (the new-device rule challenges it and
    the customer acknowledges), then the warm-ups, which also give the first rate estimates.
    Return how those first payments went, in the service layer and over HTTP."""
    workers, port = stage.workers, stage.server.port
    devices = sum(workers.ask("device"), Counter())
    http_items = workers.ask("make", 60 * WARMUP_SECONDS, HTTP_CUSTOMERS + HTTP_WARMUP)
    warm = workers.ask("run", WARMUP_SECONDS)
    stage.service_rate = sum(r.paid for r in warm) / (max(r.ended for r in warm) - min(r.started for r in warm))
    stage.counted = CLIENTS * CUSTOMERS_PER_CLIENT + sum(r.paid for r in warm)
    stage.events.drain(stage.engine)
    phones = {customer_id: phone for client in clients for phone, customer_id in zip(client.phones, client.customer_ids)}
    signed_in = Counter()
    for items in http_items:  # the first HTTP_CUSTOMERS items: one for each of the client's HTTP customers
        for intent_id, customer_id in items[:HTTP_CUSTOMERS]:
            stage.customers[customer_id], outcome = _sign_in(port, phones[customer_id], intent_id)
            signed_in[outcome] += 1
    t0 = time.perf_counter()
    warm_up(port, interleave([[stage.customers[customer_id].pay(intent_id) for intent_id, customer_id in items[HTTP_CUSTOMERS:]]
                              for items in http_items]))
    stage.http_rate = CLIENTS * HTTP_WARMUP / (time.perf_counter() - t0)
    states = _states(stage.engine, [intent_id for items in http_items for intent_id, _ in items])
    if set(states) != {"succeeded"}:
        raise RuntimeError(f"the HTTP warm-up left intents unpaid: {dict(states)}\n{stage.server.log_tail()}")
    stage.counted += states["succeeded"]
    return devices, signed_in


def _describe(stage: Stage, postgres: str, prepared: list[str], devices: Counter, http_devices: Counter) -> None:
    from sqlalchemy.engine import make_url

    common.note(f"\ndatabases: {postgres} at {make_url(POSTGRES).host or 'a local socket'}; Canopy's fresh "
                f"({'; '.join(prepared)}); pgbench's fresh (`pgbench -i -s {PGBENCH_SCALE}`: {PGBENCH_SCALE} branches, "
                f"{PGBENCH_SCALE * 100_000:,} accounts; {stage.pgbench.version()}); both dropped afterwards")
    common.note(f"clients: {CLIENTS} in each measurement. pgbench: `pgbench -b tpcb-like -c {CLIENTS} -j {CLIENTS} "
                f"-T {PHASE_SECONDS} -n`. Service layer: {CLIENTS} worker processes (processes, not threads: the GIL "
                f"would put threads on one core), each with its own app and connection, paying for its {CUSTOMERS_PER_CLIENT} "
                f"customers in turn. HTTP: {CLIENTS} client threads with one persistent connection each, each paying "
                f"in turn for {HTTP_CUSTOMERS} of those customers, each signed in at /signin, against "
                f"the gunicorn server above (`host:create_app()`). Events: `CANOPY_EVENTS_DELIVERY=worker` and one `canopy "
                f"worker --interval {EVENT_POLL}` delivering them, as in production; each phase ends when every event "
                f"its payments wrote is delivered, and the worker's CPU counts with the phase")
    common.note(f"customers: {CUSTOMERS_PER_CLIENT} per client ({CLIENTS * CUSTOMERS_PER_CLIENT:,}), made as the demo "
                f"makes its customers and topped up to {FUNDS // 100:,} CNY each through the rail, home branches {', '.join(BRANCHES)}; every intent is {PLUGIN}'s, 1.00-9.99 CNY, so every "
                f"payment credits one merchant account (branch:SH001)")
    common.note(f"risk centre: the five default rules on; velocity raised bank-wide to {VELOCITY}, so it still counts "
                f"every attempt but allows. Each customer's first payment from a device (not timed) — service layer: "
                f"{dict(devices)}; HTTP: {dict(http_devices)}")
    common.note(f"warm-up (not timed): {WARMUP_SECONDS} s of service-layer confirmations (~{stage.service_rate:,.0f}/s); "
                f"{HTTP_WARMUP} HTTP confirmations per client on fresh connections (~{stage.http_rate:,.0f}/s)")
    common.note(f"rounds: {ROUNDS} × (pgbench, service layer, HTTP), {PHASE_SECONDS} s each, the order reversed every "
                f"other round; each round's intents are made before it starts; load average {common.load_average()}\n")


def _rounds(stage: Stage) -> list[Measurement]:
    """pgbench, the service layer and HTTP, :data:`ROUNDS` times."""
    baseline = Measurement("pgbench tpcb-like", f"{CLIENTS} connections")
    service = Measurement("service layer: confirmation.confirm", f"{CLIENTS} processes")
    http = Measurement("HTTP: POST /pay/<id> with the PIN", f"{CLIENTS} threads")
    latency = []
    for round_ in range(ROUNDS):
        per_worker = min(5_000, math.ceil(stage.service_rate / CLIENTS * PHASE_SECONDS * HEADROOM) + 20)
        per_client = max(3, min(2_000, round(stage.http_rate / CLIENTS * PHASE_SECONDS)))
        http_ids = stage.workers.ask("make", per_worker, per_client)
        for what in ("pgbench", "service", "http")[::1 if round_ % 2 == 0 else -1]:
            if what == "pgbench":
                result = stage.pgbench.measure(PHASE_SECONDS, CLIENTS)
                baseline.add(result.transactions, result.transactions / result.tps, result.failed)
                latency.append(f"{result.latency_ms:.2f}")
                baseline.latency_text = "avg " + " / ".join(latency)
            elif what == "service":
                _service_round(stage.workers, stage.events, stage.engine, service)
            else:
                _http_round(stage.server, stage.events, stage.engine, stage.customers, http_ids, http)
        stage.service_rate, stage.http_rate = service.rates[-1], http.rates[-1]
    stage.counted += service.done + http.done
    return [baseline, service, http]


def run() -> dict:
    common.heading(f"payments: confirmations per second on PostgreSQL vs pgbench (TPC-B-like), {CLIENTS} clients each")
    executable = shutil.which("pgbench")
    postgres, problem = server_version()
    if not postgres or not executable:
        common.note("not measured: " + (f"PostgreSQL is not usable at {POSTGRES} ({problem})" if not postgres
                                        else "pgbench is not on the PATH"))
        return {}
    started = time.perf_counter()
    stage = Stage(Path(tempfile.mkdtemp(prefix="canopy-bench-payments-")),
                  [f"canopy_bench_payments_{os.getpid()}", f"canopy_bench_pgbench_{os.getpid()}"])
    try:
        prepared, settings, clients = _build(stage, executable)
        devices = _warm_up(stage, clients)
        print_settings(settings)
        _describe(stage, postgres, prepared, *devices)
        baseline, service, http = measurements = _rounds(stage)

        print(_table(baseline, [service, http]))
        common.note("\n" + LEGEND)
        figures: dict[str, object] = {"pgbench": baseline.median, "service": service.median, "http": http.median}
        for key, m in (("service", service), ("http", http)):
            met = baseline.median > 0 and m.median / baseline.median >= GOALS[key]
            common.note(f"goal: {m.label} ≥ {GOALS[key]:.2f}× pgbench: {'met' if met else 'NOT met'} "
                        f"({share(m.median, baseline.median)})")
        for m in measurements:
            for line in m.notes:
                common.note(f"warning: {m.label}, {line}")
        figures["failures"] = failures = sum(m.failures for m in measurements)
        if failures:
            common.note(f"\n!!! {failures} FAILURES: payments or transactions that did not go through (see the warnings "
                        f"above); this is not a clean run !!!")
        common.note("\nafter the run: `canopy payments check` on Canopy's database")
        figures["invariants"] = _check(stage.env, stage.engine, stage.counted)
        common.note(f"(payments: {time.perf_counter() - started:.0f} s before the clean-up, setup included; "
                    f"load average {common.load_average()})")
        return figures
    finally:
        stage.close()


def _check(env: dict[str, str], engine, counted: int) -> bool:
    """Print the ledger's invariants, and whether the succeeded intents are exactly the payments counted."""
    from sqlalchemy import text

    try:
        result = json.loads(canopy(["payments", "check"], server_env(env)))
    except RuntimeError as exc:  # it exits 1 when an invariant fails
        common.note(f"!!! LEDGER INVARIANTS FAILED !!!\n{exc}")
        return False
    for name, outcome in result["invariants"].items():
        common.note(f"  {name}: " + ("ok" if outcome["ok"] else f"FAILED ({len(outcome['violations'])} shown)"))
    with engine.connect() as connection:
        succeeded = connection.execute(text("SELECT count(*) FROM payment_intents WHERE state = 'succeeded'")).scalar()
    same = succeeded == counted
    common.note(f"invariants: {'all ok' if result['ok'] else 'FAILED'}; succeeded intents in the database: {succeeded:,}; "
                f"payments counted here (warm-ups included): {counted:,}: {'equal' if same else '!!! NOT EQUAL !!!'}")
    return bool(result["ok"]) and same


if __name__ == "__main__":
    run()
