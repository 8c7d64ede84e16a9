"""The plugin runtime: pluggy manager, loaders, registry, scoped context, hook calls."""

from __future__ import annotations

from flask import Flask, current_app

from .services import PluginRuntime


def get_runtime(app: Flask | None = None) -> PluginRuntime:
    """Return the app's :class:`PluginRuntime`."""
    return (app or current_app).extensions["canopy.runtime"]


__all__ = ["PluginRuntime", "get_runtime"]
