"""Rendering a plugin's :class:`~canopy_sdk.Page` templates.

Each plugin gets its own sandboxed Jinja environment rooted at its ``templates/``
folder, with autoescaping on: a template can reach only the values it is given and
the helpers below, never the host's objects or files.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from canopy_sdk.types import Page
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import links

_environments: dict[tuple[str, str], ImmutableSandboxedEnvironment] = {}
_lock = threading.Lock()


def environment(plugin_id: str, folder: Path) -> ImmutableSandboxedEnvironment:
    """The (cached) template environment of one plugin folder."""
    key = (plugin_id, str(folder))
    env = _environments.get(key)
    if env is None:
        with _lock:
            env = _environments.get(key)
            if env is None:
                env = ImmutableSandboxedEnvironment(
                    loader=FileSystemLoader(str(folder / "templates")),
                    autoescape=select_autoescape(default=True, default_for_string=True),
                    undefined=StrictUndefined,
                    auto_reload=False,
                )
                _environments[key] = env
    return env


def render_page(plugin_id: str, folder: Path, page: Page, *, branch: dict[str, str], locale: str) -> str:
    """Return the page's HTML. Template errors propagate (the caller counts them as the plugin's)."""
    if page.html is not None:
        return page.html
    assert page.template is not None
    code = branch["code"]
    helpers: dict[str, Any] = {
        "page_url": lambda path="/", **query: links.page_url(plugin_id, _with_query(path, query), code, locale),
        "static_url": lambda filename: links.static_url(plugin_id, filename),
        "api_url": lambda path: links.api_url(plugin_id, path, code, locale),
        "locale": locale,
        "branch": branch,
        "plugin_id": plugin_id,
    }
    template = environment(plugin_id, folder).get_template(page.template)
    return template.render({**page.context, **helpers})


def _with_query(path: str, query: dict[str, Any]) -> str:
    if not query:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode({k: str(v) for k, v in query.items()})}"
