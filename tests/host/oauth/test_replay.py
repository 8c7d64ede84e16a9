"""host.oauth.replay: the Redis replay cache against a real Redis, the choice between Redis
and the database, and a replayed DPoP proof refused at /api/v1/me with Redis configured.

Redis is ``CANOPY_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). When it cannot be
reached the tests that need it are skipped with the reason — except under ``CI=true``, where
that is a failure.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

from host.oauth.client_assertion import verify_client_assertion
from host.oauth.dpop import verify_proof
from host.oauth.replay import (
    REDIS_PREFIX,
    DatabaseReplayCache,
    RedisReplayCache,
    ReplayCacheUnavailable,
    request_replay_cache,
)

REDIS_URL = os.environ.get("CANOPY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: Nothing listens on port 1: connections are refused at once.
UNREACHABLE = "redis://127.0.0.1:1/0"
ISSUER = "http://localhost"
NOW = 1_800_000_000


def _redis_or_skip(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = f"Redis is not reachable at {url}: {exc.__class__.__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: Redis tests must run)", pytrace=False)
        pytest.skip(message)
    return client


@pytest.fixture
def redis_client():
    """A client of the test Redis (skips, or fails under CI=true, when it is unreachable)."""
    client = _redis_or_skip(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def cache(redis_client):
    """A Redis replay cache under a prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"canopy:test:{uuid.uuid4().hex}:"
    yield RedisReplayCache(redis_client, prefix=prefix, clock=lambda: NOW)
    keys = list(redis_client.scan_iter(match=prefix + "*"))
    if keys:
        redis_client.delete(*keys)


# -- the cache itself -------------------------------------------------------------------


def test_first_use_is_accepted_and_a_replay_refused(cache):
    assert cache.first_use("dpop:jkt-1:jti-1", NOW + 66) is True
    assert cache.first_use("dpop:jkt-1:jti-1", NOW + 66) is False
    assert cache.first_use("dpop:jkt-1:jti-2", NOW + 66) is True
    assert cache.recorded == ()  # nothing a rollback could lose: web.transactional has nothing to restore
    cache.restore()
    assert cache.first_use("dpop:jkt-1:jti-1", NOW + 66) is False


def test_the_key_lives_until_the_value_could_no_longer_be_accepted(cache, redis_client):
    cache.first_use("dpop:jkt:long", NOW + 66)
    assert redis_client.ttl(cache.key_for("dpop:jkt:long")) in (65, 66)
    # A value already past its time is still remembered briefly rather than not at all.
    cache.first_use("dpop:jkt:late", NOW - 10)
    assert redis_client.ttl(cache.key_for("dpop:jkt:late")) in (0, 1)


def test_an_expired_entry_lets_the_key_be_used_again(cache):
    assert cache.first_use("assertion:client:short", NOW + 1)  # EX 1
    assert cache.first_use("assertion:client:short", NOW + 1) is False
    deadline = time.monotonic() + 1.5
    while not cache.first_use("assertion:client:short", NOW + 1):
        assert time.monotonic() < deadline, "the entry outlived its one-second expiry"
        time.sleep(0.05)


def test_keys_hold_no_jti_and_are_kept_apart_by_purpose(cache, redis_client, partner_key):
    url = f"{ISSUER}/oauth/token"
    proof = partner_key.proof("POST", url, iat=NOW, jti="same-jti")
    assertion = partner_key.assertion("test.wallet", ISSUER, now=NOW, jti="same-jti")
    jwks = partner_key.jwks()

    # The same jti as a DPoP proof and as a client assertion: two values, two keys.
    verify_proof([proof], method="POST", url=url, replay=cache, now=NOW)
    verify_client_assertion(assertion, client_id="test.wallet", jwks=jwks, issuer=ISSUER, replay=cache, now=NOW)
    keys = sorted(key.decode() for key in redis_client.scan_iter(match=cache.prefix + "*"))
    assert [key[len(cache.prefix):].split(":")[0] for key in keys] == ["assertion", "dpop"]
    assert not any("same-jti" in key or "test.wallet" in key for key in keys)

    from host.oauth.errors import InvalidClient, InvalidDPoPProof

    with pytest.raises(InvalidDPoPProof, match="used before"):
        verify_proof([proof], method="POST", url=url, replay=cache, now=NOW)
    with pytest.raises(InvalidClient, match="used before"):
        verify_client_assertion(assertion, client_id="test.wallet", jwks=jwks, issuer=ISSUER, replay=cache, now=NOW)


def test_workers_racing_with_one_value_accept_it_once(cache, redis_client):
    import redis

    # Each thread stands for a gunicorn worker: its own client (connection), the same Redis.
    caches = [RedisReplayCache(redis.Redis.from_url(REDIS_URL), prefix=cache.prefix, clock=lambda: NOW) for _ in range(8)]
    start = threading.Barrier(len(caches))
    results = []

    def present(worker_cache):
        start.wait(timeout=10)
        results.append(worker_cache.first_use("dpop:jkt:raced", NOW + 66))

    threads = [threading.Thread(target=present, args=(c,)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for worker_cache in caches:
        worker_cache.client.close()
    assert sorted(results) == [False] * 7 + [True]


def test_an_unreachable_redis_refuses_rather_than_accepts():
    cache = RedisReplayCache.from_url(UNREACHABLE)
    with pytest.raises(ReplayCacheUnavailable) as caught:
        cache.first_use("dpop:jkt:jti", int(time.time()) + 66)
    assert caught.value.status == 503


# -- which cache a request gets ---------------------------------------------------------


def test_the_database_cache_without_redis_and_one_shared_redis_cache_with_it():
    session = object()
    plain = SimpleNamespace(config={"REDIS_URL": None}, extensions={})
    chosen = request_replay_cache(plain, lambda: session)
    assert isinstance(chosen, DatabaseReplayCache) and chosen.session is session

    with_redis = SimpleNamespace(config={"REDIS_URL": REDIS_URL}, extensions={})
    first = request_replay_cache(with_redis, lambda: pytest.fail("no database session is needed with Redis"))
    assert isinstance(first, RedisReplayCache) and first.prefix == REDIS_PREFIX
    assert request_replay_cache(with_redis, lambda: session) is first  # one client (and pool) per app


# -- end to end, with REDIS_URL configured ----------------------------------------------


@pytest.fixture
def redis_app(oauth_app, app_factory, redis_client):
    """The OAuth tests' app again — same database, plugins and issuer — with REDIS_URL set."""
    return app_factory(PLUGIN_PATHS=oauth_app.config["PLUGIN_PATHS"], OAUTH_ISSUER=oauth_app.config["OAUTH_ISSUER"],
                       REDIS_URL=REDIS_URL)


def _customer_tokens(app, partner, helpers) -> dict:
    browser = helpers.Browser(app)
    browser.sign_in()
    pushed = partner.par(scope="profile.basic:read")
    assert pushed.status_code == 201, pushed.get_json()
    code = helpers.redirect_params(browser.decide(pushed.get_json()["request_uri"], partner.plugin_id))["code"]
    issued = partner.exchange(code)
    assert issued.status_code == 200, issued.get_json()
    return issued.get_json()


def _replay_rows(app) -> int:
    from sqlalchemy import func, select

    from host.db import get_database
    from host.oauth.models import ReplayEntry

    with app.app_context(), get_database(app).transaction() as session:
        return session.scalar(select(func.count()).select_from(ReplayEntry))


def test_a_replayed_proof_is_refused_at_the_api_with_redis(redis_app, partner_key, helpers, redis_client):
    from host.oauth.replay import shared_replay_cache

    wallet = helpers.Partner(redis_app, "test.wallet", partner_key)
    wallet.register()
    access = _customer_tokens(redis_app, wallet, helpers)["access_token"]

    jti = uuid.uuid4().hex
    proof = partner_key.proof("GET", f"{ISSUER}/api/v1/me", access_token=access, jti=jti)
    headers = {"Authorization": f"DPoP {access}", "DPoP": proof}
    first = wallet.http.get("/api/v1/me", headers=headers)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["nickname"] == "林小姐"
    replayed = wallet.http.get("/api/v1/me", headers=headers)
    assert replayed.status_code == 401
    assert replayed.get_json()["error"] == "invalid_dpop_proof" and "used before" in replayed.get_json()["error_description"]

    # Every one-time value of the walk (PAR and token assertions, token and API proofs) went
    # to Redis, none to the database's replay table.
    key = shared_replay_cache(redis_app).key_for(f"dpop:{partner_key.jkt}:{jti}")
    assert 0 < redis_client.ttl(key) <= 66
    assert _replay_rows(redis_app) == 0


def test_a_proof_stays_spent_when_its_request_fails_with_redis(redis_app, partner_key, helpers):
    wallet = helpers.Partner(redis_app, "test.wallet", partner_key)
    wallet.register()
    issued = wallet.token({"grant_type": "client_credentials", "scope": "client:manage"})
    assert issued.status_code == 200, issued.get_json()
    access = issued.get_json()["access_token"]

    url = f"{ISSUER}/api/v1/clients/test.wallet"
    headers = {"Authorization": f"DPoP {access}", "DPoP": partner_key.proof("PUT", url, access_token=access),
               "Content-Type": "application/json"}
    # The proof is good, then the view raises (malformed JSON) and the transaction rolls back.
    failed = wallet.http.put("/api/v1/clients/test.wallet", data="{not json", headers=headers)
    assert failed.status_code == 400, failed.get_json()
    again = wallet.http.put("/api/v1/clients/test.wallet", json={"redirect_uris": [helpers.REDIRECT_URI]},
                            headers={k: v for k, v in headers.items() if k != "Content-Type"})
    assert again.status_code == 401 and "used before" in again.get_json()["error_description"]


def test_an_unreachable_redis_answers_503_at_the_api(oauth_app, wallet, walk, app_factory):
    access = wallet.exchange(walk()["code"]).get_json()["access_token"]
    down = app_factory(PLUGIN_PATHS=oauth_app.config["PLUGIN_PATHS"], OAUTH_ISSUER=oauth_app.config["OAUTH_ISSUER"],
                       REDIS_URL=UNREACHABLE)
    proof = wallet.key.proof("GET", f"{ISSUER}/api/v1/me", access_token=access)
    response = down.test_client().get("/api/v1/me", headers={"Authorization": f"DPoP {access}", "DPoP": proof})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.mimetype == "application/problem+json"


def _write_transactions_during(app, call) -> list[bool]:
    """Run ``call`` and return, for each transaction it began, whether it was a write one."""
    from sqlalchemy import event

    from host.db import get_database

    seen: list[bool] = []

    def on_begin(connection):
        seen.append(bool(connection.get_execution_options().get("sqlite_immediate")))

    engine = get_database(app).engine
    event.listen(engine, "begin", on_begin)
    try:
        call()
    finally:
        event.remove(engine, "begin", on_begin)
    return seen


def test_with_redis_a_resource_get_needs_no_write_transaction(redis_app, partner_key, helpers, oauth_app):
    wallet = helpers.Partner(redis_app, "test.wallet", partner_key)
    wallet.register()
    access = _customer_tokens(redis_app, wallet, helpers)["access_token"]

    def me(app):
        proof = partner_key.proof("GET", f"{ISSUER}/api/v1/me", access_token=access)
        response = app.test_client().get("/api/v1/me", headers={"Authorization": f"DPoP {access}", "DPoP": proof})
        assert response.status_code == 200, response.get_json()

    with_redis = _write_transactions_during(redis_app, lambda: me(redis_app))
    without_redis = _write_transactions_during(oauth_app, lambda: me(oauth_app))

    assert with_redis and not any(with_redis)  # read transactions only: SQLite runs them beside a writer
    assert any(without_redis)  # the replay table is written in the request's transaction
