"""Running a submitted version's pre-review after the submit has committed.

Submitting only moves a draft to ``submitted``. The pre-review — up to a couple of minutes with
the package's own tests — then runs outside any write transaction: holding SQLite's write lock
(or the version's row lock) that long would stop every other writer of the instance. Three steps:

1. **claim** (a short write transaction): the version, still ``submitted``, is held until
   now + :func:`claim_time` — unless another runner holds it;
2. **run** :func:`host.publishing.prereview.run` (which writes nothing) in a read transaction;
3. **record** (a short write transaction): the report is stored and the version passes to
   ``pre_review`` or is ``rejected`` — only while it is still ``submitted`` and still this
   runner's claim, so a runner that overran its claim and was replaced records nothing.

Where it runs is ``PREREVIEW_RUNS``: ``request`` (the default: the submitting request runs it
right after committing and answers with the outcome) or ``worker`` (the request answers at once
with ``submitted`` and wakes ``canopy worker``, which runs it). In both modes the worker also takes
any submitted version whose claim ran out — a request that died half way, or a pre-review that
failed unexpectedly — so no version stays ``submitted``; such a retry waits for the claim to run out.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Mapping

from flask import Flask
from sqlalchemy import or_, select

from ..config import one_of
from ..db import Database, get_database, utcnow
from . import lifecycle, prereview
from .actors import PRECHECK
from .lifecycle import Status
from .models import PackageVersion

log = logging.getLogger("canopy.publishing")

REQUEST, WORKER = "request", "worker"
MODES = (REQUEST, WORKER)
#: A claim lasts the package tests' time limit plus this (the other checks, the smoke render).
CLAIM_MARGIN = timedelta(seconds=120)


def mode(config: Mapping[str, Any]) -> str:
    """``PREREVIEW_RUNS`` (``request`` or ``worker``); :class:`ConfigError` for anything else."""
    return one_of(config, "PREREVIEW_RUNS", MODES)


def settings_for(app: Flask) -> prereview.Settings:
    """The pre-review's settings in ``app``: the hooks' budgets of its runtime."""
    from ..runtime import get_runtime

    return prereview.Settings(hook_budget=get_runtime(app).invoker.budget)


def claim_time(settings: prereview.Settings) -> timedelta:
    """How long a runner holds a version: long enough for every check to finish."""
    return timedelta(seconds=settings.tests_timeout) + CLAIM_MARGIN


def claim(database: Database, until: datetime, plugin_id: str | None = None,
          version: str | None = None) -> tuple[str, str] | None:
    """Hold a submitted version nobody holds (the one named, or the longest waiting) until
    ``until``; return its (plugin id, version), or None when there is none to take."""
    now = utcnow()
    query = select(PackageVersion).where(
        PackageVersion.status == Status.SUBMITTED,
        or_(PackageVersion.prereview_claimed_until.is_(None), PackageVersion.prereview_claimed_until < now))
    if plugin_id is not None:
        query = query.where(PackageVersion.plugin_id == plugin_id, PackageVersion.version == version)
    # SKIP LOCKED: a version another runner is claiming right now is left to it.
    query = query.order_by(PackageVersion.updated_at, PackageVersion.pk).limit(1).with_for_update(skip_locked=True)
    with database.transaction(write=True) as session:
        row = session.scalars(query).first()
        if row is None:
            return None
        row.prereview_claimed_until = until
        return row.plugin_id, row.version


def run(app: Flask, plugin_id: str | None = None, version: str | None = None,
        settings: prereview.Settings | None = None) -> tuple[str, str] | None:
    """Claim, run and record the pre-review of one submitted version — the one named, or the
    longest waiting; return the version pre-reviewed, or None when there was none to take."""
    from .services import package_store

    database = get_database(app)
    settings = settings or settings_for(app)
    until = utcnow() + claim_time(settings)
    claimed = claim(database, until, plugin_id, version)
    if claimed is None:
        return None
    from ..runtime import get_runtime

    with database.transaction() as session:
        row = lifecycle.find(session, *claimed)
        report = prereview.run(session, row, catalog=get_runtime(app).catalog, root=package_store(app),
                               settings=settings)
    _record(database, claimed, until, report)
    return claimed


def _record(database: Database, claimed: tuple[str, str], until: datetime, report: dict[str, Any]) -> None:
    with database.transaction(write=True) as session:
        row = session.scalars(select(PackageVersion).where(PackageVersion.plugin_id == claimed[0],
                                                           PackageVersion.version == claimed[1])
                              .with_for_update()).one()
        if row.status != Status.SUBMITTED or row.prereview_claimed_until != until:
            log.warning("pre-review of %s %s finished after its claim passed to another runner; not recorded",
                        *claimed, extra={"plugin": claimed[0]})
            return
        row.prereview, row.prereview_claimed_until = report, None
        if report["passed"]:
            lifecycle.apply(session, PRECHECK, *claimed, "pass_precheck")
        else:
            lifecycle.apply(session, PRECHECK, *claimed, "fail_precheck", reason=prereview.summary(report))


def after_submit(app: Flask, plugin_id: str, version: str) -> None:
    """What follows a committed submit: the pre-review now (``request``; a failure of the
    pre-review itself is logged and left to the worker's retry), or a wake-up for the workers
    (``worker``)."""
    if mode(app.config) == REQUEST:
        try:
            run(app, plugin_id, version)
        except Exception:  # noqa: BLE001 - the submit stands; the worker retries once the claim runs out
            log.exception("pre-review of %s %s failed; it is retried when its claim runs out", plugin_id, version,
                          extra={"plugin": plugin_id})
    else:
        from ..events import wake_workers

        wake_workers(app)
