"""Send a fixed set of requests through the app and print what telemetry showed, as JSON.

Run by tests/test_instrumentation_parity.py in a fresh interpreter, once per
TELEMETRY_INSTRUMENTATION (each needs the process's providers and semconv mode to itself):

    python tests/parity_run.py DATABASE_URL OTLP_ENDPOINT
"""

from __future__ import annotations

import json
import os
import sys

from flask import Response, abort
from opentelemetry import trace
from sqlalchemy import text

from blog_api import create_app
from blog_api.extensions import db

SECRET = "parity-secret-key-long-enough-for-hs256-0123456789abcdef"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UNSAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-00"
ENVIRON = {"REMOTE_ADDR": "10.0.0.7", "REMOTE_PORT": "5555"}


def add_views(app) -> None:
    """Views for what the blog routes never do: raise, stream, hand-made spans, bad SQL."""

    def boom():
        raise RuntimeError("boom")

    def forbidden():
        abort(409, "taken")

    def stream():
        return Response((part for part in ("a", "b")), mimetype="text/plain")

    def many_statements():
        db.session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS parity_many (x INTEGER)"))
        db.session.execute(text("INSERT INTO parity_many (x) VALUES (:x)"), [{"x": 1}, {"x": 2}])
        with trace.get_tracer("parity.user_code").start_as_current_span("count rows"):
            db.session.execute(text("/* counted */ SELECT count(*) FROM parity_many")).scalar()
        db.session.rollback()
        return {"ok": True}

    def bad_sql():
        db.session.execute(text("SELECT * FROM no_such_table"))
        return {"unreachable": True}

    def early():
        return {"unreachable": True}

    def answer_early():
        from flask import request

        if request.path == "/api/v1/early":
            return {"answered": "by a before_request hook"}, 429
        return None

    for rule, view in (
        ("/api/v1/boom", boom),
        ("/api/v1/abort", forbidden),
        ("/api/v1/stream", stream),
        ("/api/v1/many", many_statements),
        ("/api/v1/bad-sql", bad_sql),
        ("/api/v1/early", early),
    ):
        app.add_url_rule(rule, view.__name__, view)
    app.before_request(answer_early)


def main(database_url: str, endpoint: str) -> None:
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET,
            "BCRYPT_ROUNDS": "4",
            "LOG_LEVEL": "CRITICAL",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        }
    )
    add_views(app)
    client = app.test_client()
    results = []

    def send(label: str, method: str, path: str, **kwargs):
        kwargs.setdefault("environ_base", ENVIRON)
        response = client.open(path, method=method, **kwargs)
        response.get_data()
        results.append(
            {
                "label": label,
                "method": method,
                "path": path,
                "status": response.status_code,
                "traceresponse": response.headers.get("traceresponse"),
                "expose": response.headers.get("access-control-expose-headers"),
            }
        )
        return response

    user = {"username": "alice", "email": "a@example.org", "password": "password1"}
    send("register", "POST", "/api/v1/users/register", json=user)
    login = {"username": "alice", "password": "password1"}
    token = send("login", "POST", "/api/v1/users/login", json=login).get_json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    send("login failed", "POST", "/api/v1/users/login", json={**user, "password": "wrong-one"})
    send("create", "POST", "/api/v1/posts", json={"title": "t", "body": "b"}, headers=auth)
    send("read", "GET", "/api/v1/posts/1")
    send(
        "read with query and a bot",
        "GET",
        "/api/v2/posts?per_page=5&q=t",
        headers={"User-Agent": "Googlebot/2.1"},
    )
    send("head", "HEAD", "/api/v1/posts/1", headers={"User-Agent": "curl/8.0"})
    send("not found", "GET", "/api/v1/posts/99999")
    send("unauthorized", "POST", "/api/v1/posts", json={"title": "t", "body": "b"})
    send("validation", "POST", "/api/v1/posts", json={"title": ""}, headers=auth)
    send("bad json", "POST", "/api/v1/posts", data="{", content_type="application/json")
    send("unmatched", "GET", "/no/such/route/12345")
    send("method not allowed", "DELETE", "/api/v1/posts")
    send("unknown method", "FOO", "/api/v1/posts/1")
    send("traceparent", "GET", "/api/v1/posts", headers={"traceparent": TRACEPARENT})
    send("unsampled traceparent", "GET", "/api/v1/posts", headers={"traceparent": UNSAMPLED})
    send("exception", "GET", "/api/v1/boom")
    send("abort", "GET", "/api/v1/abort")
    send("stream", "GET", "/api/v1/stream")
    send("several statements", "GET", "/api/v1/many")
    send("failing statement", "GET", "/api/v1/bad-sql")
    send("before_request answers", "GET", "/api/v1/early")
    send("health", "GET", "/health")

    providers = app.extensions["telemetry"].providers
    assert providers.tracer_provider.force_flush(10_000)
    metrics = client.get("/metrics").get_data(as_text=True)
    print(json.dumps({"requests": results, "metrics": metrics}), flush=True)
    os._exit(0)  # the spans are out; skip the exit-time flush


if __name__ == "__main__":
    main(*sys.argv[1:3])
