"""Fixtures for the sh.deals tests: a harness, and its pages rendered as the host renders them."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from canopy_sdk import ApiError
from canopy_sdk.testing import MemoryStorage, PluginHarness

PLUGIN_FOLDER = Path(__file__).parents[1]


@pytest.fixture
def harness() -> PluginHarness:
    """A fresh harness (and so fresh storage) for each test."""
    return PluginHarness(PLUGIN_FOLDER)


@pytest.fixture
def render(harness: PluginHarness) -> Callable[..., str]:
    """Return ``render(page, locale="zh-CN")``: the page's HTML, checked by the test kit."""
    return lambda page, locale="zh-CN": harness.render(page, locale=locale)


# -- for the concurrency tests --------------------------------------------------------------


class ContendedStorage(MemoryStorage):
    """A MemoryStorage that yields the thread between a read and the next write, and counts
    lost compare-and-sets, so concurrency tests really interleave."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def get_item(self, key):
        item = super().get_item(key)
        time.sleep(0.0005)
        return item

    def compare_and_set(self, key, value, *, version, ttl=None):
        won = super().compare_and_set(key, value, version=version, ttl=ttl)
        if not won:
            self.lost += 1
        return won


def run_together(jobs):
    """Run the callables at once from a barrier; return each one's result or ApiError status."""
    barrier = threading.Barrier(len(jobs))
    outcomes = [None] * len(jobs)

    def worker(index, job):
        barrier.wait()
        try:
            outcomes[index] = job()
        except ApiError as exc:
            outcomes[index] = exc.status

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes
