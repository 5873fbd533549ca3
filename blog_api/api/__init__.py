"""Mount the API versions and refuse request bodies that are not a JSON object."""

from __future__ import annotations

import json

from apiflask import APIFlask, abort
from flask import request

from .v1 import posts as v1_posts
from .v1 import todos as v1_todos
from .v1 import users
from .v2 import posts as v2_posts
from .v2 import todos as v2_todos

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


_INVALID = object()


def require_json_object() -> None:
    """abort(400) unless an API write request's body is a JSON object (validation comes after)."""
    if request.method not in BODY_METHODS or request.url_rule is None:
        return
    if not request.path.startswith("/api/"):
        return
    if not request.is_json:
        abort(400, "The request body must be JSON, sent with Content-Type: application/json.")
    try:
        data = json.loads(request.get_data(cache=True))
    except ValueError:  # also UnicodeDecodeError
        data = _INVALID
    if data is _INVALID:
        abort(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        abort(400, "The request body must be a JSON object.")


def init_app(app: APIFlask) -> None:
    """Register v1 and v2; v2 reuses v1's users blueprint as it is."""
    app.before_request(require_json_object)
    app.register_blueprint(users.bp, url_prefix="/api/v1/users")
    app.register_blueprint(v1_posts.bp, url_prefix="/api/v1/posts")
    app.register_blueprint(v1_todos.bp, url_prefix="/api/v1/todos")
    app.register_blueprint(users.bp, url_prefix="/api/v2/users", name="users_v2")
    app.register_blueprint(v2_posts.bp, url_prefix="/api/v2/posts")
    app.register_blueprint(v2_todos.bp, url_prefix="/api/v2/todos")
