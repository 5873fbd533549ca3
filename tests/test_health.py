"""/health tells the truth, fast: database, Redis, exporters; 503 only for the database."""

import re
import time

import pytest

from blog_api import create_app

from .conftest import SECRET

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def test_live_checks_nothing(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "healthy"}


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_healthy_answer_has_the_documented_shape(client, path):
    response = client.get(path)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"status", "checks", "version", "uptime_s"}
    assert body["status"] == "healthy"
    assert body["version"] == "0.1.0"
    assert body["uptime_s"] >= 0
    checks = body["checks"]
    assert set(checks) == {"database", "redis", "metrics_exporter", "trace_exporter"}
    assert checks["database"]["status"] == "up"
    assert checks["database"]["latency_ms"] >= 0
    assert checks["redis"] == {"status": "disabled"}
    assert checks["metrics_exporter"]["status"] == "up"
    assert checks["trace_exporter"]["status"] == "disabled"


def test_metrics_exporter_counts_scrapes(client):
    before = client.get("/health").get_json()["checks"]["metrics_exporter"]["scrapes"]
    client.get("/metrics")
    client.get("/metrics")
    exporter = client.get("/health").get_json()["checks"]["metrics_exporter"]
    assert exporter["scrapes"] == before + 2
    assert re.match(ISO_Z, exporter["last_scrape"])


def test_redis_is_checked_when_configured(app_config, redis_url):
    client = create_app({**app_config, "REDIS_URL": redis_url}).test_client()
    body = client.get("/health").get_json()
    assert body["status"] == "healthy"
    assert body["checks"]["redis"]["status"] == "up"
    assert body["checks"]["redis"]["latency_ms"] >= 0


def test_redis_down_is_degraded_200_and_keeps_its_password_secret(app_config, closed_port):
    """No route needs Redis to answer (the rate limits count in memory): degraded, not out."""
    url = f"redis://:hunter2-secret@127.0.0.1:{closed_port}/0"
    client = create_app({**app_config, "REDIS_URL": url}).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["status"] == "up"
    assert "hunter2" not in response.get_data(as_text=True)
    assert client.get("/health/live").status_code == 200


def _down_app(port: int, password: str = "pg-secret-pw"):
    return create_app(
        {
            "DATABASE_URL": f"postgresql://postgres:{password}@127.0.0.1:{port}/test",
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "CRITICAL",
        }
    )


@pytest.mark.parametrize("server", ["closed_port", "hanging_port"])
def test_database_down_is_503_unhealthy_within_3_seconds(request, server):
    client = _down_app(request.getfixturevalue(server)).test_client()
    started = time.monotonic()
    response = client.get("/health")
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["database"]["error"]
    assert "pg-secret-pw" not in response.get_data(as_text=True)
    assert client.get("/health/live").status_code == 200


def test_hanging_redis_and_database_together_still_answer_within_2_seconds(
    hanging_port,
):
    app = create_app(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{hanging_port}/test",
            "REDIS_URL": f"redis://127.0.0.1:{hanging_port}/0",
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "CRITICAL",
        }
    )
    client = app.test_client()
    for _ in range(6):  # stuck checks from earlier calls must not pile up into a hang
        started = time.monotonic()
        response = client.get("/health")
        assert time.monotonic() - started < 2.0
        assert response.status_code == 503
        checks = response.get_json()["checks"]
        assert checks["database"]["status"] == checks["redis"]["status"] == "down"


@pytest.mark.postgres
def test_real_postgres_health(postgres_url):
    client = create_app({"DATABASE_URL": postgres_url, "SECRET_KEY": SECRET}).test_client()
    body = client.get("/health").get_json()
    assert body["checks"]["database"]["status"] == "up"


CHECKS = {"database", "redis", "metrics_exporter", "trace_exporter"}


def _assert_full_answer(body: dict, overall: str) -> None:
    """Every answer, good or bad, has one shape; a check is up, down (with error) or disabled."""
    assert set(body) == {"status", "checks", "version", "uptime_s"}
    assert body["status"] == overall
    assert body["version"] == "0.1.0"
    assert isinstance(body["uptime_s"], (int, float)) and body["uptime_s"] >= 0
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["status"] in ("up", "down", "disabled"), (name, check)
        if check["status"] == "down":
            assert isinstance(check["error"], str) and check["error"], (name, check)


def test_ready_alias_answers_like_health_when_redis_is_down(app_config, closed_port):
    client = create_app(
        {**app_config, "REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"}
    ).test_client()
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_full_answer(response.get_json(), "degraded")
        assert response.get_json()["checks"]["redis"]["status"] == "down"


def test_ready_alias_answers_like_health_when_the_database_is_down(closed_port):
    client = _down_app(closed_port).test_client()
    for path in ("/health", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.mimetype == "application/json"
        _assert_full_answer(response.get_json(), "unhealthy")
        assert response.get_json()["checks"]["database"]["status"] == "down"
    live = client.get("/health/live")
    assert (live.status_code, live.get_json()) == (200, {"status": "healthy"})


def test_healthy_answer_checks_are_in_the_vocabulary(client):
    _assert_full_answer(client.get("/health").get_json(), "healthy")


def test_uptime_grows(client):
    first = client.get("/health").get_json()["uptime_s"]
    time.sleep(1.1)  # past the 1 s reuse of a readiness result
    assert client.get("/health").get_json()["uptime_s"] > first
