"""Prometheus metrics."""

from __future__ import annotations

import re

LINE = re.compile(r'^(?:# (?:HELP|TYPE) .+|[a-z_]+(?:\{[^}]*\})? \d+)$')


def test_metrics_are_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines


def test_metrics_count_plugin_calls_by_outcome(client):
    client.get("/s/SH001")
    client.get("/s/SH001")
    text = client.get("/metrics").get_data(as_text=True)
    match = re.search(
        r'canopy_plugin_calls_total\{plugin="wealth.checkup",hook="canopy_storefront_tiles",outcome="ok"\} (\d+)', text
    )
    assert match and int(match.group(1)) == 2


def test_metrics_count_loaded_and_refused_plugins(client):
    text = client.get("/metrics").get_data(as_text=True)
    # the partner plugin city.utilities is refused until the sandbox exists
    assert re.search(r'canopy_plugins\{state="refused"\} [1-9]', text)
    assert re.search(r'canopy_plugins\{state="loaded"\} [1-9]', text)


def test_metrics_count_bridge_events_by_plugin_and_kind_not_by_name(client):
    for name in ("deal.viewed", "deal.viewed", "coupon.opened"):
        assert client.post("/shell/sh.deals/events?branch=SH001", json={"event": name}).status_code == 204
    client.post("/shell/sh.deals/events?branch=SH001", json={"event": "canopy.ignored", "props": {"reason": "nonce"}})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'canopy_bridge_events_total{plugin="sh.deals",kind="track"} 3' in text
    assert 'canopy_bridge_events_total{plugin="sh.deals",kind="ignored"} 1' in text
    assert "deal.viewed" not in text  # names are the plugins' own: never labels
    lines = text.strip().splitlines()
    assert all(LINE.match(line) for line in lines), lines
