"""host.identity.ratelimit: fixed-window counters in memory and in Redis; /signin's limit."""

from __future__ import annotations

import os
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

from host.demo import CUSTOMERS
from host.identity import ratelimit
from host.identity.ratelimit import MemoryRateLimiter, RedisRateLimiter, rate_limiter
from host.identity.views import ATTEMPTS_PER_MINUTE

PHONE, PASSWORD = CUSTOMERS[0][:2]
REDIS_URL = os.environ.get("CANOPY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- in memory ----------------------------------------------------------------------------


def test_memory_counts_up_to_the_limit_then_refuses():
    limiter = MemoryRateLimiter(clock=Clock())
    assert [limiter.hit("a", 3, 60) for _ in range(5)] == [True, True, True, False, False]


def test_memory_counts_each_key_apart():
    limiter = MemoryRateLimiter(clock=Clock())
    for _ in range(3):
        limiter.hit("a", 3, 60)
    assert limiter.hit("a", 3, 60) is False
    assert limiter.hit("b", 3, 60) is True


def test_memory_starts_again_in_the_next_window():
    clock = Clock(60 * 1000)  # the start of a window
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(3):
        assert limiter.hit("a", 3, 60)
    clock.now += 59.999  # still the same window
    assert limiter.hit("a", 3, 60) is False
    clock.now += 0.001  # the next one
    assert [limiter.hit("a", 3, 60) for _ in range(4)] == [True, True, True, False]


def test_memory_windows_follow_the_window_length():
    clock = Clock(3600 * 1000)
    limiter = MemoryRateLimiter(clock=clock)
    assert limiter.hit("a", 1, 3600)
    clock.now += 600
    assert limiter.hit("a", 1, 3600) is False  # ten minutes into an hour window


def test_memory_forgets_old_windows():
    clock = Clock(0)
    limiter = MemoryRateLimiter(clock=clock)
    for n in range(100_001):
        limiter.hit(f"address-{n}", 20, 60)
    clock.now = 60
    limiter.hit("now", 20, 60)
    assert len(limiter._counts) == 1  # only the current window is kept


def test_memory_counts_every_hit_from_many_threads():
    limiter = MemoryRateLimiter(clock=Clock())
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        results = [limiter.hit("a", 2000, 60) for _ in range(500)]
        with lock:
            allowed.extend(results)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (allowed.count(True), allowed.count(False)) == (2000, 2000)


def test_the_memory_limiter_is_used_without_redis():
    assert isinstance(rate_limiter({}), MemoryRateLimiter)
    assert isinstance(rate_limiter({"REDIS_URL": None}), MemoryRateLimiter)
    assert isinstance(rate_limiter({"REDIS_URL": REDIS_URL}), RedisRateLimiter)


# --- in Redis -----------------------------------------------------------------------------


@pytest.fixture
def redis_keys(redis_url):
    """A key prefix of this test's own; its counters are removed afterwards."""
    import redis

    prefix = f"test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter(match=f"canopy:rl:*{prefix}*"):
        client.delete(name)
    client.close()


@pytest.fixture
def wall_clock(monkeypatch):
    """The wall clock the Redis limiter reads, moved by hand."""
    clock = Clock(60 * 28_000_000)
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=clock, monotonic=time.monotonic))
    return clock


def test_redis_counts_up_to_the_limit_then_refuses(redis_url, redis_keys, wall_clock):
    limiter = RedisRateLimiter(redis_url)
    assert [limiter.hit(redis_keys, 3, 60) for _ in range(5)] == [True, True, True, False, False]


def test_redis_counts_each_key_apart(redis_url, redis_keys, wall_clock):
    limiter = RedisRateLimiter(redis_url)
    for _ in range(3):
        limiter.hit(f"{redis_keys}:a", 3, 60)
    assert limiter.hit(f"{redis_keys}:a", 3, 60) is False
    assert limiter.hit(f"{redis_keys}:b", 3, 60) is True


def test_redis_starts_again_in_the_next_window(redis_url, redis_keys, wall_clock):
    limiter = RedisRateLimiter(redis_url)
    for _ in range(3):
        limiter.hit(redis_keys, 3, 60)
    wall_clock.now += 59
    assert limiter.hit(redis_keys, 3, 60) is False
    wall_clock.now += 1
    assert limiter.hit(redis_keys, 3, 60) is True


def test_redis_counters_are_shared_by_every_process(redis_url, redis_keys, wall_clock):
    one, other = RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)
    assert one.hit(redis_keys, 2, 60) and other.hit(redis_keys, 2, 60)
    assert one.hit(redis_keys, 2, 60) is False
    assert other.hit(redis_keys, 2, 60) is False


def test_redis_counters_expire(redis_url, redis_keys, wall_clock):
    import redis

    RedisRateLimiter(redis_url).hit(redis_keys, 3, 60)
    client = redis.Redis.from_url(redis_url)
    [name] = list(client.scan_iter(match=f"canopy:rl:{redis_keys}:*"))
    assert 0 < client.ttl(name) <= 120  # two windows at most, never kept for ever
    client.close()


def test_an_unreachable_redis_is_an_error_not_a_pass():
    limiter = RedisRateLimiter("redis://127.0.0.1:1/15")
    with pytest.raises(ratelimit.RateLimiterUnavailable):
        limiter.hit("anything", 3, 60)


# --- /signin ------------------------------------------------------------------------------


def _post(client, path: str, token: str, address: str = "203.0.113.5", **fields):
    login = "username" if path.startswith("/staff") else "phone"
    data = {"csrf_token": token, login: fields.get("login", "13700000000"), "password": fields.get("password", "wrong")}
    return client.post(path, data=data, environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def limited(demo_app):
    """The demo app with a memory limiter on a clock the test moves."""
    clock = Clock(60 * 1000)
    demo_app.extensions["canopy.ratelimit"] = MemoryRateLimiter(clock=clock)
    return SimpleNamespace(app=demo_app, clock=clock)


def test_signin_answers_429_after_20_posts_from_one_address_in_a_minute(limited, form_token):
    client = limited.app.test_client()
    token = form_token(client)
    statuses = [_post(client, "/signin", token).status_code for _ in range(ATTEMPTS_PER_MINUTE)]
    assert ATTEMPTS_PER_MINUTE == 20
    assert set(statuses) == {401}
    refused = _post(client, "/signin", token, login=PHONE, password=PASSWORD)  # even the right password
    assert refused.status_code == 429
    assert "Too many attempts" in refused.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "customer_id" not in session
    # The staff page counts against the same address.
    assert _post(client, "/staff/signin", token).status_code == 429
    # Looking at the page is not an attempt.
    assert client.get("/signin").status_code == 200


def test_the_limit_is_per_address(limited, form_token):
    client = limited.app.test_client()
    token = form_token(client)
    for _ in range(ATTEMPTS_PER_MINUTE):
        _post(client, "/signin", token, address="203.0.113.5")
    assert _post(client, "/signin", token, address="203.0.113.5").status_code == 429
    assert _post(client, "/signin", token, address="203.0.113.6", login=PHONE, password=PASSWORD).status_code == 303


def test_the_limit_lifts_in_the_next_minute(limited, form_token):
    client = limited.app.test_client()
    token = form_token(client)
    for _ in range(ATTEMPTS_PER_MINUTE + 1):
        _post(client, "/signin", token)
    limited.clock.now += 60
    assert _post(client, "/signin", token, login=PHONE, password=PASSWORD).status_code == 303


def test_posts_without_the_form_token_are_refused_before_they_count(limited, form_token):
    client = limited.app.test_client()
    token = form_token(client)
    for _ in range(ATTEMPTS_PER_MINUTE + 5):
        assert _post(client, "/signin", "forged").status_code == 400
    assert _post(client, "/signin", token, login=PHONE, password=PASSWORD).status_code == 303


def test_signin_limits_across_workers_with_redis(app_factory, seed_demo, redis_url, redis_keys, wall_clock, form_token):
    # Two app instances (two workers) share the counters in Redis.
    one, other = (seed_demo(app_factory(REDIS_URL=redis_url)) for _ in range(2))
    address = redis_keys  # a client address of this test's own, so the keys are too
    first, second = one.test_client(), other.test_client()
    first_token, second_token = form_token(first), form_token(second)
    for n in range(ATTEMPTS_PER_MINUTE):
        client, token = (first, first_token) if n % 2 else (second, second_token)
        assert _post(client, "/signin", token, address=address).status_code == 401
    assert _post(first, "/signin", first_token, address=address).status_code == 429
    assert _post(second, "/signin", second_token, address=address).status_code == 429


def test_signin_answers_503_when_redis_is_down(app_factory, seed_demo, form_token):
    app = seed_demo(app_factory(REDIS_URL="redis://127.0.0.1:1/15"))
    client = app.test_client()
    response = _post(client, "/signin", form_token(client), login=PHONE, password=PASSWORD)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
