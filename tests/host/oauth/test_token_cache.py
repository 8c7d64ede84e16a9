"""host.oauth.token_cache: access tokens' grants kept in Redis, forgotten before any change
that affects them commits, so a resource request reads no database yet every change takes
effect on the very next request."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

ISSUER = "http://localhost"
UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
def cached(oauth_app, token_cache_on):
    """The OAuth tests' app with the token cache (REDIS_URL) on."""
    return token_cache_on(oauth_app)


@pytest.fixture
def issued(cached, wallet, walk):
    """A customer token of test.wallet with both profile scopes."""
    response = wallet.exchange(walk(scope="profile.basic:read profile.phone:read")["code"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def statements_during(app, call):
    """Run ``call``; return (its result, the SQL statements it sent to the database)."""
    from host.db import get_database

    seen: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = get_database(app).engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    return result, seen


def cache_of(app):
    from host.oauth.token_cache import shared_token_cache

    with app.app_context():
        return shared_token_cache(app)


def digest_of(token: str) -> str:
    from host.oauth.tokens import digest

    return digest(token)


def in_transaction(app, work):
    from host.db import get_database

    with app.app_context(), get_database(app).transaction(write=True) as session:
        return work(session)


def test_a_cached_grant_answers_without_the_database(cached, wallet, issued):
    access = issued["access_token"]
    first, on_miss = statements_during(cached, lambda: wallet.get("/api/v1/me", access))
    again, on_hit = statements_during(cached, lambda: wallet.get("/api/v1/me", access))
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert again.get_json()["phone"] == "13800000001"
    assert on_miss and on_hit == []  # the second request read nothing from the database

    from host.oauth.token_cache import MAX_SECONDS, PREFIX

    key = PREFIX + digest_of(access)
    stored = json.loads(cache_of(cached).client.get(key))
    assert stored["client_id"] == "test.wallet" and stored["profile"]["nickname"] == "林小姐"
    assert access not in json.dumps(stored)  # the key is a digest; the token itself is nowhere
    assert 0 < cache_of(cached).client.ttl(key) <= MAX_SECONDS


def test_revoking_the_token_takes_effect_on_the_next_request(cached, wallet, issued):
    access = issued["access_token"]
    assert wallet.get("/api/v1/me", access).status_code == 200  # now cached
    revoked = wallet.http.post("/oauth/revoke", data={"token": access, **wallet.auth()})
    assert revoked.status_code == 200
    refused = wallet.get("/api/v1/me", access)
    assert refused.status_code == 401 and "revoked" in refused.get_json()["error_description"]


def test_a_replayed_code_revokes_the_cached_tokens_it_issued(cached, wallet, walk):
    code = walk(scope="profile.basic:read")["code"]
    access = wallet.exchange(code).get_json()["access_token"]
    assert wallet.get("/api/v1/me", access).status_code == 200
    assert wallet.exchange(code).status_code == 400  # the replay revokes what the code issued
    assert wallet.get("/api/v1/me", access).status_code == 401


def test_a_profile_change_shows_on_the_next_request(cached, wallet, issued):
    from host.identity.models import Customer

    access = issued["access_token"]
    assert wallet.get("/api/v1/me", access).get_json()["nickname"] == "林小姐"

    def rename(session):
        customer = session.scalar(select(Customer).where(Customer.phone == "13800000001"))
        customer.nickname = "林女士"

    in_transaction(cached, rename)
    assert wallet.get("/api/v1/me", access).get_json()["nickname"] == "林女士"


def test_a_change_outside_the_profile_keeps_the_cache(cached, wallet, issued):
    from host.identity.models import Customer

    access = issued["access_token"]
    wallet.get("/api/v1/me", access)

    def fail_a_pin(session):
        session.scalar(select(Customer).where(Customer.phone == "13800000001")).pin_failed_attempts += 1

    in_transaction(cached, fail_a_pin)
    response, statements = statements_during(cached, lambda: wallet.get("/api/v1/me", access))
    assert response.status_code == 200 and statements == []


def test_a_disabled_client_is_refused_on_the_next_request(cached, wallet, issued):
    from host.oauth import clock
    from host.oauth.models import OAuthClient

    access = issued["access_token"]
    assert wallet.get("/api/v1/me", access).status_code == 200
    in_transaction(cached, lambda session: setattr(session.get(OAuthClient, "test.wallet"), "disabled_at", clock.now()))
    refused = wallet.get("/api/v1/me", access)
    assert refused.status_code == 401 and "disabled" in refused.get_json()["error_description"]


def test_withdrawing_one_scope_narrows_the_cached_grant_at_once(cached, wallet, browser, issued, helpers):
    access = issued["access_token"]
    assert "phone" in wallet.get("/api/v1/me", access).get_json()
    html = browser.http.get("/me/authorisations").get_data(as_text=True)
    browser.http.post("/me/authorisations/withdraw", data={
        "plugin_id": "test.wallet", "scope": "profile.phone:read", "csrf_token": helpers.form_token(html)})
    body = wallet.get("/api/v1/me", access).get_json()
    assert "phone" not in body and body["nickname"] == "林小姐"


def test_a_grant_is_kept_no_longer_than_the_consent_it_relies_on(cached, wallet, issued, monkeypatch):
    from host.oauth import clock
    from host.oauth.models import ConsentGrant
    from host.oauth.token_cache import PREFIX

    access = issued["access_token"]
    soon = clock.now() + timedelta(seconds=100)
    in_transaction(cached, lambda session: session.execute(
        update(ConsentGrant).where(ConsentGrant.plugin_id == "test.wallet").values(expires_at=soon)))
    assert wallet.get("/api/v1/me", access).status_code == 200  # read, then kept
    assert 0 < cache_of(cached).client.ttl(PREFIX + digest_of(access)) <= 100

    # 200 s on, the token (300 s) is still unexpired but the consent is not: although Redis
    # still holds the grant, it is read again and refused.
    later = clock.now() + timedelta(seconds=200)
    monkeypatch.setattr(clock, "now", lambda: later)
    proof = wallet.key.proof("GET", f"{ISSUER}/api/v1/me", access_token=access, iat=int(later.timestamp()))
    refused = wallet.http.get("/api/v1/me", headers={"Authorization": f"DPoP {access}", "DPoP": proof})
    assert refused.status_code == 401 and "withdrawn consent" in refused.get_json()["error_description"]


def test_a_fill_never_overwrites_a_tombstone(cached, wallet, issued):
    from host.oauth.token_cache import PREFIX, TOMBSTONE

    access = issued["access_token"]
    cache = cache_of(cached)
    key = PREFIX + digest_of(access)
    # A request that read the database before a change committed tries to keep its answer
    # after the change buried the key: the stale answer stays out.
    cache.bury([digest_of(access)])
    cache.store(digest_of(access), {"client_id": "test.wallet", "stale": True}, int(time.time()) + 60)
    assert cache.client.get(key) == TOMBSTONE
    # Requests meanwhile read the database, and do not fill either.
    for _ in range(2):
        response, statements = statements_during(cached, lambda: wallet.get("/api/v1/me", access))
        assert response.status_code == 200 and statements
    assert cache.client.get(key) == TOMBSTONE


@pytest.mark.parametrize("value", [b"{not json", b"[]", b'{"client_id": 7}', b'{"client_id": "test.wallet"}', b"null"])
def test_a_corrupt_cache_entry_is_read_again_from_the_database(cached, wallet, issued, value):
    from host.oauth.token_cache import PREFIX

    access = issued["access_token"]
    cache_of(cached).client.set(PREFIX + digest_of(access), value, ex=60)
    response = wallet.get("/api/v1/me", access)
    assert response.status_code == 200 and response.get_json()["phone"] == "13800000001"


def test_a_cached_grant_still_checks_the_proof_key_and_the_scopes(cached, wallet, issued, helpers):
    access = issued["access_token"]
    assert wallet.get("/api/v1/me", access).status_code == 200
    stranger = helpers.PartnerKey("ES256")
    refused = wallet.get("/api/v1/me", access, key=stranger)
    assert refused.status_code == 401 and "not bound" in refused.get_json()["error_description"]
    response = wallet.get("/api/v1/clients/test.wallet", access, method="PUT", json={"redirect_uris": []})
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


def test_an_unreachable_redis_refuses_a_withdrawal_and_changes_nothing(oauth_app, app_factory, issued):
    from host.oauth.consent import live_scopes, withdraw
    from host.oauth.replay import ReplayCacheUnavailable
    from host.identity.models import Customer

    down = app_factory(PLUGIN_PATHS=oauth_app.config["PLUGIN_PATHS"], OAUTH_ISSUER=ISSUER, REDIS_URL=UNREACHABLE)

    def customer_id(session):
        return session.scalar(select(Customer.id).where(Customer.phone == "13800000001"))

    who = in_transaction(oauth_app, customer_id)
    with pytest.raises(ReplayCacheUnavailable):
        in_transaction(down, lambda session: withdraw(session, who, "test.wallet"))
    still = in_transaction(oauth_app, lambda session: live_scopes(session, who, "test.wallet"))
    assert still == {"profile.basic:read", "profile.phone:read"}


def test_no_request_that_starts_after_a_revocation_gets_through(cached, wallet, issued):
    """Eight threads (each its own connection, as gunicorn workers would be) call the API
    while the token is revoked; every call that began after the revocation returned is refused."""
    access = issued["access_token"]
    assert wallet.get("/api/v1/me", access).status_code == 200
    revoked_at: list[float] = []
    outcomes: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def caller():
        http = cached.test_client()
        while not stop.is_set():
            proof = wallet.key.proof("GET", f"{ISSUER}/api/v1/me", access_token=access)
            started = time.monotonic()
            status = http.get("/api/v1/me", headers={"Authorization": f"DPoP {access}", "DPoP": proof}).status_code
            with lock:
                outcomes.append((started, status))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    revoke = cached.test_client().post("/oauth/revoke", data={"token": access, **wallet.auth()})
    revoked_at.append(time.monotonic())
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(10)

    assert revoke.status_code == 200
    before = [status for started, status in outcomes if started < revoked_at[0]]
    after = [status for started, status in outcomes if started > revoked_at[0]]
    assert 200 in before and after, "the callers ran on both sides of the revocation"
    assert set(after) == {401}


def test_a_grant_that_cannot_be_kept_is_still_answered(cached, wallet, issued, monkeypatch, caplog):
    """Redis records the proof but refuses the fill: the answer read from the database stands,
    nothing is kept, and the next request reads the database again."""
    import redis

    from host.oauth.token_cache import PREFIX

    cache = cache_of(cached)

    def refuse(*args, **kwargs):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(cache.client, "set", refuse)
    access = issued["access_token"]
    for _ in range(2):
        response, statements = statements_during(cached, lambda: wallet.get("/api/v1/me", access))
        assert response.status_code == 200 and statements
    assert cache.client.get(PREFIX + digest_of(access)) is None
    assert "grant not kept" in caplog.text
