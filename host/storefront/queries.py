"""The query string a mini-program's page receives: the request's, less the host's own
parameters, within limits (used by the content routes and the shell alike)."""

from __future__ import annotations

from flask import request

from ..problems import Problem
from .links import HOST_PARAMS

#: At most this many query parameters reach a page, each name at most 100 and each value at
#: most MAX_QUERY_VALUE characters; more is a 400.
MAX_QUERY_PARAMS = 50
MAX_QUERY_VALUE = 2000


def plugin_query() -> dict[str, str]:
    """The query string of a page request less the host's own parameters, checked."""
    items = [(k, v) for k, v in request.args.items(multi=False) if k not in HOST_PARAMS]
    if len(items) > MAX_QUERY_PARAMS:
        raise Problem(400, "Too many query parameters", f"At most {MAX_QUERY_PARAMS} are accepted.")
    for key, value in items:
        if len(key) > 100 or len(value) > MAX_QUERY_VALUE:
            raise Problem(400, "Query parameter too long", f"Parameter {key[:100]!r} is over {MAX_QUERY_VALUE} characters.")
    return dict(items)
