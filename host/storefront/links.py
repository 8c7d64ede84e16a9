"""Addresses of a mini-program's pages, static files and API, for one branch and locale.

Two kinds: the customer opens a mini-program through the host's shell (``page_url``:
``/mp/<id>/<path>`` on the host's origin); inside the shell's frame the plugin's own pages,
files and API live on the plugin's origin (``content_path``, ``static_path``, ``api_path``:
paths of that origin).
"""

from __future__ import annotations

from urllib.parse import quote

# The addresses of a plugin's own origin are built by the same functions in the sandbox's
# worker (which renders partner pages and never sees the host's code) and here.
from sandbox.pages import HOST_PARAMS, api_path, content_path, static_path

__all__ = ["HOST_PARAMS", "api_path", "content_path", "page_url", "static_path"]


def page_url(plugin_id: str, link: str, branch: str, locale: str) -> str:
    """The address, on the host's origin, of the shell showing a page of ``plugin_id``."""
    return f"/mp/{quote(plugin_id)}{content_path(link, branch, locale)}"
