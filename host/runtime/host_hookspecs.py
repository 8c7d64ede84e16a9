"""Hooks for the bank's own trusted, in-process extensions of the host.

These live on the same plugin manager as the mini-programs' hooks; the host's
defaults are registered as plugins that implement them (see ``host.defaults``).
"""

from __future__ import annotations

from canopy_sdk.markers import hookspec


@hookspec
def canopy_scope_definitions() -> list[dict]:
    """Return scope definitions to add to the scope catalog.

    Called once when the app starts. Each definition is a dict with ``name``
    (``resource:action``), ``description`` (``{"zh": ..., "en": ...}``),
    ``sensitivity`` (``low`` | ``medium`` | ``high``) and ``needs_consent`` (bool).
    Results of all implementations are combined; a name defined twice stops the start.
    """
