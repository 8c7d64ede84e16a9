"""Rendering a mini-program's page template, with the helpers every template gets.

One implementation serves both sides of the sandbox: a partner plugin's worker renders its
own pages with it, inside the jail and within the ``canopy_page`` call's budget; the host
renders the pages of in-process (bank and branch) plugins with it. The same template with
the same context therefore gives the same HTML wherever its plugin runs.

The helpers are built from facts the host already sends with every call (plugin id,
branch, locale): the addresses of the plugin's own origin — its pages, its static files,
its API — are pure functions of those, and they live here so that the worker, which never
sees the host's code, builds exactly what the host builds (``host.storefront.links`` uses
the same functions). The environment is the SDK's: Jinja's immutable sandbox, autoescaping
on, undefined names an error.

Output is produced as a stream and stops as soon as it passes :data:`MAX_PAGE_BYTES`, so a
template that writes without end is refused (an invalid result, not a fault) without first
filling memory. Standard library
and SDK only, as everything the worker imports.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from canopy_sdk.errors import InvalidResult
from canopy_sdk.types import Page

#: The largest page, in bytes of UTF-8, the host serves; a larger one is the plugin's error.
MAX_PAGE_BYTES = 1024 * 1024
#: Query parameters the host sets on every address of a plugin's origin (a plugin's own are replaced).
HOST_PARAMS = ("branch", "lang", "canopy_version")


# -- addresses on the plugin's own origin ------------------------------------------------------

def content_path(link: str, branch: str, locale: str, version: str | None = None) -> str:
    """The path, on the plugin's own origin, of one of its pages (``link`` is a path inside
    the plugin, perhaps with a query string), carrying the branch and locale along — and the
    plugin version the shell chose for its customer (``canopy_version``), when given."""
    parts = urlsplit(link)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in HOST_PARAMS]
    query += [("branch", branch), ("lang", locale)] + ([("canopy_version", version)] if version else [])
    return f"{_path(parts.path)}?{urlencode(query)}"


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


def _with_query(path: str, query: Mapping[str, Any]) -> str:
    if not query:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode({k: str(v) for k, v in query.items()})}"


# -- rendering ---------------------------------------------------------------------------------

def template_helpers(plugin_id: str, branch: Mapping[str, str], locale: str, version: str | None = None) -> dict[str, Any]:
    """The names every template of ``plugin_id`` sees besides its page's context
    (``canopy_sdk.rendering.HELPER_NAMES``): link helpers for ``branch`` (``code`` and
    ``name``) and ``locale``, and those facts themselves. Pages and static files are linked in
    the plugin ``version`` rendering them, so a customer in a gray release stays in it."""
    code = branch["code"]
    pinned = f"?{urlencode([('canopy_version', version)])}" if version else ""
    return {
        "page_url": lambda path="/", **query: content_path(_with_query(path, query), code, locale, version),
        "static_url": lambda filename: static_path(filename) + pinned,
        "api_url": lambda path: api_path(path, code, locale),
        "locale": locale,
        "branch": {"code": code, "name": branch["name"]},
        "plugin_id": plugin_id,
    }


def render(environment: Any, page: Page, helpers: Mapping[str, Any], *, max_bytes: int = MAX_PAGE_BYTES) -> str:
    """Return ``page`` as HTML: its ``html``, or its template rendered with its ``context``
    and ``helpers`` (helpers win over context keys, as in :func:`canopy_sdk.rendering.render_page`).

    Raises :class:`~canopy_sdk.errors.InvalidResult` (which crosses the sandbox by name)
    once the output passes ``max_bytes``; template errors
    propagate (they are the plugin's).
    """
    if page.html is not None:
        check_size(page.html, max_bytes=max_bytes)
        return page.html
    assert page.template is not None
    chunks, size = [], 0
    for chunk in environment.get_template(page.template).generate({**page.context, **helpers}):
        size += len(chunk.encode("utf-8"))
        if size > max_bytes:
            raise InvalidResult(f"the page {page.template} renders to more than {max_bytes} bytes")
        chunks.append(chunk)
    return "".join(chunks)


def check_size(html: Any, *, max_bytes: int = MAX_PAGE_BYTES) -> str:
    """``html`` if it is a string of at most ``max_bytes`` bytes of UTF-8; else :class:`InvalidResult`."""
    if not isinstance(html, str):
        raise InvalidResult(f"a page must be a string of HTML, got {type(html).__name__}")
    if len(html) > max_bytes or len(html.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidResult(f"the page is more than {max_bytes} bytes")
    return html
