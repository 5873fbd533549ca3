"""A real Prometheus server scrapes the app served by gunicorn, after a known amount of traffic.

The app runs as `gunicorn -c gunicorn.conf.py "blog_api:create_app()"` in a fresh process (one
worker), so every counter starts at zero and the numbers Prometheus stores are exact. Prometheus
scrapes it every second; the tests wait for a scrape that started after the traffic ended, then
ask Prometheus's HTTP API for the totals. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from .conftest import PASSWORD
from .live_server import HOST, LiveServer, Process, call, start_prometheus
from .test_monitoring_config import dashboard_and_alert_metric_names, dashboard_exprs

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

POST_ROUTE = "/api/v1/posts/<int:post_id>"
FAILED_LOGINS = 5  # the per-username limit: the next guesses are throttled
THROTTLED_LOGINS = 2
GOOD_LOGINS = 3
POST_READS = 25
SETTLE_TIMEOUT = 15.0


def call_json(port: int, method: str, path: str, status: int, **kwargs) -> dict:
    got, body = call(port, method, path, **kwargs)
    assert got == status, (method, path, got, body[:500])
    return json.loads(body)


@pytest.fixture(scope="module")
def live_app(tmp_path_factory) -> Iterator[LiveServer]:
    """The app under gunicorn with gunicorn.conf.py, one worker, a fresh SQLite file."""
    with LiveServer(tmp_path_factory.mktemp("live_app"), workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(live_app, tmp_path_factory) -> Iterator[Process]:
    """Prometheus scraping the live app every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "blog-api",
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"{HOST}:{live_app.port}"]}],
            }
        ],
    }
    # Prometheus then asks for OpenMetrics, the format that carries exemplars
    exemplars = "--enable-feature=exemplar-storage"
    tmp = tmp_path_factory.mktemp("prometheus")
    with start_prometheus(config, tmp, exemplars) as server:
        # Its first scrape comes only after target discovery's first update (about 5 s): wait
        # for it here, so Prometheus sees every series from zero, before any traffic.
        wait_for_scrape_after(server, live_app, 0.0)
        yield server


def query(prometheus: Process, promql: str) -> list[dict]:
    """The instant vector `promql` evaluates to now."""
    status, body = call(prometheus.port, "GET", "/api/v1/query?" + urlencode({"query": promql}))
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", (promql, status, answer)
    assert answer["data"]["resultType"] == "vector", answer
    return answer["data"]["result"]


def scalar(prometheus: Process, promql: str) -> float | None:
    """The single value of `promql`, or None when it selects nothing."""
    result = query(prometheus, promql)
    assert len(result) <= 1, (promql, result)
    return float(result[0]["value"][1]) if result else None


LAST_GOOD_SCRAPE = 'timestamp(up{job="blog-api"}) and up{job="blog-api"} == 1'


def scrape_target_state(prometheus: Process) -> list[dict]:
    status, body = call(prometheus.port, "GET", "/api/v1/targets")
    targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
    return [{k: t.get(k) for k in ("scrapeUrl", "health", "lastError")} for t in targets]


def wait_for_scrape_after(prometheus: Process, live_app: LiveServer, moment: float) -> None:
    """Wait until Prometheus holds a successful scrape of the app that started after `moment`.

    gunicorn's one sync worker answers one request at a time, so such a scrape saw every request
    made before `moment`: from then on the stored totals are final.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        assert live_app.alive(), live_app.log()[-3000:]
        assert prometheus.alive(), prometheus.log()[-3000:]
        # timestamp() of a bare selector is the scrape's time (of an expression, it is now)
        last = scalar(prometheus, LAST_GOOD_SCRAPE)
        if last is not None and last > moment:
            return
        time.sleep(0.2)
    pytest.fail(
        f"no successful scrape after the traffic within {SETTLE_TIMEOUT}s: "
        f"{scrape_target_state(prometheus)}\napp log:\n{live_app.log()[-3000:]}"
    )


@dataclass
class Traffic:
    ended: float  # time.time() after the last response
    post_read_traces: set  # trace ids of the post reads, from their traceresponse headers


@pytest.fixture(scope="module")
def traffic(live_app) -> Traffic:
    """A known amount of traffic, made once for the module (the counters start at zero)."""
    port = live_app.port
    user = {"username": "carol", "email": "carol@example.org", "password": PASSWORD}
    call_json(port, "POST", "/api/v1/users/register", 201, body=user)
    for number in range(FAILED_LOGINS + THROTTLED_LOGINS):
        wrong = {"username": "mallory", "password": f"wrong-password-{number}"}
        status = 401 if number < FAILED_LOGINS else 429
        call_json(port, "POST", "/api/v1/users/login", status, body=wrong)
    tokens = [
        call_json(
            port,
            "POST",
            "/api/v1/users/login",
            200,
            body={"username": "carol", "password": PASSWORD},
        )["access_token"]
        for _ in range(GOOD_LOGINS)
    ]
    post = call_json(
        port,
        "POST",
        "/api/v1/posts",
        201,
        body={"title": "scraped", "body": "by a real Prometheus"},
        headers={"Authorization": f"Bearer {tokens[0]}"},
    )
    traces = set()
    for _ in range(POST_READS):
        connection = live_app.connection()
        connection.request("GET", f"/api/v1/posts/{post['id']}")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["id"] == post["id"]
        traces.add(response.getheader("traceresponse").split("-")[1])
        connection.close()
    return Traffic(ended=time.time(), post_read_traces=traces)


def duration(series: str, **labels: str) -> str:
    """A selector of the request histogram's `series` (count, bucket) on job blog-api."""
    matchers = ", ".join(f'{k}="{v}"' for k, v in {"job": "blog-api", **labels}.items())
    return f"http_server_request_duration_seconds_{series}{{{matchers}}}"


def test_prometheus_stores_exact_totals_of_the_traffic(live_app, prometheus, traffic) -> None:
    wait_for_scrape_after(prometheus, live_app, traffic.ended)

    logins = 'sum(blog_api_logins_total{job="blog-api", outcome="%s"})'
    assert scalar(prometheus, 'up{job="blog-api"}') == 1
    assert scalar(prometheus, logins % "failure") == FAILED_LOGINS
    assert scalar(prometheus, logins % "throttled") == THROTTLED_LOGINS
    assert scalar(prometheus, logins % "success") == GOOD_LOGINS
    reads = duration("count", http_route=POST_ROUTE, http_request_method="GET")
    assert scalar(prometheus, f"sum({reads})") == POST_READS
    # every read answered 200, and each one also landed in the histogram's +Inf bucket
    by_status = query(
        prometheus,
        f"sum by (http_response_status_code) ({duration('count', http_route=POST_ROUTE)})",
    )
    assert [(r["metric"], float(r["value"][1])) for r in by_status] == [
        ({"http_response_status_code": "200"}, POST_READS)
    ]
    inf_bucket = duration("bucket", http_route=POST_ROUTE, le="+Inf")
    assert scalar(prometheus, f"sum({inf_bucket})") == POST_READS
    # route labels are URL rules, never raw paths such as /api/v1/posts/1
    routes = {
        r["metric"]["http_route"]
        for r in query(prometheus, 'count by (http_route) ({job="blog-api", http_route!=""})')
    }
    assert POST_ROUTE in routes
    assert not any(part.isdigit() for route in routes for part in route.split("/")), routes
    [info] = query(prometheus, 'target_info{job="blog-api"}')
    assert info["metric"]["service_name"] == "blog-api"


def sample_names(exposition: str) -> set[str]:
    """The sample (series) names of a text exposition, read straight from its lines."""
    names = set()
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def family_present(name: str, samples: set[str]) -> bool:
    """`name` as the monitoring config reports it: a sample name or a histogram family."""
    return name in samples or {f"{name}_bucket", f"{name}_count", f"{name}_sum"} <= samples


def test_every_dashboard_and_alert_metric_is_live(live_app, prometheus, traffic) -> None:
    names = dashboard_and_alert_metric_names()
    assert names, "the dashboard and alerts query no metric at all"

    status, body = call(live_app.port, "GET", "/metrics")
    assert status == 200
    samples = sample_names(body.decode())
    missing_in_scrape = sorted(n for n in names if not family_present(n, samples))
    assert not missing_in_scrape, f"not in a live /metrics: {missing_in_scrape}"

    wait_for_scrape_after(prometheus, live_app, traffic.ended)
    missing_in_prometheus = [
        name
        for name in sorted(names)
        if not scalar(
            prometheus, f'count({{__name__=~"{name}(_bucket|_count|_sum)?", job="blog-api"}})'
        )
    ]
    assert not missing_in_prometheus, f"Prometheus has no series of {missing_in_prometheus}"


def test_prometheus_stores_exemplars_that_lead_to_real_traces(live_app, prometheus, traffic):
    wait_for_scrape_after(prometheus, live_app, traffic.ended)
    selector = duration("bucket", http_route=POST_ROUTE)
    query = urlencode({"query": selector, "start": traffic.ended - 600, "end": time.time() + 60})
    status, body = call(prometheus.port, "GET", f"/api/v1/query_exemplars?{query}")
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", answer
    trace_ids = {
        exemplar["labels"]["trace_id"]
        for series in answer["data"]
        for exemplar in series["exemplars"]
    }
    assert trace_ids, "Prometheus stored no exemplar for the post route"
    assert trace_ids <= traffic.post_read_traces


def test_error_panels_show_zero_not_no_data(live_app, prometheus, traffic) -> None:
    """Traffic without a 5xx: the dashboard's 5xx-ratio queries answer 0, not nothing.

    A rate needs the counter to grow between two scrapes Prometheus holds, so a few list reads
    (a route the totals above do not count) are made across two scrapes.
    """
    for _ in range(2):
        for _ in range(5):
            assert call(live_app.port, "GET", "/api/v1/posts")[0] == 200
        wait_for_scrape_after(prometheus, live_app, time.time())
    grafana = {"$__rate_interval": "1m", "$route": ".*"}
    exprs = [e for e in dashboard_exprs() if '=~"5.."' in e]
    assert len(exprs) >= 3
    for expr in exprs:
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        # NaN: a route without requests in the last minute has no ratio (Grafana leaves a gap)
        values = [float(r["value"][1]) for r in query(prometheus, expr)]
        assert 0.0 in values, (expr, values)
        assert all(v == 0 or math.isnan(v) for v in values), (expr, values)
