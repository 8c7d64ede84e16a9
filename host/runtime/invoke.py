"""Calling one plugin's hook with a time budget and error isolation.

Each call runs on a shared thread pool and is waited for up to the hook's budget.
Python cannot stop a thread, so a call that overruns is abandoned: its result is
dropped when it finally returns. To keep a hung plugin from filling the pool, each
plugin may have at most ``max_in_flight`` calls running; past that its calls fail at
once ("busy") until the stuck ones return. Every outcome is counted per plugin and
hook, and every failure is logged with the plugin id.

A hook function that keeps its own budget (:func:`keeps_budget`: a sandboxed plugin's
proxy, whose worker is killed at the deadline) needs no pool thread to be cut off: it
runs in the caller's thread, which saves the hand-off to the pool and back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from canopy_sdk.errors import ApiError, InvalidResult

log = logging.getLogger("canopy.runtime")

OK = "ok"
ERROR = "error"  #: the hook raised
TIMEOUT = "timeout"  #: the hook ran past its budget
INVALID = "invalid"  #: the hook returned something its spec does not allow
BUSY = "busy"  #: too many of the plugin's calls are still running
REJECTED = "rejected"  #: the hook answered with an ApiError (a normal client error)
MISSING = "missing"  #: the plugin does not implement the hook


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one plugin's hook call came to."""

    plugin_id: str
    hook: str
    status: str
    value: Any = None
    error: BaseException | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the hook answered with a valid value."""
        return self.status == OK


class BudgetOverrun(TimeoutError):
    """Raised by a hook function that keeps its own budget when it had to cut the call off."""


def keeps_budget(function: Callable[..., Any]) -> bool:
    """Whether ``function`` never runs past its hook's budget by itself (it is marked with a
    ``keeps_budget`` attribute), so it may run in the caller's thread."""
    return getattr(function, "keeps_budget", False) is True


def _run_here(function: Callable[..., Any], kwargs: dict[str, Any]) -> Future:
    """Run ``function`` in this thread; return its outcome as a finished future."""
    future: Future = Future()
    try:
        future.set_result(function(**kwargs))
    except BaseException as exc:  # noqa: BLE001 - judged by _finish as a pool call's would be
        future.set_exception(exc)
    return future


def _raised_by_hook(future: Future, exc: BaseException) -> bool:
    """Whether ``exc`` is what the hook itself raised (rather than the wait for it)."""
    return future.done() and not future.cancelled() and future.exception() is exc


class HookInvoker:
    """Runs plugin hook calls on a bounded pool with per-call budgets and per-plugin bulkheads."""

    def __init__(self, *, pool_size: int, max_in_flight: int, budgets_ms: Mapping[str, int]) -> None:
        self._pool_size = pool_size
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.max_in_flight = max_in_flight
        self.budgets = {hook: ms / 1000.0 for hook, ms in budgets_ms.items()}
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str, str]] = Counter()
        #: Called by :meth:`shutdown` (e.g. the sandbox stopping its workers).
        self.on_shutdown: list[Callable[[], None]] = []

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The thread pool, created on first use (after a server's fork, never before)."""
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._pool_size, thread_name_prefix="canopy-plugin")
        return self._pool

    def shutdown(self) -> None:
        """Stop the pool without waiting for abandoned calls, then run :attr:`on_shutdown`."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for stop in self.on_shutdown:
            stop()

    def budget(self, hook: str) -> float:
        """The budget in seconds for one call of ``hook``."""
        return self.budgets.get(hook, 1.0)

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        """A copy of the outcome counts: (plugin id, hook, status) → calls."""
        with self._lock:
            return dict(self.counts)

    def count(self, plugin_id: str, hook: str, status: str) -> None:
        """Count an outcome that happened outside :meth:`call` (e.g. a page's template failing)."""
        with self._lock:
            self.counts[(plugin_id, hook, status)] += 1

    def _record(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self.counts[(outcome.plugin_id, outcome.hook, outcome.status)] += 1
        if outcome.status not in (OK, REJECTED, MISSING):
            log.warning(
                "plugin %s hook %s: %s (%s)",
                outcome.plugin_id,
                outcome.hook,
                outcome.status,
                outcome.error,
                extra={"plugin": outcome.plugin_id, "hook": outcome.hook, "outcome": outcome.status},
            )
        return outcome

    def _start(self, plugin_id: str, hook: str, function: Callable[..., Any], kwargs: dict[str, Any],
               *, here: bool = False) -> Future | None:
        """Start the call on the pool — or, ``here``, run it in this thread to its end."""
        with self._lock:
            if self._in_flight[plugin_id] >= self.max_in_flight:
                return None
            self._in_flight[plugin_id] += 1
        try:
            future = _run_here(function, kwargs) if here else self.pool.submit(function, **kwargs)
        except BaseException:
            self._release(plugin_id)
            raise
        future.add_done_callback(lambda _f: self._release(plugin_id))
        return future

    def _release(self, plugin_id: str) -> None:
        with self._lock:
            self._in_flight[plugin_id] -= 1

    def in_flight(self, plugin_id: str) -> int:
        """How many of the plugin's calls are running now."""
        with self._lock:
            return self._in_flight[plugin_id]

    def _finish(
        self,
        plugin_id: str,
        hook: str,
        future: Future | None,
        check: Callable[[Any], Any],
        started: float,
        remaining: float,
    ) -> Outcome:
        if future is None:
            error = RuntimeError(f"{self.max_in_flight} calls of this plugin are still running")
            return self._record(Outcome(plugin_id, hook, BUSY, error=error))
        try:
            raw = future.result(timeout=max(remaining, 0.0))
        except FutureTimeout as exc:
            # A wait that ran out, or a function that keeps its own budget cutting itself off, is
            # an overrun; the hook's own TimeoutError is an error.
            if not _raised_by_hook(future, exc) or isinstance(exc, BudgetOverrun):
                error = TimeoutError(f"no answer within {self.budget(hook) * 1000:.0f} ms")
                return self._record(Outcome(plugin_id, hook, TIMEOUT, error=error, elapsed=time.perf_counter() - started))
            return self._record(Outcome(plugin_id, hook, ERROR, error=exc, elapsed=time.perf_counter() - started))
        except ApiError as exc:
            return self._record(Outcome(plugin_id, hook, REJECTED, error=exc, elapsed=time.perf_counter() - started))
        except InvalidResult as exc:  # e.g. a sandboxed plugin's answer that is not what its hook returns
            return self._record(Outcome(plugin_id, hook, INVALID, error=exc, elapsed=time.perf_counter() - started))
        except Exception as exc:
            return self._record(Outcome(plugin_id, hook, ERROR, error=exc, elapsed=time.perf_counter() - started))
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt… raised by the plugin's code must not end the
            # request (or the worker); one delivered to this thread itself still propagates.
            if not _raised_by_hook(future, exc):
                raise
            return self._record(Outcome(plugin_id, hook, ERROR, error=exc, elapsed=time.perf_counter() - started))
        elapsed = time.perf_counter() - started
        try:
            value = check(raw)
        except InvalidResult as exc:
            return self._record(Outcome(plugin_id, hook, INVALID, error=exc, elapsed=elapsed))
        except Exception as exc:  # a check must never let junk through as a 500
            return self._record(Outcome(plugin_id, hook, INVALID, error=exc, elapsed=elapsed))
        return self._record(Outcome(plugin_id, hook, OK, value=value, elapsed=elapsed))

    def call(
        self,
        plugin_id: str,
        hook: str,
        function: Callable[..., Any] | None,
        kwargs: dict[str, Any],
        check: Callable[[Any], Any],
    ) -> Outcome:
        """Call one plugin's ``hook`` implementation and check its result."""
        if function is None:
            return self._record(Outcome(plugin_id, hook, MISSING))
        started = time.perf_counter()
        future = self._start(plugin_id, hook, function, kwargs, here=keeps_budget(function))
        return self._finish(plugin_id, hook, future, check, started, self.budget(hook))

    def call_each(
        self,
        hook: str,
        calls: list[tuple[str, Callable[..., Any] | None, dict[str, Any]]],
        check: Callable[[Any], Any],
    ) -> list[Outcome]:
        """Call ``hook`` of several plugins at once; all share one budget of wall-clock time.

        ``calls`` holds ``(plugin_id, function, kwargs)``; outcomes come back in the same order.
        A single call that keeps its own budget runs in this thread while the pool runs the rest;
        several such calls go to the pool too, so they overlap.
        """
        started = time.perf_counter()
        own = [n for n, (_, function, _) in enumerate(calls) if function is not None and keeps_budget(function)]
        here = own[0] if len(own) == 1 else None
        started_calls: dict[int, Future | None] = {
            n: self._start(plugin_id, hook, function, kwargs)
            for n, (plugin_id, function, kwargs) in enumerate(calls) if function is not None and n != here
        }
        if here is not None:
            plugin_id, function, kwargs = calls[here]
            started_calls[here] = self._start(plugin_id, hook, function, kwargs, here=True)
        futures = [(plugin_id, started_calls.get(n), function) for n, (plugin_id, function, _) in enumerate(calls)]
        pending = [future for _, future, _ in futures if future is not None]
        if pending:
            wait(pending, timeout=self.budget(hook))
        outcomes = []
        for plugin_id, future, function in futures:
            if function is None:
                outcomes.append(self._record(Outcome(plugin_id, hook, MISSING)))
                continue
            remaining = self.budget(hook) - (time.perf_counter() - started)
            outcomes.append(self._finish(plugin_id, hook, future, check, started, remaining))
        return outcomes
