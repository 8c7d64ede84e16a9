"""The ``/api/v1`` JSON API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")

from . import openapi, plugins, publishing, releases  # noqa: E402,F401  (routes register on bp)
