"""Addresses of a mini-program's pages, static files and API, for one branch and locale.

Two kinds: the customer opens a mini-program through the host's shell (``page_url``:
``/mp/<id>/<path>`` on the host's origin); inside the shell's frame the plugin's own pages,
files and API live on the plugin's origin (``content_path``, ``static_path``, ``api_path``:
paths of that origin).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit, parse_qsl

HOST_PARAMS = ("branch", "lang")


def content_path(link: str, branch: str, locale: str) -> str:
    """The path, on the plugin's own origin, of one of its pages (``link`` is a path inside
    the plugin, perhaps with a query string), carrying the branch and locale along."""
    parts = urlsplit(link)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in HOST_PARAMS]
    query += [("branch", branch), ("lang", locale)]
    return f"{_path(parts.path)}?{urlencode(query)}"


def page_url(plugin_id: str, link: str, branch: str, locale: str) -> str:
    """The address, on the host's origin, of the shell showing a page of ``plugin_id``."""
    return f"/mp/{quote(plugin_id)}{content_path(link, branch, locale)}"


def static_path(filename: str) -> str:
    """The path, on the plugin's origin, of a file in its ``static/`` folder."""
    return f"/static{_path(filename)}"


def api_path(path: str, branch: str, locale: str) -> str:
    """The path, on the plugin's origin, of its ``canopy_api`` endpoint for ``path``."""
    return f"/api{_path(path)}?{urlencode([('branch', branch), ('lang', locale)])}"


def _path(path: str) -> str:
    """``path`` quoted, starting with '/', without '.' or '..' segments: once a browser
    resolved those, the address would lead out of the plugin's own (or out of its
    ``static/`` or ``api/`` part)."""
    segments = [segment for segment in path.split("/") if segment not in (".", "..")]
    return quote("/" + "/".join(segments).lstrip("/"))
