"""A database that refuses or hangs gets a 503 with Retry-After in under 3 s, never a hang."""

import time

import pytest

from blog_api import create_app

from . import databases
from .conftest import SECRET, assert_error


def _app_on(port: int):
    return create_app(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/test",
            "SECRET_KEY": SECRET,
            "BCRYPT_ROUNDS": "4",
            "LOG_LEVEL": "CRITICAL",
        }
    )


@pytest.mark.parametrize("server", ["closed_port", "hanging_port"])
def test_unreachable_database_is_503_within_3_seconds(request, server):
    client = _app_on(request.getfixturevalue(server)).test_client()
    for method, url, body in [
        ("GET", "/api/v1/posts", None),
        ("GET", "/api/v2/posts?page=2", None),
        ("POST", "/api/v1/users/login", {"username": "alice", "password": "password1"}),
        (
            "POST",
            "/api/v1/users/register",
            {"username": "alice", "email": "a@example.org", "password": "password1"},
        ),
    ]:
        started = time.monotonic()
        response = client.open(url, method=method, json=body)
        elapsed = time.monotonic() - started
        body = assert_error(response, 503)
        assert "database" in body["message"].lower()
        assert int(response.headers["Retry-After"]) > 0
        assert elapsed < 3.0, f"{method} {url} took {elapsed:.2f}s"


@pytest.mark.postgres
def test_a_database_gone_after_the_app_was_ready_is_503(postgres_url):
    """Past readiness, requests reach the database themselves: its failure is a 503 too."""
    with databases.new_postgres_database(postgres_url) as url:
        databases.upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": SECRET,
                "BCRYPT_ROUNDS": "4",
                "LOG_LEVEL": "CRITICAL",
            }
        )
        client = app.test_client()
        assert client.get("/api/v1/posts").status_code == 200
        databases.drop_postgres_database(url)  # connections cut, new ones refused

        started = time.monotonic()
        response = client.get("/api/v1/posts")
        assert time.monotonic() - started < 3.0
        body = assert_error(response, 503)
        assert "database" in body["message"].lower()
        assert int(response.headers["Retry-After"]) > 0
