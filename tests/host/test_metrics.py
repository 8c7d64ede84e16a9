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


def test_metrics_count_each_sandboxed_plugins_workers_starts_faults_and_whether_it_is_disabled(app, tmp_path):
    """The sandbox's counts by plugin id only (real jails: tests/sandbox/test_operations.py)."""
    from host.runtime import get_runtime
    from sandbox.jail import JailSpec
    from sandbox.supervisor import FaultPolicy, PluginSupervisor

    sandbox = get_runtime(app).sandbox
    for plugin_id in ("partner.a", "partner.b"):
        sandbox.supervisors[(plugin_id, "1.0.0")] = PluginSupervisor(JailSpec(plugin_id, tmp_path), version="1.0.0",
                                                                     policy=FaultPolicy(max_faults=2, backoff=0.0))
    sandbox.supervisor("partner.a").starts = 3
    for reason in ('a reason with "quotes", {braces} and\na new line', "no answer within its budget"):
        sandbox.supervisor("partner.b").record_fault(reason)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for line in ('canopy_sandbox_workers{plugin="partner.a"} 0',
                 'canopy_sandbox_worker_starts_total{plugin="partner.a"} 3',
                 'canopy_sandbox_faults_total{plugin="partner.a"} 0', 'canopy_sandbox_disabled{plugin="partner.a"} 0',
                 'canopy_sandbox_faults_total{plugin="partner.b"} 2', 'canopy_sandbox_disabled{plugin="partner.b"} 1',
                 "# TYPE canopy_sandbox_faults_total counter", "# TYPE canopy_sandbox_disabled gauge"):
        assert line in text.splitlines(), line
    assert "quotes" not in text and "budget" not in text  # reasons are free text: never labels
    lines = text.strip().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    sandbox.supervisor("partner.b").enable()
    assert 'canopy_sandbox_disabled{plugin="partner.b"} 0' in app.test_client().get("/metrics").get_data(as_text=True)
