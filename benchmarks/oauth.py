"""OAuth: a DPoP-protected ``GET /api/v1/me`` and the token endpoint, under gunicorn, next to a
bare Flask app under the same gunicorn settings.

Servers, all ``python -m gunicorn -c host/gunicorn_conf.py --bind 127.0.0.1:<port> <app>``:

* the bare Flask app of :mod:`benchmarks.bare_app`: ``GET /profile`` (a small JSON profile
  shaped like ``/api/v1/me``'s) and ``POST /token`` (reads a form, answers a token-shaped
  JSON), neither checking anything;
* Canopy (``host:create_app()``) in each setup of :data:`SETUPS`: PostgreSQL (a fresh
  database, created here and dropped at the end) or SQLite, each with the replay cache in
  Redis (``CANOPY_REDIS_URL``) or in the database.

The partner is a real client with a joserfc ES256 key: a generated mini-program requesting
profile scopes, approved with ``canopy plugins approve`` and registered with ``canopy oauth
register-client``. Its customer token comes from the real flow over HTTP (PAR with
``private_key_jwt`` → customer sign-in → consent → code → token with DPoP), refreshed before
every round.

Every measured request carries its own DPoP proof (unique ``jti``, ``htm``, ``htu``, ``iat``
and, for ``/api/v1/me``, ``ath``); token requests also carry a fresh client assertion. They are
all made just before each timed phase and are not part of the timing. The bare app gets
requests of the same shape and size (it ignores the headers and fields).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import common, plugin_factory
from .postgres import POSTGRES, drop_database, fresh_database, server_version
from .partner import CUSTOMER_SCOPE, REDIRECT_URI, Partner, customer_tokens, token_response
from .serving import (
    CONCURRENCY, LEGEND, PHASE_TIME_LIMIT, REPO, Call, Phase, Server, canopy, comparison, comparison_table, drive,
    free_port, gunicorn_settings, print_settings, results_table, send, server_env, summarise, warm_up,
)

REDIS = os.environ.get("CANOPY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

ME_REQUESTS = 1500  # measured GET /api/v1/me per server and round
TOKEN_REQUESTS = 600  # measured token requests per server and round
ME_WARMUP = 200
TOKEN_WARMUP = 50
ROUNDS = 5

SCOPES = ["profile.basic:read", "profile.phone:read", "payments:read"]
CLIENT_SCOPE = "payments:read"  # needs no customer's consent: allowed for client credentials


@dataclass(frozen=True)
class Setup:
    """One Canopy server: which database, and whether the replay cache is in Redis."""

    name: str
    database: str  # "postgresql" or "sqlite"
    redis: bool


SETUPS = [
    Setup("Canopy PostgreSQL + Redis", "postgresql", True),
    Setup("Canopy PostgreSQL, replay in DB", "postgresql", False),
    Setup("Canopy SQLite + Redis", "sqlite", True),
    Setup("Canopy SQLite, replay in DB", "sqlite", False),
]


# -- servers and databases ----------------------------------------------------------------------


@dataclass
class Target:
    """A server under test and what the partner needs to call it."""

    setup: Setup | None  # None: the bare app
    server: Server
    issuer: str
    me_path: str
    token_path: str
    database_url: str | None = None
    refresh_token: str = ""
    access_token: str = "bare-app-ignores-this-token-but-gets-one-of-the-same-size-000"
    replay_rows: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.server.name


def _redis_server() -> tuple[str | None, str]:
    try:
        import redis

        client = redis.Redis.from_url(REDIS, socket_timeout=2, socket_connect_timeout=2)
        version = client.info("server")["redis_version"]
        client.close()
        return f"Redis {version}", ""
    except Exception as exc:  # noqa: BLE001
        return None, f"{exc.__class__.__name__}"


def _replay_rows(url: str) -> int:
    from sqlalchemy import text

    from host.db import engine_for

    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM oauth_replay")).scalar())
    finally:
        engine.dispose()


def _forget_redis_keys() -> None:
    """Delete what the servers left in the benchmark's Redis database (replay entries, sign-in
    counters, the token cache)."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_timeout=2, socket_connect_timeout=2)
    try:
        for pattern in ("canopy:replay:*", "canopy:rl:*", "canopy:token:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start:start + 1000])
    finally:
        client.close()


# -- the run ---------------------------------------------------------------------------------


def _me_calls(target: Target, partner: Partner, count: int) -> list[Call]:
    return [partner.resource_call(target.issuer, target.me_path, target.access_token) for _ in range(count)]


def _token_calls(target: Target, partner: Partner, count: int) -> list[Call]:
    form = {"grant_type": "client_credentials", "scope": CLIENT_SCOPE}
    return [partner.token_call(target.issuer, form, target.token_path) for _ in range(count)]


@dataclass
class Instance:
    """A Canopy instance folder and database, prepared with the ``canopy`` commands."""

    env: dict[str, str]  # CANOPY_* settings of its servers
    database_url: str
    prepared: list[str]  # what each command said


def _prepare(work: Path, kind: str, partner: Partner, postgres_url: str) -> Instance:
    """``canopy init-instance``, ``db upgrade``, ``demo``, ``plugins approve`` and ``oauth register-client``."""
    instance = work / f"instance-{kind}"
    plugin_paths = os.pathsep.join([str(REPO / "plugins"), str(work / "plugins")])
    env = {"CANOPY_INSTANCE_PATH": str(instance), "CANOPY_PLUGIN_PATHS": plugin_paths}
    if kind == "postgresql":
        env["CANOPY_DATABASE_URL"] = url = postgres_url
    else:
        url = f"sqlite:///{instance / 'canopy.db'}"
    steps = [["init-instance"], ["db", "upgrade"], ["demo"], ["plugins", "approve", partner.client_id],
             ["oauth", "register-client", partner.client_id, "--jwks", str(work / "jwks.json"),
              "--redirect-uri", REDIRECT_URI]]
    return Instance(env, url, [canopy(args, server_env(env)) for args in steps])


def _servers(work: Path, setups: list[Setup], instances: dict[str, Instance], workers: int) -> list[Target]:
    """The bare app first, then one Canopy server per setup; the issuer of each is its own origin."""
    port = free_port()
    bare = Server("bare Flask", "benchmarks.bare_app:app", server_env(), work / "bare.log", workers, port)
    targets = [Target(None, bare, f"http://127.0.0.1:{port}", "/profile", "/token")]
    for n, setup in enumerate(setups):
        instance = instances[setup.database]
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        env = {**instance.env, "CANOPY_OAUTH_ISSUER": issuer, **({"CANOPY_REDIS_URL": REDIS} if setup.redis else {})}
        server = Server(setup.name, "host:create_app()", server_env(env), work / f"canopy-{n}.log", workers, port)
        targets.append(Target(setup, server, issuer, "/api/v1/me", "/oauth/token", instance.database_url))
    return targets


def _first_calls(targets: list[Target], partner: Partner) -> tuple[dict, bytes]:
    """Each Canopy server's customer token through the real flow, checked with one call of
    ``/api/v1/me``; return the profile it gave and the bare app's ``/profile`` body."""
    profile: dict = {}
    for target in targets[1:]:
        issued = customer_tokens(target.server.port, target.issuer, partner)
        target.refresh_token, target.access_token = issued["refresh_token"], issued["access_token"]
        status, body, _ = send(target.server.port, _me_calls(target, partner, 1)[0])
        if status != 200:
            raise RuntimeError(f"{target.name}: /api/v1/me answered {status}: {body[:300]!r}\n{target.server.log_tail()}")
        profile = json.loads(body)
    status, bare_body, _ = send(targets[0].server.port, _me_calls(targets[0], partner, 1)[0])
    if status != 200:
        raise RuntimeError(f"bare /profile answered {status}")
    return profile, bare_body


@dataclass
class Signing:
    """Time spent signing the calls of the timed phases (before each phase, outside its timing)."""

    seconds: dict[str, float] = field(default_factory=lambda: {"me": 0.0, "token": 0.0})
    count: dict[str, int] = field(default_factory=lambda: {"me": 0, "token": 0})

    def per_call_us(self, kind: str) -> float:
        return self.seconds[kind] / max(1, self.count[kind]) * 1e6


def _measure(targets: list[Target], partner: Partner) -> tuple[dict[tuple[str, str], list[Phase]], Signing]:
    """Warm up, then the rounds: every server's GETs, then every server's token requests."""
    for target in targets:
        warm_up(target.server.port, _me_calls(target, partner, ME_WARMUP))
        warm_up(target.server.port, _token_calls(target, partner, TOKEN_WARMUP))
    results: dict[tuple[str, str], list[Phase]] = {}
    signing = Signing()
    for round_ in range(ROUNDS):
        for target in targets[1:]:  # a fresh access token for each round (refresh grant)
            refresh = partner.token_call(target.issuer, {"grant_type": "refresh_token", "refresh_token": target.refresh_token})
            target.access_token = token_response(target.server.port, refresh)["access_token"]
        order = targets if round_ % 2 == 0 else list(reversed(targets))
        for kind, make, count in (("me", _me_calls, ME_REQUESTS), ("token", _token_calls, TOKEN_REQUESTS)):
            for target in order:
                t0 = time.perf_counter()
                calls = make(target, partner, count)
                signing.seconds[kind] += time.perf_counter() - t0
                signing.count[kind] += count
                counted = kind == "me" and target.database_url is not None
                before = _replay_rows(target.database_url) if counted else 0
                results.setdefault((target.name, kind), []).append(drive(target.server, calls))
                if counted:
                    target.replay_rows.append(_replay_rows(target.database_url) - before)
    return results, signing


def _report(targets: list[Target], results: dict[tuple[str, str], list[Phase]]) -> dict:
    rows, summary, figures, per = [], [], {}, {}
    for kind in ("me", "token"):
        for target in targets:
            path = target.me_path if kind == "me" else f"POST {target.token_path}"
            found = per[(target.name, kind)] = summarise(f"{target.name} {path}", results[(target.name, kind)])
            rows.append(found.row)
            figures[f"{target.name} {path}"] = {"rps": found.rps, "p50": found.latency.median, "p95": found.latency.p95}
    bare = targets[0].name
    for kind, what in (("me", "/api/v1/me vs bare /profile"), ("token", "/oauth/token vs bare POST /token")):
        for target in targets[1:]:
            summary.append(comparison(f"{target.name} {what}", per[(target.name, kind)], per[(bare, kind)]))
    print(results_table(rows))
    print()
    print(comparison_table(summary))
    return figures


def run() -> dict:
    common.heading("oauth: DPoP-protected GET /api/v1/me and the token endpoint vs bare Flask, same gunicorn settings")
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-oauth-"))
    database = f"canopy_bench_oauth_{os.getpid()}"
    targets: list[Target] = []
    created_database = False
    try:
        postgres, pg_problem = server_version()
        redis_version, redis_problem = _redis_server()
        if postgres:
            try:
                postgres_url = fresh_database(database)
                created_database = True
            except Exception as exc:  # noqa: BLE001 - measure without it, and say so
                postgres, pg_problem = None, f"cannot create a database: {exc.__class__.__name__}"
        setups = [s for s in SETUPS if (postgres or s.database != "postgresql") and (redis_version or not s.redis)]
        if not postgres:
            common.note(f"PostgreSQL is not usable at {POSTGRES} ({pg_problem}): its setups are left out")
        if not redis_version:
            common.note(f"Redis is not reachable at {REDIS} ({redis_problem}): its setups are left out")

        ids = plugin_factory.generate(work / "plugins", 1, "oauth", scopes=SCOPES)
        partner = Partner(ids[0])
        (work / "jwks.json").write_text(json.dumps(partner.jwks()), encoding="utf-8")
        # One instance per database; the setups on the same database share it.
        instances = {kind: _prepare(work, kind, partner, postgres_url) for kind in dict.fromkeys(s.database for s in setups)}

        settings = gunicorn_settings(server_env())
        targets = _servers(work, setups, instances, int(settings["workers"]))
        for target in targets:
            assert gunicorn_settings(target.server.env) == settings
            target.server.start()
        for target in targets:
            target.server.wait_ready()
        profile, bare_body = _first_calls(targets, partner)

        print_settings(settings)
        common.note(f"\nservers: `python -m gunicorn -c host/gunicorn_conf.py --bind 127.0.0.1:<free port> APP` with "
                    f"APP = `{targets[0].server.app}` and, for each Canopy setup, `host:create_app()`")
        where = f"{postgres} at 127.0.0.1, a fresh database {database} (dropped afterwards)" if postgres else "no PostgreSQL"
        common.note(f"databases: {where}; SQLite in a temporary instance folder; replay cache \"Redis\" = "
                    f"{redis_version or '-'} ({REDIS}), \"in DB\" = the oauth_replay table")
        for kind, instance in instances.items():
            common.note(f"{kind} instance: {'; '.join(instance.prepared)}")
        common.note(f"client: {partner.client_id}, private_key_jwt and DPoP with one ES256 key (joserfc); customer token "
                    f"(scope {CUSTOMER_SCOPE}) from PAR → sign-in → consent → code → token over HTTP, refreshed each round")
        common.note(f"bodies: Canopy /api/v1/me {len(json.dumps(profile, ensure_ascii=False).encode()):,} bytes "
                    f"({', '.join(sorted(profile))}); bare /profile {len(bare_body):,} bytes")
        common.note(f"load: {CONCURRENCY} client threads with persistent connections; warm-up {ME_WARMUP} GETs and "
                    f"{TOKEN_WARMUP} token requests per server on fresh connections; then {ROUNDS} rounds × "
                    f"({ME_REQUESTS} GETs + {TOKEN_REQUESTS} token requests) per server, the order of the servers "
                    f"alternating each round")
        common.note("proofs: every request's DPoP proof (unique jti; htm, htu, iat, ath) and every token request's client "
                    "assertion is signed just before its phase and is not part of the timing; the bare app gets "
                    "requests of the same shape\n")

        results, signing = _measure(targets, partner)
        figures = _report(targets, results)
        common.note("\n" + LEGEND + " degraded does not apply here (always 0).")
        common.note("token requests: grant_type=client_credentials, scope " + CLIENT_SCOPE + ", private_key_jwt + DPoP; "
                    "each issues and stores a new access token")
        common.note("rows added to oauth_replay during the timed /api/v1/me phases: " + "; ".join(
            f"{t.name} {sum(t.replay_rows):,}" for t in targets[1:]))
        common.note(f"signing before the phases (not timed): {signing.per_call_us('me'):.0f} µs per GET's proof, "
                    f"{signing.per_call_us('token'):.0f} µs per token request's assertion and proof; a phase must end "
                    f"within {PHASE_TIME_LIMIT:.0f} s, the life of a proof")
        return figures
    finally:
        for target in targets:
            target.server.stop()
        if created_database:
            drop_database(database)
        if any(t.setup is not None and t.setup.redis for t in targets):
            try:
                _forget_redis_keys()
            except Exception:  # noqa: BLE001 - they expire by themselves within minutes
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run()
