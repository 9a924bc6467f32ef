"""/metrics (docs/api.md, Metrics) read by the Prometheus project's own parser: the strict
OpenMetrics one of prometheus_client, which refuses anything malformed. Each check moves one
counter with a real request and reads the difference, so other tests' traffic does not matter."""

import uuid

import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import REFRESH_GRANTS, TIMEOUT, fetch_token


def scrape(base_url):
    r = requests.get(f"{base_url}/metrics", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families, family, sample_name=None, **labels):
    """The value of the sample of `family` with exactly these labels (0 when not there yet)."""
    found = [
        s.value
        for s in families[family].samples
        if (sample_name is None or s.name == sample_name) and s.labels == labels
    ]
    assert len(found) <= 1, found
    return found[0] if found else 0


def test_a_token_request_moves_its_counter_and_histogram(base_url, token_url, admin):
    app = admin.create_app(["read_app"])
    before = scrape(base_url)
    fetch_token(token_url, app["clientId"], app["secret"])
    after = scrape(base_url)
    issued = {"grant": "client_credentials", "outcome": "issued"}
    assert value(after, "tessera_token_requests", **issued) == value(
        before, "tessera_token_requests", **issued
    ) + 1
    count = "tessera_token_request_duration_seconds_count"
    grant = {"grant": "client_credentials"}
    assert value(after, "tessera_token_request_duration_seconds", count, **grant) == value(
        before, "tessera_token_request_duration_seconds", count, **grant
    ) + 1
    route = {"route": "/oauth2/v1/token", "status": "200"}
    assert value(after, "tessera_http_requests", **route) > value(
        before, "tessera_http_requests", **route
    )


def test_a_wrong_secret_counts_an_error_and_a_failed_authentication(base_url, token_url, admin):
    app = admin.create_app(["read_app"])
    before = scrape(base_url)
    r = requests.post(
        token_url,
        data={"grant_type": "client_credentials"},
        auth=(app["clientId"], "not-the-secret"),
        timeout=TIMEOUT,
    )
    assert r.status_code == 401
    after = scrape(base_url)
    refused = {"grant": "client_credentials", "outcome": "invalid_client"}
    assert value(after, "tessera_token_requests", **refused) == value(
        before, "tessera_token_requests", **refused
    ) + 1
    basic = {"method": "client_secret_basic"}
    assert value(after, "tessera_failed_authentications", **basic) == value(
        before, "tessera_failed_authentications", **basic
    ) + 1


def test_a_reused_refresh_token_is_counted_as_reused(base_url, token_url, admin):
    app = admin.create_app(["read_app"], grant_types=REFRESH_GRANTS)
    first = fetch_token(token_url, app["clientId"], app["secret"])
    redeem = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    auth = (app["clientId"], app["secret"])
    assert requests.post(token_url, data=redeem, auth=auth, timeout=TIMEOUT).status_code == 200
    before = scrape(base_url)
    again = requests.post(token_url, data=redeem, auth=auth, timeout=TIMEOUT)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    after = scrape(base_url)
    reused = {"grant": "refresh_token", "outcome": "reused"}
    assert value(after, "tessera_token_requests", **reused) == value(
        before, "tessera_token_requests", **reused
    ) + 1


def test_labels_are_route_patterns_never_raw_paths(base_url, admin):
    app = admin.create_app(["read_app"])
    assert admin.call("GET", f"/api/v1/apps/{app['id']}").status_code == 200
    missing = f"/no-such-{uuid.uuid4().hex}"
    assert requests.get(f"{base_url}{missing}", timeout=TIMEOUT).status_code == 404
    routes = {s.labels["route"] for s in scrape(base_url)["tessera_http_requests"].samples}
    assert "/api/v1/apps/{id}" in routes
    assert "(unmatched)" in routes
    assert not any(app["id"] in r or app["clientId"] in r or missing in r for r in routes), routes


def test_gauges_are_read_at_the_scrape(base_url, admin):
    families = scrape(base_url)
    assert value(families, "tessera_signing_keys", state="current") == 1
    assert value(families, "tessera_signing_keys", state="next") == 1
    apps = value(families, "tessera_registered", kind="app")
    admin.create_app(["read_app"])
    assert value(scrape(base_url), "tessera_registered", kind="app") == apps + 1
    resources = value(families, "tessera_registered", kind="resource")
    admin.create_resource(f"https://{uuid.uuid4().hex[:8]}.metrics.example", [])
    assert value(scrape(base_url), "tessera_registered", kind="resource") == resources + 1
    commits = "tessera_store_commit_duration_seconds"
    assert value(families, commits, f"{commits}_count") > 0
