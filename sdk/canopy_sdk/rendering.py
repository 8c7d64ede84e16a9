"""Rendering a :class:`~canopy_sdk.Page` template exactly as the host does.

The host and the test kit both use these functions, so a page that renders in your
tests renders the same way in the host. Needs Jinja2 (``pip install canopy-sdk[render]``).

A template renders in a sandboxed Jinja environment rooted at the plugin's
``templates/`` folder, with autoescaping on and undefined names an error. It sees the
page's ``context`` plus the helpers the host passes (``page_url``, ``static_url``,
``api_url``, ``locale``, ``branch``, ``plugin_id``); helpers win over context keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .types import Page

#: The names the host gives every template, besides the page's context.
HELPER_NAMES = ("page_url", "static_url", "api_url", "locale", "branch", "plugin_id")


def template_environment(folder: str | Path):
    """Return a sandboxed, autoescaping Jinja environment for ``folder``'s ``templates/``."""
    try:
        from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("rendering pages needs Jinja2: pip install 'canopy-sdk[render]'") from None
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(Path(folder) / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        auto_reload=False,
    )


def render_page(environment, page: Page, helpers: Mapping[str, Any]) -> str:
    """Return ``page`` as HTML: its ``html``, or its template rendered with ``context`` and ``helpers``.

    Template errors propagate; the host counts them as the plugin's failure.
    """
    if page.html is not None:
        return page.html
    assert page.template is not None
    return environment.get_template(page.template).render({**page.context, **helpers})
