"""The token cache: what each access token allows, kept in Redis, so that a resource
request reads no database.

Present only when ``CANOPY_REDIS_URL`` is set (it shares the replay cache's Redis client);
without it every resource request reads the database. Under
``canopy:token:<SHA-256 digest of the token>`` it keeps the token's
:class:`~host.oauth.access.AccessGrant` as JSON, or a tombstone:

* **Reading.** :meth:`TokenCache.spend_and_read` records the request's DPoP ``jti`` (``SET
  NX EX``) and reads the grant (``GET``) in one round trip.
* **Filling.** After a miss, the grant read from the database is stored with ``SET NX``
  for at most :data:`MAX_SECONDS` and never past the token's expiry or the earliest
  consent expiry it relies on.
* **Forgetting.** Whatever changes what a token allows — revoking it, its grant or the
  customer's consent; recording new consent; disabling its client; changing the
  customer's profile — calls :func:`forget` *inside its transaction, before the commit*.
  It overwrites the keys of every unexpired access token concerned with a tombstone that
  outlives any access token. A request that meets a tombstone reads the database and does
  not fill; a request that read the database before the change committed cannot put its
  stale answer back, because a fill never overwrites. So a change takes effect for the
  very next request, on every worker and machine.
* **Failing closed.** When Redis cannot be reached, :func:`forget` raises 503 and the change
  is rolled back (it is refused, not half done); resource requests are refused too,
  since their DPoP ``jti`` cannot be recorded.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from . import clock
from .models import OAuthToken, TokenKind
from .replay import EXTENSION as REPLAY_EXTENSION, ReplayCacheUnavailable, RedisReplayCache, shared_replay_cache

log = logging.getLogger("canopy.oauth")

PREFIX = "canopy:token:"
#: What a forgotten token's key holds.
TOMBSTONE = b"-"
#: How long a tombstone stays: longer than any access token lives (at most 600 s) plus a
#: request's time limit, so no answer read before the change can be stored after it.
TOMBSTONE_SECONDS = 900
#: The longest a grant is kept without being read again from the database.
MAX_SECONDS = 300
#: Customer fields a grant copies (its profile); changing one forgets the customer's tokens.
PROFILE_ATTRIBUTES = ("nickname", "avatar", "locale", "phone")


class TokenCache:
    """Grants in Redis, keyed by token digest (see the module's description)."""

    def __init__(self, replay: RedisReplayCache) -> None:
        self.replay = replay
        self.client = replay.client
        self._local = threading.local()

    def _key(self, digest: str) -> str:
        return PREFIX + digest

    def spend_and_read(self, digest: str, replay_key: str, replay_until: int) -> tuple[bool, dict[str, Any] | None, bool]:
        """Record ``replay_key`` until ``replay_until`` and read the grant of ``digest``,
        in one round trip. Returns (first use of the key, the grant's dict or None,
        whether the key holds a tombstone)."""
        ttl = max(1, math.ceil(replay_until - clock.epoch()))
        try:
            first, value = self._both(("SET", self.replay.key_for(replay_key), b"1", "NX", "EX", ttl),
                                      ("GET", self._key(digest)))
        except self.replay.errors as exc:
            log.error("token cache unreachable (%s): resource requests are refused", exc.__class__.__name__)
            raise ReplayCacheUnavailable() from exc
        if value is None or value == TOMBSTONE:
            return bool(first), None, value == TOMBSTONE
        try:
            return bool(first), json.loads(value), False
        except ValueError:
            return bool(first), None, False

    def _both(self, *commands: tuple) -> list[Any]:
        # Both commands in one write and one round trip, on this thread's own connection:
        # a third of the CPU of a redis-py pipeline, which checks a connection out of the
        # pool (and polls it) for every call. gthread workers keep a few long-lived threads.
        connection = self._connection()
        try:
            connection.send_packed_command([_pack(commands)])
            return [connection.read_response() for _ in commands]
        except BaseException:
            connection.disconnect()  # a half-read answer must not reach the next request
            raise

    def _connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # new thread, or a forked worker
            pool = self.client.connection_pool
            local.connection, local.pid = pool.connection_class(**pool.connection_kwargs), os.getpid()
        return local.connection

    def store(self, digest: str, grant: dict[str, Any], valid_until: int) -> None:
        """Keep ``grant`` unless the key is taken (a tombstone, or a fill by another request)."""
        ttl = min(MAX_SECONDS, valid_until - clock.epoch())
        if ttl < 1:
            return
        try:
            self.client.set(self._key(digest), json.dumps(grant, separators=(",", ":")), nx=True, ex=ttl)
        except self.replay.errors as exc:  # the answer is correct; it just is not kept
            log.warning("token cache unreachable (%s): grant not kept", exc.__class__.__name__)

    def bury(self, digests: list[str]) -> None:
        """Overwrite the keys of ``digests`` with tombstones (raises 503 when Redis is unreachable)."""
        if not digests:
            return
        pipe = self.client.pipeline(transaction=False)
        for digest in digests:
            pipe.set(self._key(digest), TOMBSTONE, ex=TOMBSTONE_SECONDS)
        try:
            pipe.execute()
        except self.replay.errors as exc:
            log.error("token cache unreachable (%s): the change is refused", exc.__class__.__name__)
            raise ReplayCacheUnavailable() from exc


def _pack(commands: tuple[tuple, ...]) -> bytes:
    """``commands`` in the Redis protocol (RESP): each an array of bulk strings."""
    out = bytearray()
    for command in commands:
        out += b"*%d\r\n" % len(command)
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
    return bytes(out)


def shared_token_cache(app) -> TokenCache | None:
    """The app's token cache when ``REDIS_URL`` is set, else None."""
    replay = shared_replay_cache(app)
    if replay is None:
        return None
    cache = app.extensions.get(f"{REPLAY_EXTENSION}.tokens")
    if cache is None or cache.replay is not replay:
        cache = app.extensions[f"{REPLAY_EXTENSION}.tokens"] = TokenCache(replay)
    return cache


def forget(session: Session, *, digest: str | None = None, customer_id: str | None = None,
           client_id: str | None = None, code_id: int | None = None) -> int:
    """Tombstone the cached grants of every unexpired access token matching all the given
    filters (call it before the change commits); return how many keys were written.

    Does nothing without Redis or outside an app. Raises 503 when Redis is unreachable.
    """
    if not has_app_context():
        return 0
    cache = shared_token_cache(current_app)
    if cache is None:
        return 0
    if digest is not None:
        digests = [digest]
    else:
        query = select(OAuthToken.digest).where(OAuthToken.kind == TokenKind.ACCESS,
                                                OAuthToken.expires_at > clock.now())
        for column, value in ((OAuthToken.customer_id, customer_id), (OAuthToken.client_id, client_id),
                              (OAuthToken.code_id, code_id)):
            if value is not None:
                query = query.where(column == value)
        # On the session's connection: no autoflush, so this is safe inside a flush event.
        digests = list(session.connection().execute(query).scalars())
    cache.bury(digests)
    return len(digests)


@event.listens_for(Session, "before_flush")
def _forget_on_change(session: Session, flush_context, instances) -> None:
    """Whichever code makes the change, a customer whose profile changes (or who is
    deleted) and a client that is disabled (or deleted) have their tokens' grants forgotten."""
    from ..identity.models import Customer
    from .models import OAuthClient

    for thing in [*session.dirty, *session.deleted]:
        if isinstance(thing, Customer):
            watched, filters = PROFILE_ATTRIBUTES, {"customer_id": thing.id}
        elif isinstance(thing, OAuthClient):
            watched, filters = ("disabled_at",), {"client_id": thing.client_id}
        else:
            continue
        state = inspect(thing)
        if thing in session.deleted or any(state.attrs[name].history.has_changes() for name in watched):
            forget(session, **filters)
