"""Events: the transactional outbox and their delivery to plugins (docs/payments.md, "Events").

Where delivery runs is the ``EVENTS_DELIVERY`` setting:

* ``inline`` (the embedded default): a request that wrote events delivers what is due at its
  end, after its commit; ``canopy worker`` (when it runs) retries what failed.
* ``worker``: requests only wake the workers (``canopy worker``, :mod:`host.worker`) through
  Redis when ``REDIS_URL`` is set; without Redis the workers find new events by polling.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask, g

from ..config import one_of

log = logging.getLogger("canopy.events")

INLINE, WORKER = "inline", "worker"
DELIVERY_MODES = (INLINE, WORKER)
#: The Redis list that requests push a wake-up onto and workers wait on (``BLPOP``).
WAKE_KEY = "canopy:events:wake"
#: Wake-ups kept on the list at most: one is enough to start a pass, which takes all that is due.
WAKE_BACKLOG = 16


def note_emitted() -> None:
    """Tell the current request that it wrote events: they are delivered when it ends."""
    g.canopy_events = True


def delivery_mode(config: Mapping[str, Any]) -> str:
    """``EVENTS_DELIVERY`` (``inline`` or ``worker``); :class:`ConfigError` for anything else."""
    return one_of(config, "EVENTS_DELIVERY", DELIVERY_MODES)


def wake_workers(app: Flask) -> bool:
    """Push a wake-up onto :data:`WAKE_KEY` for ``canopy worker``; return whether it was pushed.

    Without ``REDIS_URL`` there is nothing to push (workers poll); when Redis cannot be reached
    the events wait for the workers' next poll, so the request is not failed for it.
    """
    from ..oauth.replay import shared_replay_cache

    cache = shared_replay_cache(app)  # the app's one Redis client (replay cache, token cache)
    if cache is None:
        return False
    try:
        pipe = cache.client.pipeline(transaction=False)
        pipe.rpush(WAKE_KEY, b"1")
        pipe.ltrim(WAKE_KEY, -WAKE_BACKLOG, -1)
        pipe.execute()
    except cache.errors as exc:
        log.warning("could not wake the event workers (%s); they find the events at their next poll",
                    exc.__class__.__name__)
        return False
    return True


def init_app(app: Flask) -> None:
    """At the end of a request that wrote events (or whose plugins did): deliver them
    (``inline``) or wake the workers (``worker``)."""
    from ..db import get_database
    from ..runtime import get_runtime
    from .outbox import deliver_pending

    delivery_mode(app.config)  # a wrong value stops the start, naming the setting

    @app.teardown_request
    def _deliver(exc: BaseException | None) -> None:
        runtime = get_runtime(app)
        if exc is not None or not (g.pop("canopy_events", False) or runtime.take_noted_events()):
            return
        if delivery_mode(app.config) == WORKER:
            wake_workers(app)
            return
        try:
            deliver_pending(runtime, get_database(app))
        except Exception:  # noqa: BLE001 - they stay pending and are tried again; never fail the answer
            app.logger.exception("event delivery failed; events stay pending")
