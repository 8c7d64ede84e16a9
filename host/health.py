"""Liveness (``/healthz``) and readiness (``/readyz``)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from .db import get_database
from .problems import Problem

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and answering."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The process can serve: the database answers."""
    try:
        with get_database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise Problem(503, "Not ready", f"database unreachable: {exc.__class__.__name__}") from None
    return jsonify(status="ready", checks={"database": "ok"})
