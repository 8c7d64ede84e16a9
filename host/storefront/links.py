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
    return f"/mp/{quote(plugin_id)}{_path(parts.path)}?{urlencode(query)}"


def static_url(plugin_id: str, filename: str) -> str:
    """The address of a file in the plugin's ``static/`` folder."""
    return f"/mp/{quote(plugin_id)}/static{_path(filename)}"


def api_url(plugin_id: str, path: str, branch: str, locale: str) -> str:
    """The address of the plugin's ``canopy_api`` endpoint for ``path``."""
    return f"/mp/{quote(plugin_id)}/api{_path(path)}?{urlencode([('branch', branch), ('lang', locale)])}"


def _path(path: str) -> str:
    """``path`` quoted, starting with '/', without '.' or '..' segments: once a browser
    resolved those, the address would lead out of the plugin's own (or out of its
    ``static/`` or ``api/`` part)."""
    segments = [segment for segment in path.split("/") if segment not in (".", "..")]
    return quote("/" + "/".join(segments).lstrip("/"))
