"""The app factory and the first HTTP surface."""

from __future__ import annotations


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok"}


def test_storefront_marks_each_zone_with_its_plugin(client):
    response = client.get("/s/SH001?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-plugin="wealth.checkup"' in html
    assert 'data-plugin="sh.deals"' in html
    # partner plugins are refused until the sandbox exists
    assert 'data-plugin="city.utilities"' not in html
