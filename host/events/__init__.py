"""Events: the transactional outbox and their delivery to plugins (docs/payments.md, "Events")."""

from __future__ import annotations

from flask import Flask, g


def note_emitted() -> None:
    """Tell the current request that it wrote events: they are delivered when it ends."""
    g.canopy_events = True


def init_app(app: Flask) -> None:
    """Deliver pending events at the end of a request that wrote some (or whose plugins did)."""
    from ..db import get_database
    from ..runtime import get_runtime
    from .outbox import deliver_pending

    @app.teardown_request
    def _deliver(exc: BaseException | None) -> None:
        runtime = get_runtime(app)
        if exc is None and (g.pop("canopy_events", False) or runtime.take_noted_events()):
            try:
                deliver_pending(runtime, get_database(app))
            except Exception:  # noqa: BLE001 - they stay pending and are tried again; never fail the answer
                app.logger.exception("event delivery failed; events stay pending")
