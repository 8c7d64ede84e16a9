"""The hooks a mini-program implements: Canopy's whole server-side contract.

The host calls each hook **per plugin**: one plugin's result never mixes with
another's, and each call has a time budget. A plugin that raises, runs past its
budget or returns something other than what its hook promises loses only its own
output for that call; the failure is counted and logged by the host.

Implement any subset with :data:`canopy_sdk.hookimpl`; argument names must match.
"""

from __future__ import annotations

from typing import Any, Mapping

from .context import Context
from .markers import hookspec
from .types import Event, Page, SearchHit, Tile

#: The hooks of this contract, in the order of the hook reference.
HOOK_NAMES = (
    "canopy_storefront_tiles",
    "canopy_page",
    "canopy_api",
    "canopy_on_event",
    "canopy_search",
)


@hookspec
def canopy_storefront_tiles(ctx: Context) -> list[Tile] | None:
    """Return the tiles of this plugin's zone in a storefront.

    Called when a storefront that has the plugin installed is shown, once per page
    view, for the branch ``ctx.branch`` and the visitor ``ctx.customer`` (None when
    anonymous). Return a list of at most 12 :class:`~canopy_sdk.Tile`, or None for an
    empty zone. Budget: 250 ms by default.
    """


@hookspec
def canopy_page(ctx: Context, path: str, query: Mapping[str, str]) -> Page | None:
    """Return the embedded page at ``path`` (always starting with ``/``).

    Called when a customer opens one of the plugin's pages; ``query`` holds the
    query-string parameters (first value of each). Return a
    :class:`~canopy_sdk.Page`, or None when there is no page at ``path`` (the host
    answers 404). Budget: 1 s by default.
    """


@hookspec
def canopy_api(ctx: Context, method: str, path: str, body: Any) -> Any:
    """Answer a call from the plugin's own page to its back end.

    ``method`` is the upper-case HTTP method, ``path`` starts with ``/`` and ``body``
    is the decoded JSON body (None when there is none). Return any JSON-able value
    (at most 1 MiB encoded); raise :class:`~canopy_sdk.ApiError` to answer with a
    client error. Budget: 2 s by default.
    """


@hookspec
def canopy_on_event(ctx: Context, event: Event) -> None:
    """Hear of something that happened to this plugin.

    Called after the change that caused ``event`` has been committed (payment,
    refund, consent and install events for this plugin only). The return value is
    ignored; an exception is logged and does not undo the change. Budget: 2 s.
    """


@hookspec
def canopy_search(ctx: Context, query: str) -> list[SearchHit] | None:
    """Offer results to the search centre for ``query`` (1–100 characters, trimmed).

    Return at most 20 :class:`~canopy_sdk.SearchHit`, or None. The host merges every
    plugin's hits by score, with its own catalogue results. Budget: 300 ms by default.
    """


def hook_signatures() -> dict[str, tuple[str, ...]]:
    """Return each hook's name with its argument names, as the hook reference lists them."""
    import inspect

    return {
        name: tuple(inspect.signature(globals()[name]).parameters)
        for name in HOOK_NAMES
    }
