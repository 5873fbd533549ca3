"""What a request costs the app itself, next to the floor: WSGI apps called directly, one process.

No server, no client, no socket: each variant's WSGI app is called as gunicorn's worker calls it,
on the same database, interleaved round after round (every variant once a round, in an order
rotated each round), so the machine's drift hits them alike. Variants:

- `floor`: bench/floor_app.py, plain Flask answering the same routes with the same JSON through
  the driver directly (what Flask itself costs);
- `off`: blog-api with telemetry off (`OTEL_SDK_DISABLED=true`, `ACCESS_LOG=false`);
- `shipped`: blog-api as it ships: every request and statement traced and exported over OTLP/HTTP
  to a local receiver, metrics recorded, the access line written (to /dev/null here).

Routes: `get` (GET /api/v1/posts/<id>), `page` (GET /api/v2/posts, a page of 20), `todos`
(GET /api/v1/todos, 20 todos of the token's user), `post` (POST /api/v1/posts).

    .venv/bin/python bench/inprocess.py [--database sqlite|postgresql] [--rounds 7]
        [--requests 400] [--routes get,page,todos,post] [--variants floor,off,shipped]

It prints µs per request, wall-clock (median over rounds, and the range), the ratio to the floor
measured in the same run, and the process's CPU per request (`time.process_time`: the export
thread's work counts; the PostgreSQL server's does not), then one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Database, TraceReceiver, base_env, migrate  # noqa: E402 - a sibling module

ROUTES = ("get", "page", "todos", "post")
VARIANTS = ("floor", "off", "shipped")


def build(variant: str, env: dict, receiver: TraceReceiver):
    """The variant's WSGI app."""
    if variant == "floor":
        from floor_app import create_app as floor

        return floor(env["DATABASE_URL"], env["SECRET_KEY"])
    from blog_api import create_app

    if variant == "off":
        return create_app({**env, "OTEL_SDK_DISABLED": "true", "ACCESS_LOG": "false"})
    return create_app(
        {**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.otlp_endpoint("shipped")}
    )


def seed(app) -> tuple[str, int]:
    """A user with 30 posts and 20 todos; its token and one post id."""
    client = app.test_client()
    user = {"username": "bench", "email": "bench@example.org", "password": "correct horse"}
    client.post("/api/v1/users/register", json=user)
    login = client.post(
        "/api/v1/users/login", json={"username": "bench", "password": user["password"]}
    )
    token = login.get_json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    ids = []
    for i in range(30):
        post = {"title": f"Post {i}", "body": "The post every benchmark request reads. " * 10}
        ids.append(client.post("/api/v1/posts", json=post, headers=auth).get_json()["id"])
    for i in range(20):
        client.post("/api/v1/todos", json={"title": f"Todo {i}"}, headers=auth)
    return token, ids[0]


def environs(token: str, post_id: int) -> dict[str, dict]:
    """A WSGI environ for each route, as gunicorn would pass it."""
    from werkzeug.test import EnvironBuilder

    auth = {"Authorization": f"Bearer {token}"}
    body = json.dumps({"title": "A new post", "body": "Written by the benchmark. " * 10})
    specs = {
        "get": ("GET", f"/api/v1/posts/{post_id}", {}, None),
        "page": ("GET", "/api/v2/posts", {}, None),
        "todos": ("GET", "/api/v1/todos", auth, None),
        "post": ("POST", "/api/v1/posts", {**auth, "Content-Type": "application/json"}, body),
    }
    out = {}
    for name, (method, path, headers, data) in specs.items():
        builder = EnvironBuilder(
            path=path,
            method=method,
            headers={"User-Agent": "wrk", **headers},
            data=data,
            environ_base={
                "REMOTE_ADDR": "127.0.0.1",
                "REMOTE_PORT": "40000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "RAW_URI": path,
            },
        )
        out[name] = (builder.get_environ(), data.encode() if data else b"")
    return out


def caller(app, environ: dict, body: bytes):
    """One request through `app`, its body read to the end, as a server does."""
    expected = "201" if environ["REQUEST_METHOD"] == "POST" else "200"

    def start_response(status, headers, exc_info=None):
        if not status.startswith(expected):
            raise RuntimeError(f"{environ['PATH_INFO']} answered {status}")

    def one() -> None:
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        result = app(env, start_response)
        for _ in result:
            pass
        getattr(result, "close", lambda: None)()

    return one


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--requests", type=int, default=400, help="per variant, route and round")
    p.add_argument("--routes", default=",".join(ROUTES))
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args(argv)
    routes = args.routes.split(",")
    names = args.variants.split(",")
    if set(routes) - set(ROUTES) or set(names) - set(VARIANTS):
        p.error(f"routes: {', '.join(ROUTES)}; variants: {', '.join(VARIANTS)}")

    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="blog-api-inprocess-"))
    database = Database(args.database, tmp)
    receiver = TraceReceiver()
    try:
        env = {**base_env(database.url), "WRITE_LIMIT_PER_ADDRESS": "1000000/minute"}
        env.pop("REDIS_URL", None)
        migrate(env)
        apps = {name: build(name, env, receiver) for name in names}
        token, post_id = seed(apps.get("off") or build("off", env, receiver))
        calls = {
            (name, route): caller(apps[name], *spec)
            for name in names
            for route, spec in environs(token, post_id).items()
            if route in routes
        }
        devnull = open(os.devnull, "w")  # noqa: SIM115 - the access lines, for the whole run
        sys.stderr, stderr = devnull, sys.stderr
        try:
            for one in calls.values():  # warm every path and cache before anything is timed
                for _ in range(50):
                    one()
        finally:
            sys.stderr = stderr
        gc.collect()
        gc.freeze()
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
        cpu: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
        keys = list(calls)
        print(
            f"in-process µs per request, {args.database}, {args.rounds} rounds x "
            f"{args.requests} requests",
            flush=True,
        )
        for r in range(args.rounds):
            order = keys[r % len(keys) :] + keys[: r % len(keys)]
            for key in order:
                one = calls[key]
                stderr, sys.stderr = sys.stderr, devnull
                try:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    for _ in range(args.requests):
                        one()
                    spent = time.perf_counter() - started
                    cpu_spent = time.process_time() - cpu_started
                finally:
                    sys.stderr = stderr
                samples[key].append(spent / args.requests * 1e6)
                cpu[key].append(cpu_spent / args.requests * 1e6)
        results = {}
        for route in routes:
            floor = statistics.median(samples[("floor", route)]) if "floor" in names else None
            for name in names:
                values = samples[(name, route)]
                median = statistics.median(values)
                cpu_us = statistics.median(cpu[(name, route)])
                ratio = median / floor if floor else None
                results.setdefault(route, {})[name] = {
                    "us": round(median, 1),
                    "range": [round(min(values), 1), round(max(values), 1)],
                    "ratio_to_floor": round(ratio, 2) if ratio else None,
                    "cpu_us": round(cpu_us, 1),
                }
                shown = f"{ratio:5.2f}x floor" if ratio else ""
                print(
                    f"  {route:6} {name:8} {median:8.1f} µs  ({min(values):.1f}-{max(values):.1f})"
                    f"  {shown}  cpu {cpu_us:7.1f} µs"
                )
        print(json.dumps({"bench": "inprocess", "database": args.database, "results": results}))
        return 0
    finally:
        receiver.close()
        database.drop()


if __name__ == "__main__":
    sys.exit(main())
