"""Input the database and Python cannot hold is a 4xx in the one error shape, never a 5xx.

A NUL character or a lone surrogate in any string a client sends (body, query, path), JSON nested
absurdly deep, a chunked body over the limit. Each runs on SQLite and on PostgreSQL, where a NUL
used to reach the driver and come back as a 500.
"""

from __future__ import annotations

import http.client
import io
import json

import pytest

from blog_api import MAX_BODY_BYTES
from blog_api.api import MAX_JSON_DEPTH

from .conftest import PASSWORD, assert_error

NUL = "\x00"
SURROGATE = "\udfff"  # json.dumps writes it as the escape "\udfff", which JSON allows
BAD_STRINGS = [
    pytest.param(NUL, id="nul"),
    pytest.param("a" + NUL + "b", id="nul-inside"),
    pytest.param(SURROGATE, id="lone-surrogate"),
    pytest.param("x\ud800y", id="lone-high-surrogate"),
]
# (method, url, body, field, needs a token): every string field of every body schema.
REGISTER = {"username": "mallory", "email": "m@example.org", "password": PASSWORD}
LOGIN = {"username": "alice", "password": PASSWORD}
POST = {"title": "t", "body": "b"}
BODY_FIELDS = [
    ("POST", "/api/v1/users/register", REGISTER, "username", False),
    ("POST", "/api/v1/users/register", REGISTER, "email", False),
    ("POST", "/api/v1/users/register", REGISTER, "password", False),
    ("POST", "/api/v1/users/login", LOGIN, "username", False),
    ("POST", "/api/v1/users/login", LOGIN, "password", False),
    ("POST", "/api/v1/posts", POST, "title", True),
    ("POST", "/api/v1/posts", POST, "body", True),
    ("PUT", "/api/v1/posts/{post}", POST, "title", True),
    ("PATCH", "/api/v1/posts/{post}", {}, "body", True),
    ("POST", "/api/v2/posts", POST, "body", True),
    ("POST", "/api/v1/todos", {}, "title", True),
    ("PUT", "/api/v2/todos/{todo}", {}, "title", True),
    ("PATCH", "/api/v1/todos/{todo}", {}, "title", True),
]


@pytest.fixture
def existing(client, auth_headers) -> dict:
    """One post and one todo of alice's, for the item routes."""
    post = client.post("/api/v1/posts", json=POST, headers=auth_headers).get_json()
    todo = client.post("/api/v1/todos", json={"title": "t"}, headers=auth_headers).get_json()
    return {"post": post["id"], "todo": todo["id"]}


def send_json(client, method, url, data, headers=None):
    """Send `data` as JSON text, escapes and all (lone surrogates stay "\\udfff" escapes)."""
    return client.open(
        url,
        method=method,
        data=json.dumps(data),
        content_type="application/json",
        headers=headers or {},
    )


@pytest.mark.parametrize("bad", BAD_STRINGS)
@pytest.mark.parametrize(
    ("method", "url", "body", "field", "needs_token"),
    BODY_FIELDS,
    ids=[f"{m} {u} {f}" for m, u, _, f, _ in BODY_FIELDS],
)
def test_nul_or_lone_surrogate_in_a_body_field_is_422(
    client, auth_headers, existing, method, url, body, field, needs_token, bad
):
    headers = auth_headers if needs_token else {}
    response = send_json(client, method, url.format(**existing), {**body, field: bad}, headers)
    assert field in assert_error(response, 422)["details"]


@pytest.mark.parametrize("bad", BAD_STRINGS)
def test_nul_or_lone_surrogate_in_an_unknown_field_or_its_name_is_422(client, auth_headers, bad):
    for extra in ({"note": bad}, {bad: "x"}):
        response = send_json(client, "POST", "/api/v1/posts", {**POST, **extra}, auth_headers)
        assert_error(response, 422)
    assert client.get("/api/v1/posts").get_json() == []


def test_nothing_was_stored_and_the_session_still_works(client, users, auth_headers):
    send_json(client, "POST", "/api/v1/users/register", {**REGISTER, "username": "a" + NUL})
    send_json(client, "POST", "/api/v1/users/login", {"username": NUL, "password": "x"})
    users.register("bob")
    assert users.login("bob")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=%00", "q"),
        ("q=flask%00", "q"),
        ("author=%00", "author"),
        ("author=alice%00", "author"),
        ("page=%00", "page"),
        ("per_page=1%00", "per_page"),
    ],
)
def test_nul_in_a_query_parameter_is_422(client, query, field):
    assert field in assert_error(client.get(f"/api/v2/posts?{query}"), 422)["details"]


def test_nul_in_the_todos_query_is_422(client, auth_headers):
    response = client.get("/api/v2/todos?completed=%00", headers=auth_headers)
    assert "completed" in assert_error(response, 422)["details"]


def test_a_surrogate_cannot_arrive_in_a_query(client):
    # URLs are decoded as UTF-8 with replacement: the bytes of a surrogate become U+FFFD, a
    # character like any other, which matches nothing here.
    response = client.get("/api/v2/posts?q=%ED%BF%BF&author=%ED%BF%BF")
    assert response.status_code == 200
    assert response.get_json()["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts/%00",
        "/api/v1/posts/1%00",
        "/api/v1/posts/%ED%BF%BF",
        "/api/v2/todos/%00",
        "/api/v1/users/%00",
        "/api/%00/posts",
    ],
)
def test_nul_or_surrogate_bytes_in_the_path_are_404(client, auth_headers, path):
    assert_error(client.get(path, headers=auth_headers), 404)


def test_nul_in_the_token_is_401(client):
    response = client.get("/api/v1/users/me", headers={"Authorization": "Bearer a\x00b"})
    assert_error(response, 401)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"title": ' + nested(1000) + ', "body": "b"}', id="1000-deep-in-2kB"),
        pytest.param('{"title": ' + nested(100_000) + ', "body": "b"}', id="100000-deep"),
        pytest.param(nested(MAX_JSON_DEPTH + 1), id="just-over"),
        pytest.param(
            '{"a": ' + '{"a": ' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH + "}",
            id="objects-just-over",
        ),
    ],
)
def test_json_nested_too_deep_is_400(client, auth_headers, body):
    for url in ("/api/v1/posts", "/api/v1/users/login"):
        response = client.post(
            url, data=body, content_type="application/json", headers=auth_headers
        )
        assert "not valid JSON" in assert_error(response, 400)["message"]


def test_json_nested_to_the_limit_gets_to_validation(client, auth_headers):
    body = '{"title": "t", "body": "b", "extra": ' + nested(MAX_JSON_DEPTH - 1) + "}"
    response = client.post(
        "/api/v1/posts", data=body, content_type="application/json", headers=auth_headers
    )
    assert "extra" in assert_error(response, 422)["details"]


class _ServerStream:
    """A chunked body as gunicorn hands it over: no length, read until it ends."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def post_chunked(client, url: str, body: bytes, headers=None):
    return client.post(
        url,
        content_type="application/json",
        headers=headers or {},
        environ_overrides={
            "wsgi.input": _ServerStream(body),
            "wsgi.input_terminated": True,  # the server ends the stream, as gunicorn does
            "CONTENT_LENGTH": None,
        },
    )


def login_body(size: int) -> bytes:
    """A login body of exactly `size` bytes."""
    frame = b'{"username": "", "password": "x"}'
    return frame.replace(b'""', b'"' + b"u" * (size - len(frame)) + b'"')


@pytest.mark.parametrize("extra", [1, 10, 3 * MAX_BODY_BYTES])
def test_chunked_body_over_the_limit_is_413(client, extra):
    response = post_chunked(client, "/api/v1/users/login", login_body(MAX_BODY_BYTES + extra))
    assert_error(response, 413)


def test_chunked_body_at_the_limit_gets_to_validation(client):
    response = post_chunked(client, "/api/v1/users/login", login_body(MAX_BODY_BYTES))
    assert "username" in assert_error(response, 422)["details"]


def test_small_chunked_body_works(client, users):
    users.register("alice")
    body = json.dumps({"username": "alice", "password": PASSWORD}).encode()
    assert post_chunked(client, "/api/v1/users/login", body).status_code == 200


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_413_under_gunicorn(tmp_path):
    from .live_server import LiveServer

    def send(server, body: bytes) -> tuple[int, dict]:
        connection = server.connection()
        try:
            chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
            connection.request(
                "POST",
                "/api/v1/users/login",
                body=chunks,
                headers={"Content-Type": "application/json"},
                encode_chunked=True,
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    with LiveServer(tmp_path) as server:
        status, error = send(server, login_body(MAX_BODY_BYTES + 10))
        assert (status, error["error"]) == (413, "Request Entity Too Large")
        status, error = send(server, login_body(MAX_BODY_BYTES))
        assert (status, list(error["details"])) == (422, ["username"])
        status, error = send(server, json.dumps({"username": "nobody", "password": "x"}).encode())
        assert status == http.client.UNAUTHORIZED
