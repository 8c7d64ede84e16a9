"""Addresses of a mini-program's pages, static files and API, for one branch and locale."""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit, parse_qsl

HOST_PARAMS = ("branch", "lang")


def page_url(plugin_id: str, link: str, branch: str, locale: str) -> str:
    """The address of a page of ``plugin_id`` (``link`` is a path inside the plugin,
    perhaps with a query string), carrying the branch and locale along."""
    parts = urlsplit(link)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in HOST_PARAMS]
    query += [("branch", branch), ("lang", locale)]
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return f"/mp/{quote(plugin_id)}{quote(path)}?{urlencode(query)}"


def static_url(plugin_id: str, filename: str) -> str:
    """The address of a file in the plugin's ``static/`` folder."""
    return f"/mp/{quote(plugin_id)}/static/{quote(filename.lstrip('/'))}"


def api_url(plugin_id: str, path: str, branch: str, locale: str) -> str:
    """The address of the plugin's ``canopy_api`` endpoint for ``path``."""
    path = path if path.startswith("/") else "/" + path
    return f"/mp/{quote(plugin_id)}/api{quote(path)}?{urlencode([('branch', branch), ('lang', locale)])}"
