"""Which origin serves what: the host's pages on the host's origin, each mini-program's
content (its pages, static files and API) on an origin of its own.

The host's public origin is that of ``OAUTH_ISSUER`` (the host's public base URL).
A mini-program's origin is ``MINIPROGRAM_ORIGIN`` with ``{plugin}`` replaced by its id and
``{port}`` by the host's port: in development ``http://{plugin}.mp.localhost:{port}`` (browsers
resolve every ``*.localhost`` name to the loopback address, so the same server answers), in
production ``https://{plugin}.mp.bank-apps.example`` — a separate registrable domain, so the
host's cookies never reach a mini-program and no mini-program shares a site with the host.

:class:`OriginRouter` sits in front of the app's routing: a request whose ``Host`` names a
mini-program's origin is routed under the internal prefix ``/_mp/<plugin_id>`` (and only
there), every other request as it came. The content views check the mark it leaves
(:func:`served_plugin_id`), so plugin content is never served on the host's origin and host
pages never on a plugin's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from .services import is_plugin_id

#: Where the content routes live inside the app; only :class:`OriginRouter` routes there.
INTERNAL_PREFIX = "/_mp"
ENVIRON_KEY = "canopy.miniprogram"
ORIGINAL_PATH_KEY = "canopy.miniprogram.path"
DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginSettingError(ValueError):
    """``MINIPROGRAM_ORIGIN`` or ``OAUTH_ISSUER`` cannot give the origins."""


@dataclass(frozen=True)
class Origins:
    """The host's origin and the shape of the mini-programs' origins."""

    host: str  # e.g. http://127.0.0.1:8000
    template: str  # e.g. http://{plugin}.mp.localhost:8000 (port filled in)
    pattern: re.Pattern[str]  # the ``Host`` header of a mini-program's origin

    def plugin(self, plugin_id: str) -> str:
        """The origin of ``plugin_id``'s content."""
        return self.template.replace("{plugin}", plugin_id)

    def plugin_for_host(self, host_header: str | None) -> str | None:
        """The plugin whose origin a request's ``Host`` header names, or None."""
        if not host_header or len(host_header) > 300:
            return None
        found = self.pattern.fullmatch(host_header.lower())
        if found is None or not is_plugin_id(found.group("plugin")):
            return None
        return found.group("plugin")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise OriginSettingError(f"{url!r} is not an http(s) URL")
    return parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]


def _netloc(host: str, scheme: str, port: int) -> str:
    return host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"


@lru_cache(maxsize=16)
def build(issuer: str, template: str) -> Origins:
    """Read the two settings (cached: they do not change while the app runs)."""
    scheme, host, port = _origin(issuer)
    host_origin = f"{scheme}://{_netloc(host, scheme, port)}"
    if template.count("{plugin}") != 1 or set(re.findall(r"\{(\w*)\}", template)) - {"plugin", "port"}:
        raise OriginSettingError("MINIPROGRAM_ORIGIN must hold {plugin} once and no other placeholder than {port}")
    filled = template.replace("{port}", str(port)).replace("{plugin}", "plugin-id")
    plugin_scheme, plugin_host, plugin_port = _origin(filled)
    if "plugin-id" not in plugin_host or urlsplit(filled).path not in ("", "/"):
        raise OriginSettingError("MINIPROGRAM_ORIGIN must be an origin with {plugin} in its host name")
    netloc = _netloc(plugin_host, plugin_scheme, plugin_port).replace("plugin-id", "{plugin}")
    before, after = netloc.split("{plugin}")
    pattern = re.compile(re.escape(before) + r"(?P<plugin>[a-z0-9.-]{1,64})" + re.escape(after))
    if pattern.fullmatch(_netloc(host, scheme, port)):
        raise OriginSettingError("the host's own origin (OAUTH_ISSUER) must not look like a mini-program's origin")
    plugin_template = f"{plugin_scheme}://{netloc}"
    return Origins(host=host_origin, template=plugin_template, pattern=pattern)


def origins_of(config: Mapping[str, Any]) -> Origins:
    """The origins of an app's configuration."""
    return build(str(config["OAUTH_ISSUER"]).rstrip("/"), str(config["MINIPROGRAM_ORIGIN"]))


def current_origins() -> Origins:
    """The origins of the running app."""
    return origins_of(current_app.config)


def served_plugin_id() -> str | None:
    """The mini-program whose origin this request came to (None: the host's origin)."""
    return request.environ.get(ENVIRON_KEY)


def original_path() -> str:
    """The path the client asked for (on a plugin's origin: without the internal prefix)."""
    return request.environ.get(ORIGINAL_PATH_KEY) or request.path


class OriginRouter:
    """WSGI middleware: requests to a mini-program's origin are routed to its content routes.

    It runs inside ``ProxyFix`` (when the host trusts proxies), so it reads the ``Host`` the
    client asked for.
    """

    def __init__(self, app: Callable, origins: Origins) -> None:
        self.app = app
        self.origins = origins

    def __call__(self, environ: dict, start_response: Callable):
        environ.pop(ENVIRON_KEY, None)
        environ.pop(ORIGINAL_PATH_KEY, None)
        host = str(environ.get("HTTP_HOST") or "").lower()
        if len(host) <= 300 and self.origins.pattern.fullmatch(host):
            # A mini-program's origin (perhaps with a malformed id, which then names nothing):
            # only content routes there, never a page of the host's.
            plugin_id = self.origins.plugin_for_host(host) or ""
            environ[ENVIRON_KEY] = plugin_id
            environ[ORIGINAL_PATH_KEY] = environ.get("PATH_INFO") or "/"
            environ["PATH_INFO"] = f"{INTERNAL_PREFIX}/{plugin_id or '-'}{environ.get('PATH_INFO') or '/'}"
        return self.app(environ, start_response)


def install(app: Flask) -> None:
    """Put :class:`OriginRouter` in front of ``app``'s routing (inside ``ProxyFix`` if any)."""
    if app.extensions.get("canopy.origin_router"):
        return
    origins = origins_of(app.config)  # refuse a bad setting at start, not at the first request
    from werkzeug.middleware.proxy_fix import ProxyFix

    outer = app.wsgi_app
    if isinstance(outer, ProxyFix):
        outer.app = OriginRouter(outer.app, origins)
    else:
        app.wsgi_app = OriginRouter(outer, origins)  # type: ignore[method-assign]
    app.extensions["canopy.origin_router"] = True
