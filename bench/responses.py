"""Every response of the hot routes, captured to compare two versions of the code byte for byte.

A change that makes a route cheaper must not change what it answers. Seed a database once, then
capture with each version of the code against copies of it, and compare the two files:

    .venv/bin/python bench/responses.py seed sqlite:////tmp/r/seed.db > /tmp/r/seeded
    cp /tmp/r/seed.db /tmp/r/a.db; cp /tmp/r/seed.db /tmp/r/b.db
    cd ../old && .venv/bin/python bench/responses.py capture \
        sqlite:////tmp/r/a.db "$(cat /tmp/r/seeded)" > /tmp/r/old.json
    cd ../new && .venv/bin/python bench/responses.py capture \
        sqlite:////tmp/r/b.db "$(cat /tmp/r/seeded)" > /tmp/r/new.json
    cmp /tmp/r/old.json /tmp/r/new.json

On PostgreSQL, copy with `CREATE DATABASE b TEMPLATE seed`. The capture writes (posts, todos),
so each version needs its own copy. What is compared: status, every header but `Date`, and the
body's bytes; the only values masked are the timestamps the capture's own writes make
(`created_at` and `updated_at` later than the capture's start), which differ between any two runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import base_env  # noqa: E402 - a sibling module

REQUESTS = [
    # (method, path, authorised, JSON body or None, raw body or None)
    ("GET", "/api/v1/posts/{post}", False, None),
    ("GET", "/api/v2/posts/{post}", False, None),
    ("GET", "/api/v1/posts/999999", False, None),
    ("GET", "/api/v1/posts/99999999999", False, None),
    ("GET", "/api/v1/posts", False, None),
    ("GET", "/api/v2/posts", False, None),
    ("GET", "/api/v2/posts?page=2&per_page=7", False, None),
    ("GET", "/api/v2/posts?page=99", False, None),
    ("GET", "/api/v2/posts?author=alice", False, None),
    ("GET", "/api/v2/posts?author=nobody", False, None),
    ("GET", "/api/v2/posts?q=Fifth", False, None),
    ("GET", "/api/v2/posts?q=50%25_off", False, None),
    ("GET", "/api/v2/posts?page=0", False, None),
    ("GET", "/api/v2/posts?per_page=101&page=x", False, None),
    ("GET", "/api/v1/todos", True, None),
    ("GET", "/api/v1/todos", False, None),
    ("GET", "/api/v2/todos", True, None),
    ("GET", "/api/v2/todos?completed=true&per_page=3", True, None),
    ("GET", "/api/v1/todos/{todo}", True, None),
    ("GET", "/api/v1/todos/999999", True, None),
    ("GET", "/api/v1/users/me", True, None),
    ("POST", "/api/v1/posts", True, {"title": "Captured", "body": "A post the capture wrote."}),
    ("POST", "/api/v1/posts", True, {"title": " ", "body": ""}),
    ("POST", "/api/v1/posts", True, {"title": "No body"}),
    ("POST", "/api/v1/posts", False, {"title": "t", "body": "b"}),
    ("POST", "/api/v1/posts", True, "not json"),
    ("POST", "/api/v1/posts", True, [1, 2]),
    ("PATCH", "/api/v1/posts/{post}", True, {"title": "Patched"}),
    ("PUT", "/api/v1/posts/{post}", True, {"title": "Put", "body": "Replaced."}),
    ("POST", "/api/v1/todos", True, {"title": "Captured todo"}),
    ("PATCH", "/api/v1/todos/{todo}", True, {"completed": True}),
    ("GET", "/api/v1/posts/{post}", False, None),
    ("DELETE", "/api/v1/todos/{todo}", True, None),
    ("GET", "/api/v1/todos/{todo}", True, None),
]
_STAMP = re.compile(rb'"(created_at|updated_at)":"([^"]*)"')


def _app(database_url: str):
    env = {**base_env(database_url), "LOG_LEVEL": "CRITICAL"}
    os.environ.clear()
    os.environ.update({**env, "OTEL_SDK_DISABLED": "true", "ACCESS_LOG": "false"})
    from blog_api import create_app

    return create_app()


def seed(database_url: str) -> None:
    """Migrate and fill the database; print the token and ids `capture` needs."""
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "blog_api", "db", "upgrade"],
        env={**os.environ, "DATABASE_URL": database_url, "APP_ENV": "development"},
        check=True,
        capture_output=True,
    )
    client = _app(database_url).test_client()
    tokens = {}
    for name in ("alice", "bob"):
        user = {"username": name, "email": f"{name}@example.org", "password": "correct horse"}
        client.post("/api/v1/users/register", json=user)
        login = client.post(
            "/api/v1/users/login", json={"username": name, "password": user["password"]}
        )
        tokens[name] = login.get_json()["access_token"]
    words = ["First", "Second", "Third", "Fourth", "Fifth", "50% off", "under_score"]
    posts = []
    for i in range(30):
        name = ("alice", "bob")[i % 2]
        post = {"title": f"{words[i % len(words)]} post {i}", "body": "Body text. " * (i + 1)}
        answer = client.post("/api/v1/posts", json=post, headers=_bearer(tokens[name]))
        posts.append(answer.get_json()["id"])
    todos = []
    for i in range(12):
        todo = {"title": f"Todo {i}", "completed": i % 3 == 0}
        answer = client.post("/api/v1/todos", json=todo, headers=_bearer(tokens["alice"]))
        todos.append(answer.get_json()["id"])
    print(json.dumps({"token": tokens["alice"], "post": posts[4], "todo": todos[2]}))


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def capture(database_url: str, seeded: dict) -> None:
    """Make REQUESTS in order and print what each answered, one JSON object a line."""
    from datetime import UTC, datetime

    started = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z").encode()

    def mask(match: re.Match) -> bytes:
        return b'"%s":"<now>"' % match[1] if match[2] >= started else match[0]

    client = _app(database_url).test_client()
    for method, path, authorised, body in REQUESTS:
        path = path.format(**seeded)
        headers = _bearer(seeded["token"]) if authorised else {}
        if isinstance(body, str):
            answer = client.open(path, method=method, data=body, headers=headers)
        else:
            answer = client.open(path, method=method, json=body, headers=headers)
        data = _STAMP.sub(mask, answer.get_data())
        kept = [(k, v) for k, v in answer.headers.items() if k != "Date"]
        line = {
            "request": f"{method} {path}",
            "status": answer.status,
            "headers": kept,
            "body": data.decode(),
        }
        print(json.dumps(line))


if __name__ == "__main__":
    command, url, *rest = sys.argv[1:]
    if command == "seed":
        seed(url)
    else:
        capture(url, json.loads(rest[0]))
