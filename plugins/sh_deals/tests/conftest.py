"""Fixtures for the sh.deals tests: a harness, and its pages rendered as the host renders them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from canopy_sdk.testing import PluginHarness

PLUGIN_FOLDER = Path(__file__).parents[1]


@pytest.fixture
def harness() -> PluginHarness:
    """A fresh harness (and so fresh storage) for each test."""
    return PluginHarness(PLUGIN_FOLDER)


@pytest.fixture
def render(harness: PluginHarness) -> Callable[..., str]:
    """Return ``render(page, locale="zh-CN")``: the page's HTML, checked by the test kit."""
    return lambda page, locale="zh-CN": harness.render(page, locale=locale)
