"""Rendering a plugin's :class:`~canopy_sdk.Page` templates, with the host's helpers.

The environment and the rendering itself are the SDK's (:mod:`canopy_sdk.rendering`), so
a page renders here exactly as in the plugin author's tests; this module caches one
environment per plugin folder and supplies the real addresses.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from canopy_sdk import rendering
from canopy_sdk.types import Page

from . import links

_environments: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def environment(plugin_id: str, folder: Path):
    """The (cached) template environment of one plugin folder."""
    key = (plugin_id, str(folder))
    env = _environments.get(key)
    if env is None:
        with _lock:
            env = _environments.setdefault(key, rendering.template_environment(folder))
    return env


def render_page(plugin_id: str, folder: Path, page: Page, *, branch: dict[str, str], locale: str) -> str:
    """Return the page's HTML. Template errors propagate (the caller counts them as the plugin's)."""
    code = branch["code"]
    helpers: dict[str, Any] = {
        # Paths of the plugin's own origin, where its pages are served (inside the shell's frame).
        "page_url": lambda path="/", **query: links.content_path(_with_query(path, query), code, locale),
        "static_url": links.static_path,
        "api_url": lambda path: links.api_path(path, code, locale),
        "locale": locale,
        "branch": branch,
        "plugin_id": plugin_id,
    }
    return rendering.render_page(environment(plugin_id, folder), page, helpers)


def _with_query(path: str, query: dict[str, Any]) -> str:
    if not query:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode({k: str(v) for k, v in query.items()})}"
