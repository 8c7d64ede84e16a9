"""Request ids and JSON log lines."""

from __future__ import annotations

import json
import logging

from host.observability import HEADER, JsonFormatter, RequestIdFilter


def test_every_response_carries_a_fresh_request_id(client):
    first = client.get("/healthz").headers[HEADER]
    second = client.get("/healthz").headers[HEADER]
    assert len(first) == 32 and first != second


def test_a_sane_offered_request_id_is_kept(client):
    response = client.get("/healthz", headers={HEADER: "edge-42_abc"})
    assert response.headers[HEADER] == "edge-42_abc"


def test_a_hostile_offered_request_id_is_replaced(client):
    for offered in ("x" * 65, "a b", "id\r\nSet-Cookie: x=1", "<script>", "../.."):
        response = client.get("/healthz", headers={HEADER: offered.replace("\r\n", "")})
        assert response.headers[HEADER] != offered
        assert len(response.headers[HEADER]) == 32


def test_error_responses_carry_the_request_id_too(client):
    response = client.get("/api/v1/plugins/nope", headers={HEADER: "trace-1"})
    assert response.status_code == 404
    assert response.headers[HEADER] == "trace-1"


def test_log_records_written_during_a_request_carry_its_id(demo_app):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("canopy.test-observability")
    logger.addHandler(handler)
    try:
        with demo_app.test_request_context("/healthz", headers={HEADER: "req-7"}):
            demo_app.preprocess_request()
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    assert [r.request_id for r in records] == ["req-7", None]


def test_json_formatter_writes_one_object_with_extras():
    record = logging.LogRecord("canopy.runtime", logging.WARNING, __file__, 1, "plugin %s failed", ("x",), None)
    record.request_id = "r1"
    record.plugin = "sh.deals"
    record.payload = {"not": "plain"}
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["message"] == "plugin x failed"
    assert data["level"] == "WARNING"
    assert data["request_id"] == "r1"
    assert data["plugin"] == "sh.deals"
    assert data["payload"] == repr({"not": "plain"})
    assert data["time"].endswith("+00:00")
    assert "\n" not in line
