"""Request ids and JSON logs.

Every request gets an id: the caller's ``X-Request-Id`` when it is a sane token
(1-64 of letters, digits, ``-`` and ``_``), else a new random one. It is echoed in the
response header and attached to every log record written while the request runs.
:class:`JsonFormatter` writes one JSON object per line (UTC time, level, logger,
message, request id and any ``extra`` fields), which ``canopy serve`` configures.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

HEADER = "X-Request-Id"
_SANE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return g.get("request_id") if has_request_context() else None


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def logging_config(level: str = "INFO") -> dict:
    """A ``logging.config.dictConfig`` that writes JSON lines with request ids to stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "host.observability.RequestIdFilter"}},
        "formatters": {"json": {"()": "host.observability.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stderr"], "propagate": False},
        },
    }


def init_app(app: Flask) -> None:
    """Give every request an id and echo it in the response."""

    @app.before_request
    def _assign_request_id() -> None:
        offered = request.headers.get(HEADER, "")
        g.request_id = offered if _SANE.match(offered) else secrets.token_hex(16)

    @app.after_request
    def _echo_request_id(response):
        response.headers[HEADER] = g.get("request_id") or ""
        return response
