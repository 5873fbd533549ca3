"""Every error is JSON in one shape: bad bodies, unknown routes, wrong methods, big bodies."""

import pytest

from .conftest import assert_error


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
