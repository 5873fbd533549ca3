"""Every error is JSON in one shape: bad bodies, unknown routes, wrong methods, big bodies."""

import pytest
from werkzeug.http import HTTP_STATUS_CODES

from blog_api import create_app

from .conftest import SECRET, assert_error


@pytest.mark.parametrize(
    ("data", "content_type", "says"),
    [
        ("{not json", "application/json", "not valid JSON"),
        ("", "application/json", "not valid JSON"),
        ("[1, 2, 3]", "application/json", "JSON object"),
        ('"a string"', "application/json", "JSON object"),
        ("null", "application/json", "JSON object"),
        ("title=x&body=y", "application/x-www-form-urlencoded", "Content-Type"),
        ('{"title": "x", "body": "y"}', "text/plain", "Content-Type"),
        (b"\xff\xfe\x00garbage", "application/json", "not valid JSON"),
    ],
)
def test_body_that_is_not_a_json_object_is_400(client, auth_headers, data, content_type, says):
    for url in ("/api/v1/posts", "/api/v1/users/register", "/api/v2/todos"):
        response = client.post(url, data=data, content_type=content_type, headers=auth_headers)
        assert says in assert_error(response, 400)["message"]
    assert client.get("/api/v1/posts").get_json() == []


def test_body_over_one_mebibyte_is_413(client, auth_headers):
    big = '{"title": "t", "body": "' + "x" * (1024 * 1024) + '"}'
    assert_error(
        client.post(
            "/api/v1/posts", data=big, content_type="application/json", headers=auth_headers
        ),
        413,
    )
    assert client.get("/api/v1/posts").get_json() == []


def test_body_just_under_the_limit_gets_to_validation(client, auth_headers):
    body = '{"title": "t", "body": "' + "x" * (1024 * 1024 - 100) + '"}'
    response = client.post(
        "/api/v1/posts", data=body, content_type="application/json", headers=auth_headers
    )
    assert "body" in assert_error(response, 422)["details"]


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/nope", "/api/v1/posts/abc", "/api/v3/posts", "/api/v1/posts/1/x"]
)
def test_unknown_route_is_json_404(client, path):
    assert_error(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/v1/posts"),
        ("PUT", "/api/v1/users/login"),
        ("POST", "/api/v1/users/me"),
        ("PATCH", "/api/v2/todos"),
        ("POST", "/health/live"),
    ],
)
def test_wrong_method_is_json_405(client, method, path):
    response = client.open(path, method=method, json={})
    assert_error(response, 405)
    assert "Allow" in response.headers


def test_unexpected_exception_is_json_500_without_a_trace(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    assert_error(response, 500)
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def _reason(status: int) -> str:
    return HTTP_STATUS_CODES[status]


def test_error_field_is_the_reason_phrase_of_the_status(client, users):
    """DESIGN: `{"error": "<Reason Phrase>", ...}` from every layer, not a code of our own."""
    alice = users.headers("alice")
    bob = users.headers("bob")
    post = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=alice)
    post_url = f"/api/v1/posts/{post.get_json()['id']}"
    big = '{"title": "t", "body": "' + "x" * (1024 * 1024) + '"}'
    cases = [
        (
            400,
            client.post("/api/v1/posts", data="{", content_type="application/json", headers=alice),
        ),
        (401, client.get("/api/v1/users/me")),
        (401, client.get("/api/v1/users/me", headers={"Authorization": "Bearer nonsense"})),
        (403, client.delete(post_url, headers=bob)),
        (403, client.get("/api/v1/users", headers=alice)),
        (404, client.get("/api/v1/posts/999999")),
        (404, client.get("/no/such/route")),
        (405, client.delete("/api/v1/posts")),
        (
            409,
            client.post(
                "/api/v1/users/register",
                json={"username": "alice", "email": "x@example.org", "password": "password1"},
            ),
        ),
        (
            413,
            client.post("/api/v1/posts", data=big, content_type="application/json", headers=alice),
        ),
        (422, client.post("/api/v1/posts", json={"title": ""}, headers=alice)),
    ]
    wrong = {"username": "bob", "password": "wrong password"}
    for _ in range(5):  # the per-account limit of failed logins
        assert client.post("/api/v1/users/login", json=wrong).status_code == 401
    cases.append((429, client.post("/api/v1/users/login", json=wrong)))
    for status, response in cases:
        body = assert_error(response, status)
        assert body["error"] == _reason(status), (status, body)
        assert body["message"] != body["error"], (status, body)  # says what went wrong


def test_validation_error_details_map_each_field_to_a_list_of_messages(client, auth_headers):
    response = client.post("/api/v1/posts", json={"title": "", "body": 5}, headers=auth_headers)
    details = assert_error(response, 422)["details"]
    assert set(details) >= {"title", "body"}
    for field, messages in details.items():
        assert isinstance(messages, list) and messages, field
        assert all(isinstance(m, str) and m for m in messages), field


def test_database_down_error_is_503_service_unavailable(closed_port):
    app = create_app(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port}/test",
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "CRITICAL",
        }
    )
    response = app.test_client().get("/api/v1/posts")
    assert assert_error(response, 503)["error"] == _reason(503)
    assert int(response.headers["Retry-After"]) > 0
