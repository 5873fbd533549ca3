"""A database that refuses or hangs gets a 503 with Retry-After in under 3 s, never a hang."""

import time

import pytest

from blog_api import create_app

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
