"""The health of gray versions, and the automatic rollback.

Every host process counts the hook calls of the published versions it serves and how many
failed (:class:`HealthRecorder`), and adds them to ``release_health`` (one row per plugin,
version and minute, summed over processes) at most every ``flush_seconds``. After each flush,
and whenever ``canopy worker`` looks (:func:`auto_rollback`), each gray version is measured
over the last ``window_seconds`` since it went gray:

* **error rate** — failed hook calls ÷ hook calls (a failure: the plugin raised, overran its
  budget, answered something invalid, or its sandbox worker died), once there are
  ``min_calls`` calls;
* **payment failure rate** — payments refused or failed ÷ payments decided, of the intents
  the plugin created in the window for customers its gray rule selects, once there are
  ``min_payments`` decided.

When either passes its threshold the gray version is rolled back at once by the host
(``system:auto-rollback``), with the figures as the evidence in the version's history, the
audit log and the publisher's notification. Only the gray version that was measured is ever
rolled back: a process that finds it gone (another process acted first) does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..db import Database, utcnow
from ..identity.models import Customer
from ..payments.models import IntentState, PaymentIntent
from . import releases
from .errors import PublishingRefused
from .models import PluginRelease, ReleaseHealth
from ..storefront.models import CustomerTag
from .rollout import Audience, rule_from_json, selected

log = logging.getLogger("canopy.publishing")


@dataclass(frozen=True)
class Thresholds:
    """When a gray version is rolled back automatically (``RELEASE_AUTO_ROLLBACK``)."""

    window_seconds: float = 600.0
    min_calls: int = 50
    max_error_rate: float = 0.05
    min_payments: int = 20
    max_payment_failure_rate: float = 0.20
    flush_seconds: float = 10.0
    enabled: bool = True

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | None) -> "Thresholds":
        """The thresholds from the app's configuration (unknown keys refused, naming them)."""
        value = dict(value or {})
        fields = cls.__dataclass_fields__
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ValueError(f"it may set only {', '.join(sorted(fields))}; got {', '.join(unknown)}")
        for name, given in value.items():
            kind = {"int": int, "float": float, "bool": bool}[str(fields[name].type)]
            if isinstance(given, bool) != (kind is bool) or not isinstance(given, (int, float)) or given < 0:
                raise ValueError(f"{name} must be a {'true or false' if kind is bool else 'number of at least 0'}, "
                                 f"got {given!r}")
            value[name] = kind(given)
        return cls(**value)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class HealthRecorder:
    """This process's counts of published versions' hook calls, written out every
    ``flush_seconds`` by the thread that notes a call after the interval passed."""

    def __init__(self, database: Database, thresholds: Thresholds,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.thresholds = thresholds
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, datetime], list[int]] = defaultdict(lambda: [0, 0])
        self._next_flush = clock() + thresholds.flush_seconds

    def note(self, plugin_id: str, version: str, ok: bool) -> None:
        """Count one call of ``plugin_id`` ``version`` (``ok``: it answered well)."""
        key = (plugin_id, version, _minute(utcnow()))
        with self._lock:
            counts = self._counts[key]
            counts[0] += 1
            counts[1] += 0 if ok else 1
            due = self._clock() >= self._next_flush
        if due:
            self.flush()

    def flush(self) -> list[str]:
        """Write the counts out, then roll back the gray versions past a threshold; return
        their plugin ids. A failure to write is logged; the counts are kept for the next flush."""
        with self._lock:
            taken, self._counts = self._counts, defaultdict(lambda: [0, 0])
            self._next_flush = self._clock() + self.thresholds.flush_seconds
        try:
            if taken:
                with self.database.transaction(write=True) as session:
                    add_counts(session, taken)
        except Exception:
            log.exception("release health: writing the counts failed; kept for the next flush")
            with self._lock:
                for key, (calls, errors) in taken.items():
                    self._counts[key][0] += calls
                    self._counts[key][1] += errors
            return []
        return auto_rollback(self.database, self.thresholds) if self.thresholds.enabled else []


def add_counts(session: Session, counts: Mapping[tuple[str, str, datetime], list[int]]) -> None:
    """Add calls and errors to ``release_health`` (inserting or adding to each minute's row)."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ReleaseHealth)
    for (plugin_id, version, minute), (calls, errors) in sorted(counts.items()):
        statement = insert.values(plugin_id=plugin_id, version=version, minute=minute, calls=calls, errors=errors,
                                  payments=0, payment_failures=0)
        session.execute(statement.on_conflict_do_update(
            index_elements=["plugin_id", "version", "minute"],
            set_={"calls": ReleaseHealth.calls + calls, "errors": ReleaseHealth.errors + errors}))


def measure(session: Session, release: PluginRelease, now: datetime, window: timedelta) -> dict[str, Any]:
    """The gray version's figures over the window (since it went gray, at most ``window``)."""
    since = max(release.gray_since or now - window, now - window)
    calls, errors = session.execute(
        select(func.coalesce(func.sum(ReleaseHealth.calls), 0), func.coalesce(func.sum(ReleaseHealth.errors), 0))
        .where(ReleaseHealth.plugin_id == release.plugin_id, ReleaseHealth.version == release.gray,
               ReleaseHealth.minute >= _minute(since))).one()
    decided, failed = _gray_payments(session, release, since)
    return {"version": release.gray, "since": since.isoformat(timespec="seconds"),
            "until": now.isoformat(timespec="seconds"), "calls": int(calls), "errors": int(errors),
            "error_rate": round(errors / calls, 4) if calls else None, "payments": decided,
            "payment_failures": failed, "payment_failure_rate": round(failed / decided, 4) if decided else None}


def _gray_payments(session: Session, release: PluginRelease, since: datetime) -> tuple[int, int]:
    """Payments decided and failed since ``since``, of the intents the plugin created for the
    customers its gray rule selects: counted per customer in the database (one row per paying
    customer, however many they paid), the rule applied to each customer here, and the tags it
    names read for all of them at once."""
    rule = rule_from_json(release.gray_rule)
    decided_states = (IntentState.SUCCEEDED, IntentState.FAILED)
    paying = (PaymentIntent.plugin_id == release.plugin_id, PaymentIntent.created_at >= since,
              PaymentIntent.state.in_(decided_states))
    rows = session.execute(
        select(PaymentIntent.customer_id, Customer.branch_code, func.count(),
               func.sum(case((PaymentIntent.state == IntentState.FAILED, 1), else_=0)))
        .join(Customer, Customer.id == PaymentIntent.customer_id).where(*paying)
        .group_by(PaymentIntent.customer_id, Customer.branch_code)).all()
    tags: dict[str, list[str]] = defaultdict(list)
    if rule.tags and rows:
        for customer_id, tag in session.execute(
                select(CustomerTag.customer_id, CustomerTag.tag)
                .where(CustomerTag.tag.in_(sorted(rule.tags)),
                       CustomerTag.customer_id.in_(select(PaymentIntent.customer_id).where(*paying)))):
            tags[customer_id].append(tag)
    decided = failed = 0
    for customer_id, branch, count, failures in rows:
        if selected(rule, release.plugin_id, release.gray, Audience(customer_id, branch, lambda who: tags.get(who, ()))):
            decided += count
            failed += int(failures or 0)
    return decided, failed


def verdict(figures: Mapping[str, Any], thresholds: Thresholds) -> str | None:
    """Why the figures call for a rollback, or None."""
    if figures["calls"] and figures["calls"] >= thresholds.min_calls and figures["error_rate"] > thresholds.max_error_rate:
        return (f"error rate {figures['error_rate']:.1%} over {figures['calls']} calls passed "
                f"{thresholds.max_error_rate:.1%}")
    if (figures["payments"] and figures["payments"] >= thresholds.min_payments
            and figures["payment_failure_rate"] > thresholds.max_payment_failure_rate):
        return (f"payment failure rate {figures['payment_failure_rate']:.1%} over {figures['payments']} payments "
                f"passed {thresholds.max_payment_failure_rate:.1%}")
    return None


def auto_rollback(database: Database, thresholds: Thresholds) -> list[str]:
    """Measure every gray version and roll back those past a threshold; return their plugin ids."""
    now = utcnow()
    window = timedelta(seconds=thresholds.window_seconds)
    with database.transaction() as session:
        grays = [(row.plugin_id, row.gray, measure(session, row, now, window))
                 for row in session.scalars(select(PluginRelease).where(PluginRelease.gray.is_not(None),
                                                                        PluginRelease.suspended_at.is_(None)))]
    rolled = []
    for plugin_id, gray, figures in grays:
        reason = verdict(figures, thresholds)
        if reason is None:
            continue
        try:
            with database.transaction(write=True) as session:
                releases.rollback(session, releases.AUTO_ROLLBACK, plugin_id, reason=f"automatic rollback: {reason}",
                                  evidence=figures, gray=gray)
        except PublishingRefused as exc:  # another process rolled it back first, or it changed meanwhile
            log.info("release health: %s %s not rolled back here: %s", plugin_id, gray, exc.reason)
            continue
        log.warning("release health: %s %s rolled back automatically: %s", plugin_id, gray, reason,
                    extra={"plugin": plugin_id})
        rolled.append(plugin_id)
    return rolled


#: The app extension holding the process's :class:`HealthRecorder`.
EXTENSION = "canopy.release_health"


def init_app(app, runtime) -> HealthRecorder:
    """Count the calls of the published versions ``runtime`` serves, for the automatic rollback
    (``RELEASE_AUTO_ROLLBACK`` sets the thresholds; ``{"enabled": false}`` only measures)."""
    from ..config import ConfigError

    try:
        thresholds = Thresholds.from_config(app.config.get("RELEASE_AUTO_ROLLBACK"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"RELEASE_AUTO_ROLLBACK: {exc}") from None
    recorder = HealthRecorder(runtime.database, thresholds)
    runtime.observe = recorder.note
    app.extensions[EXTENSION] = recorder
    return recorder
