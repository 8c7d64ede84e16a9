"""Shared helpers: timing loops, statistics, tables and the machine description.

Every benchmark reports its figures against a baseline measured in the same run, so
the ratios mean something on any machine; the absolute numbers only describe this one.
"""

from __future__ import annotations

import gc
import importlib.metadata
import math
import os
import platform
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Stats:
    """Median and 95th percentile (nearest rank) of a list of samples, in seconds."""

    median: float
    p95: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stats":
        if not samples:
            raise ValueError("no samples")
        return cls(statistics.median(samples), percentile(samples, 95), len(samples))


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by nearest rank (with fewer than 20 samples, p95 is the maximum)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _calibrate(fn: Callable[[], object], target_s: float, max_loops: int) -> int:
    fn()  # warm up (first call: lazy pools, caches)
    loops = 1
    while loops < max_loops:
        if _timed_loop(fn, loops) >= target_s:
            break
        loops *= 2
    return loops


def time_per_call(
    cases: Mapping[str, Callable[[], object]],
    *,
    repeats: int = 31,
    target_s: float = 0.01,
    max_loops: int = 100_000,
    max_total_s: float = 20.0,
) -> dict[str, Stats]:
    """Time each case's ``fn()`` per call, as :mod:`timeit` does (a loop of ``loops`` calls
    timed with the garbage collector off, ``loops`` chosen so one loop takes about
    ``target_s``), ``repeats`` times.

    The cases are measured in turn within each repeat (a, b, c, a, b, c, …) rather than
    one after the other, so a slow spell of the machine falls on all of them alike and
    the ratios between them stay fair. Stops early (after at least 5 repeats) once
    ``max_total_s`` has passed, so no measurement runs away.
    """
    loops = {key: _calibrate(fn, target_s, max_loops) for key, fn in cases.items()}
    samples: dict[str, list[float]] = {key: [] for key in cases}
    deadline = time.perf_counter() + max_total_s
    for done in range(1, repeats + 1):
        for key, fn in cases.items():
            samples[key].append(_timed_loop(fn, loops[key]) / loops[key])
        if done >= 5 and time.perf_counter() > deadline:
            break
    return {key: Stats.of(values) for key, values in samples.items()}


def _timed_loop(fn: Callable[[], object], loops: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(loops):
            fn()
        return time.perf_counter() - started
    finally:
        if enabled:
            gc.enable()


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as ``12.3×``."""
    if baseline <= 0:
        return "n/a"
    r = value / baseline
    return f"{r:,.2f}×" if r < 100 else f"{r:,.0f}×"


def us(seconds: float) -> str:
    """Seconds as microseconds, three significant figures or so."""
    value = seconds * 1e6
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def ms(seconds: float) -> str:
    """Seconds as milliseconds."""
    value = seconds * 1e3
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, align: str | None = None) -> str:
    """A plain-text table (Markdown pipe syntax, so it can be pasted into the docs)."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    align = align or ("l" + "r" * (len(headers) - 1))

    def line(cells: Sequence[str]) -> str:
        out = []
        for cell, width, a in zip(cells, widths, align):
            out.append(cell.ljust(width) if a == "l" else cell.rjust(width))
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line([str(h) for h in headers]), rule, *(line(r) for r in rows)])


def heading(title: str) -> None:
    """Print a benchmark's title."""
    print()
    print(f"## {title}")
    print(flush=True)


def note(text: str) -> None:
    """Print a line of explanation under a table."""
    print(text, flush=True)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine shows up here)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [
        ("cores (nproc)", str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())),
        ("cpu", cpu),
        ("os", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("sqlite", sqlite3.sqlite_version),
        ("load average at start", load_average()),
        (
            "packages",
            ", ".join(
                f"{name} {_version(name)}" for name in ("pluggy", "Flask", "SQLAlchemy", "gunicorn", "Jinja2", "Werkzeug")
            ),
        ),
    ]


def print_machine() -> None:
    """Print the machine description as a table."""
    heading("Machine")
    print(table(["", ""], machine(), align="ll"))
    print(flush=True)
