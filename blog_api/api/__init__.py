"""Mount the API versions and refuse request bodies that are not a JSON object."""

from __future__ import annotations

import json

from apiflask import APIFlask, abort
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from .v1 import posts as v1_posts
from .v1 import todos as v1_todos
from .v1 import users
from .v2 import posts as v2_posts
from .v2 import todos as v2_todos

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Our bodies are flat objects; anything much deeper is an attack on the parser (RecursionError).
MAX_JSON_DEPTH = 32


_INVALID = object()


def require_json_object() -> None:
    """abort(400) unless an API write request's body is a JSON object (validation comes after)."""
    if request.method not in BODY_METHODS or request.url_rule is None:
        return
    if not request.path.startswith("/api/"):
        return
    if not request.is_json:
        abort(400, "The request body must be JSON, sent with Content-Type: application/json.")
    body = _read_body()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # also UnicodeDecodeError
        data = _INVALID
    if data is _INVALID or _too_deep(body, data):
        abort(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        abort(400, "The request body must be a JSON object.")


def _read_body() -> bytes:
    """The body, or abort(413) when it is over the limit, also when it came without a length."""
    body = request.get_data(cache=True)
    limit = request.max_content_length
    # With Content-Length, Werkzeug refuses a large body before reading it. A chunked body is read
    # up to the limit and silently cut there: one more byte from the server's stream tells.
    if limit is not None and request.content_length is None and len(body) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    return body


def _too_deep(body: bytes, data: object) -> bool:
    """Whether `data` nests arrays and objects deeper than MAX_JSON_DEPTH."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False  # too few brackets to nest that deep: skip the walk
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((item, depth + 1) for item in value)
    return False


def init_app(app: APIFlask) -> None:
    """Register v1 and v2; v2 reuses v1's users blueprint as it is."""
    app.before_request(require_json_object)
    app.register_blueprint(users.bp, url_prefix="/api/v1/users")
    app.register_blueprint(v1_posts.bp, url_prefix="/api/v1/posts")
    app.register_blueprint(v1_todos.bp, url_prefix="/api/v1/todos")
    app.register_blueprint(users.bp, url_prefix="/api/v2/users", name="users_v2")
    app.register_blueprint(v2_posts.bp, url_prefix="/api/v2/posts")
    app.register_blueprint(v2_todos.bp, url_prefix="/api/v2/todos")
