"""/metrics: a real scrape after real traffic, parsed with prometheus_client's parser."""

import random
import string
import threading

import pytest
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from blog_api import create_app

from .conftest import PASSWORD, assert_error
from .live_server import total
from .services import promtool_check_metrics

DURATION = "http_server_request_duration_seconds"


def scrape(client, headers=None) -> dict:
    """{family name: [samples]} from one scrape, checking the exposition content type."""
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f.samples for f in text_string_to_metric_families(response.get_data(True))}


def count(families, **labels) -> float:
    """Requests counted by the duration histogram whose labels include `labels`."""
    return total(families, DURATION, DURATION + "_count", **labels)


def without_route(families, **labels) -> float:
    """Like count(), but only series without a route: `http_route` empty, which Prometheus
    stores as no label (the exporter fills a label some points of a family lack with "")."""
    return sum(
        s.value
        for s in families.get(DURATION, [])
        if s.name == DURATION + "_count"
        and s.labels.get("http_route", "") == ""
        and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_request_histogram_by_route_template_method_and_status(client, auth_headers):
    before = scrape(client)
    post = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=auth_headers)
    for _ in range(3):
        client.get(f"/api/v1/posts/{post.get_json()['id']}")
    client.get("/api/v1/posts/999999")
    after = scrape(client)

    item = "/api/v1/posts/<int:post_id>"
    assert (
        count(after, http_route=item, http_request_method="GET", http_response_status_code="200")
        - count(before, http_route=item, http_request_method="GET", http_response_status_code="200")
        == 3
    )
    assert (
        count(after, http_route=item, http_response_status_code="404")
        - count(before, http_route=item, http_response_status_code="404")
        == 1
    )
    assert (
        count(
            after,
            http_route="/api/v1/posts",
            http_request_method="POST",
            http_response_status_code="201",
        )
        - count(
            before,
            http_route="/api/v1/posts",
            http_request_method="POST",
            http_response_status_code="201",
        )
        == 1
    )

    buckets = [
        s
        for s in after[DURATION]
        if s.name == DURATION + "_bucket" and s.labels.get("http_route") == item
    ]
    bounds = sorted({float(s.labels["le"]) for s in buckets})
    assert bounds[0] == 0.005 and bounds[-2] == 10.0 and bounds[-1] == float("inf")
    assert all(not k.startswith("otel_scope") for s in after[DURATION] for k in s.labels)


def test_login_counter_counts_each_outcome_exactly_once(client, users):
    users.register("alice")
    before = scrape(client)
    for _ in range(3):
        client.post("/api/v1/users/login", json={"username": "alice", "password": PASSWORD})
    for wrong in (
        {"username": "alice", "password": "wrong-one"},
        {"username": "nobody", "password": PASSWORD},
    ):
        client.post("/api/v1/users/login", json=wrong)
    client.post("/api/v1/users/login", json={"username": "alice"})  # 422: no credentials checked
    after = scrape(client)

    def delta(outcome):
        return total(after, "blog_api_logins", "blog_api_logins_total", outcome=outcome) - total(
            before, "blog_api_logins", "blog_api_logins_total", outcome=outcome
        )

    assert (delta("success"), delta("failure")) == (3, 2)


def test_target_info_names_the_service(client):
    info = scrape(client)["target_info"][0]
    assert info.name == "target_info"
    assert info.labels["service_name"] == "blog-api"
    assert info.labels["service_version"] == "0.1.0"


def _series(families) -> set:
    return {(s.name, tuple(sorted(s.labels.items()))) for f in families.values() for s in f}


def _random_parts(paths) -> set[str]:
    return {part for path in paths for part in path.split("/") if len(part) >= 7}


def test_no_raw_path_in_any_label_and_series_stay_flat(app, client):
    rng = random.Random(7)

    def junk() -> str:
        return "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))

    for _ in range(20):  # warm up every series the traffic below can create
        client.get(f"/{junk()}")
        client.get(f"/api/v1/posts/{rng.randint(10**6, 10**7)}")
    baseline = _series(scrape(client))
    paths = []
    for _ in range(300):
        paths += [
            f"/{junk()}",
            f"/api/v1/{junk()}/{junk()}",
            f"/api/v1/posts/{rng.randint(10**6, 10**7)}",
        ]
    for path in paths:
        client.get(path)
    families = scrape(client)
    assert _series(families) == baseline
    label_values = {v for f in families.values() for s in f for v in s.labels.values()}
    assert not any(path in label_values for path in paths)
    # every route label is a URL rule (templates, not paths); this process's other test apps
    # add their own rules, so compare against rule syntax rather than this app's map
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    for route in {s.labels.get("http_route", "") for s in families[DURATION]} - rules - {""}:
        assert not any(segment.isdigit() for segment in route.split("/")), route
    assert not any(part in v for part in _random_parts(paths) for v in label_values)


def test_operations_endpoints_are_not_api_traffic(client):
    scrape(client)
    for path in ("/health", "/health/live", "/health/ready", "/metrics"):
        client.get(path)
    families = scrape(client)
    routes = {s.labels.get("http_route") for s in families[DURATION]}
    assert not any(r and (r.startswith("/health") or r == "/metrics") for r in routes)
    # the scrape in flight is not an active request either
    assert all(s.value == 0 for s in families["http_server_active_requests"])


def test_metrics_token_guards_the_scrape(app_config):
    app = create_app({**app_config, "METRICS_TOKEN": "s3cret-token"})
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        response = client.get("/metrics", headers=headers)
        assert "METRICS_TOKEN" in assert_error(response, 401)["message"]
        assert "s3cret-token" not in response.get_data(as_text=True)
    assert "target_info" in scrape(client, {"Authorization": "Bearer s3cret-token"})


def test_sdk_disabled_means_no_metrics_and_a_working_api(app_config):
    app = create_app({**app_config, "OTEL_SDK_DISABLED": "true"})
    client = app.test_client()
    assert_error(client.get("/metrics"), 404)
    assert client.get("/api/v1/posts").status_code == 200
    assert "traceresponse" not in client.get("/api/v1/posts").headers
    health = client.get("/health").get_json()
    assert health["checks"]["metrics_exporter"]["status"] == "disabled"
    assert health["checks"]["trace_exporter"]["status"] == "disabled"
    assert health["status"] == "healthy"


@pytest.mark.prometheus
def test_promtool_accepts_a_live_scrape(client, auth_headers, tmp_path):
    client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=auth_headers)
    client.get("/nope")
    promtool_check_metrics(client.get("/metrics").get_data())


OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def test_openmetrics_scrape_links_histogram_buckets_to_traces(client):
    response = client.get("/api/v1/posts")
    trace_id, span_id = response.headers["traceresponse"].split("-")[1:3]

    scrape = client.get("/metrics", headers=OPENMETRICS)
    assert scrape.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    families = {
        f.name: f
        for f in openmetrics_parser.text_string_to_metric_families(scrape.get_data(as_text=True))
    }
    exemplars = [
        s.exemplar
        for s in families[DURATION].samples
        if s.name == DURATION + "_bucket"
        and s.labels.get("http_route") == "/api/v1/posts"
        and s.exemplar is not None
    ]
    assert {"trace_id": trace_id, "span_id": span_id} in [e.labels for e in exemplars]
    bucket = next(
        s
        for s in families[DURATION].samples
        if s.exemplar is not None and s.exemplar.labels["trace_id"] == trace_id
    )
    assert bucket.exemplar.value <= float(bucket.labels["le"])


def test_classic_scrape_carries_no_exemplars(client):
    client.get("/api/v1/posts")
    text = client.get("/metrics").get_data(as_text=True)
    assert not [line for line in text.splitlines() if not line.startswith("#") and "#" in line]


def test_unmatched_route_is_counted_without_a_route_label(client):
    before = scrape(client)
    client.get("/no/such/route/12345")
    after = scrape(client)
    assert (
        without_route(after, http_request_method="GET", http_response_status_code="404")
        - (without_route(before, http_request_method="GET", http_response_status_code="404"))
        == 1
    )


def test_active_requests_gauge_is_labelled_by_method(client):
    client.get("/api/v1/posts")
    client.post("/api/v1/posts", json={"title": "t", "body": "b"})
    samples = scrape(client)["http_server_active_requests"]
    assert {s.labels["http_request_method"] for s in samples} >= {"GET", "POST"}


def test_requests_in_flight_are_counted_in_every_app_of_the_process(app_config):
    """Tests (and any process) may build several apps: each one's requests count while running."""
    create_app(app_config)  # not the first app of the process, whatever ran before
    app = create_app(app_config)
    entered, release = threading.Event(), threading.Event()

    def slow():
        entered.set()
        release.wait(10)
        return {"ok": True}

    app.add_url_rule("/api/v1/slow", "slow", slow)
    client = app.test_client()
    worker = threading.Thread(target=lambda: app.test_client().get("/api/v1/slow"))
    worker.start()
    try:
        assert entered.wait(10)
        during = scrape(client)["http_server_active_requests"]
    finally:
        release.set()
        worker.join(10)
    assert total({"f": during}, "f", "http_server_active_requests", http_request_method="GET") == 1
    after = scrape(client)["http_server_active_requests"]
    assert total({"f": after}, "f", "http_server_active_requests", http_request_method="GET") == 0


# The label names each documented family may carry: DESIGN's, plus what README adds on purpose
# (`url_scheme`, `network_protocol_version`, `error_type` on 5xx: the stable HTTP conventions).
FAMILY_LABELS = {
    DURATION: (
        "histogram",
        {"http_request_method", "http_route", "http_response_status_code"},
        {"url_scheme", "network_protocol_version", "error_type"},
    ),
    "http_server_active_requests": ("gauge", {"http_request_method"}, {"url_scheme"}),
    "blog_api_logins": ("counter", {"outcome"}, set()),
}
RESOURCE_LABELS = {"service_name", "service_version", "service_instance_id"}


def _types(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def test_documented_families_have_their_type_and_only_their_labels(app, users):
    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("boom")

    client = app.test_client()
    users.register("alice")
    client.post("/api/v1/users/login", json={"username": "alice", "password": PASSWORD})
    client.post("/api/v1/users/login", json={"username": "alice", "password": "wrong one"})
    client.get("/api/v1/posts")
    client.get("/no/such/route")
    client.delete("/api/v1/posts")
    client.get("/api/v1/boom")
    families, types = scrape(client), _types(client)

    for name, (kind, required, optional) in FAMILY_LABELS.items():
        assert types[name] == kind, name
        labels = {k for s in families[name] for k in s.labels} - {"le"}
        assert labels >= required, (name, labels)
        assert labels <= required | optional, (name, labels - required - optional)
    outcomes = {s.labels["outcome"] for s in families["blog_api_logins"]}
    assert {"success", "failure"} <= outcomes <= {"success", "failure", "throttled"}
    # error_type only on server errors: a 4xx is the client's, not an error of the service
    for sample in families[DURATION]:
        status = sample.labels.get("http_response_status_code")
        if sample.labels.get("error_type"):
            assert status and status.startswith("5"), sample
    assert any(
        s.labels.get("http_route") == "/api/v1/boom"
        and s.labels.get("http_response_status_code") == "500"
        and s.labels.get("error_type")
        for s in families[DURATION]
    )


def test_resource_attributes_are_on_target_info_only_and_no_scope_labels(client):
    client.get("/api/v1/posts")
    families = scrape(client)
    (info,) = families["target_info"]
    assert info.value == 1
    assert RESOURCE_LABELS <= set(info.labels)
    for name, samples in families.items():
        for sample in samples:
            assert not any(k.startswith("otel_scope") for k in sample.labels), (name, sample)
            if name != "target_info":
                assert not RESOURCE_LABELS & set(sample.labels), (name, sample)
                assert not any(k.startswith("telemetry_sdk") for k in sample.labels), name
