"""A plugin's :class:`~canopy_sdk.Page` as HTML, with the host's helpers and limits.

Where a template is rendered follows where its plugin runs. An in-process (bank or
branch) plugin's template is rendered here, in the request's thread. A sandboxed
(partner) plugin's template is rendered by its worker, inside the jail and within the
``canopy_page`` call's budget (docs/sandbox.md, "Pages"): its page arrives as ready HTML,
and a template arriving from the sandbox is refused, never rendered here. Both sides
render with :mod:`sandbox.pages` — the SDK's sandboxed, autoescaping environment and the
same link helpers — so one template gives the same HTML either way. Whatever the source,
the host checks the result (a string of at most :data:`MAX_PAGE_BYTES`); its framing
(the bridge script) and Content-Security-Policy are added by :mod:`.miniprogram`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from canopy_sdk import rendering
from canopy_sdk.errors import InvalidResult
from canopy_sdk.types import Page
from sandbox import pages

#: The largest page the host serves, in bytes of UTF-8.
MAX_PAGE_BYTES = pages.MAX_PAGE_BYTES

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


def render_page(plugin_id: str, folder: Path, page: Page, *, branch: dict[str, str], locale: str,
                in_process: bool = True, version: str | None = None) -> str:
    """Return the page's HTML, checked against the host's limits.

    ``in_process`` says whether the plugin runs in this process; a sandboxed plugin's page
    must arrive rendered (``html``), and a template from it raises
    :class:`~canopy_sdk.errors.InvalidResult` instead of being rendered outside its budget.
    Template errors and an oversized page raise too (the caller counts them as the plugin's).
    """
    if page.html is not None:
        return pages.check_size(page.html, max_bytes=MAX_PAGE_BYTES)
    if not in_process:
        raise InvalidResult(f"plugin {plugin_id} runs in the sandbox: its pages must arrive rendered")
    return pages.render(environment(plugin_id, folder), page, pages.template_helpers(plugin_id, branch, locale, version),
                        max_bytes=MAX_PAGE_BYTES)
