"""The floor: a plain Flask app answering blog-api's four hot routes with the same JSON.

What Flask itself costs for the same work, for every benchmark to be read as a ratio to it: the
same database (the file or server blog-api uses, migrated by it), read and written through the
driver directly (`sqlite3`, or psycopg2 on PostgreSQL) on one connection per thread, the bearer
token checked with PyJWT as blog-api does, and `jsonify` of the same bytes. No ORM, no schemas,
no validation beyond what keeps it correct for the benchmark's requests, no telemetry.

    gunicorn -c gunicorn.conf.py --pythonpath bench "floor_app:create_app()"

Routes: GET /api/v1/posts/<id>, GET /api/v2/posts (a page of 20, with its total),
GET /api/v1/todos and POST /api/v1/posts (both need `Authorization: Bearer <token>`, a token
from blog-api's login, signed with the same SECRET_KEY).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime

import jwt
from flask import Flask, abort, jsonify, request

_POST = (
    "SELECT p.id, p.title, p.body, u.id, u.username, p.created_at, p.updated_at"
    " FROM posts p JOIN users u ON u.id = p.author_id"
)


def _iso(value) -> str:
    """The timestamp as blog-api writes it: ISO 8601, microseconds, UTC with a Z."""
    if isinstance(value, str):  # SQLite hands back its text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _post(row) -> dict:
    return {
        "id": row[0],
        "title": row[1],
        "body": row[2],
        "author": {"id": row[3], "username": row[4]},
        "created_at": _iso(row[5]),
        "updated_at": _iso(row[6]),
    }


def create_app(database_url: str | None = None, secret_key: str | None = None) -> Flask:
    url = database_url or os.environ["DATABASE_URL"]
    secret = secret_key or os.environ["SECRET_KEY"]
    app = Flask(__name__)
    app.json.sort_keys = False
    local = threading.local()

    if url.startswith("sqlite:///"):
        path, mark = url.removeprefix("sqlite:///"), "?"

        def connect():
            return sqlite3.connect(path, check_same_thread=False)
    else:
        import psycopg2

        dsn, mark = url.replace("postgresql+psycopg2://", "postgresql://"), "%s"

        def connect():
            conn = psycopg2.connect(dsn)
            conn.autocommit = True
            return conn

    def cursor():
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect()
        return conn, conn.cursor()

    def user_id() -> int:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            abort(401)
        try:
            claims = jwt.decode(header[7:], secret, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            abort(401)
        _, cur = cursor()
        cur.execute(f"SELECT id FROM users WHERE id = {mark}", (int(claims["sub"]),))
        row = cur.fetchone()
        if row is None:
            abort(401)
        return row[0]

    @app.get("/health/live")
    def live():  # what the benchmarks wait for before they load a server
        return {"status": "up"}

    @app.get("/api/v1/posts/<int:post_id>")
    def get_post(post_id: int):
        _, cur = cursor()
        cur.execute(f"{_POST} WHERE p.id = {mark}", (post_id,))
        row = cur.fetchone()
        if row is None:
            abort(404)
        return jsonify(_post(row))

    @app.get("/api/v2/posts")
    def post_page():
        page, per_page = request.args.get("page", 1, int), request.args.get("per_page", 20, int)
        _, cur = cursor()
        cur.execute(
            f"{_POST} ORDER BY p.id DESC LIMIT {mark} OFFSET {mark}",
            (per_page, (page - 1) * per_page),
        )
        items = [_post(row) for row in cur.fetchall()]
        cur.execute("SELECT count(*) FROM posts")
        total = cur.fetchone()[0]
        pages = -(-total // per_page)
        return jsonify(items=items, page=page, per_page=per_page, total=total, pages=pages)

    @app.get("/api/v1/todos")
    def todos():
        owner = user_id()
        _, cur = cursor()
        cur.execute(
            "SELECT id, title, completed, created_at, updated_at FROM todos"
            f" WHERE owner_id = {mark} ORDER BY id DESC LIMIT 100",
            (owner,),
        )
        return jsonify(
            [
                {
                    "id": r[0],
                    "title": r[1],
                    "completed": bool(r[2]),
                    "created_at": _iso(r[3]),
                    "updated_at": _iso(r[4]),
                }
                for r in cur.fetchall()
            ]
        )

    @app.post("/api/v1/posts")
    def new_post():
        author = user_id()
        data = request.get_json()
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) and data[k].strip() for k in ("title", "body")
        ):
            abort(422)
        now = datetime.now(UTC).replace(tzinfo=None)
        conn, cur = cursor()
        cur.execute(
            "INSERT INTO posts (title, body, author_id, created_at, updated_at)"
            f" VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) RETURNING id",
            (data["title"], data["body"], author, now, now),
        )
        post_id = cur.fetchone()[0]
        if mark == "?":
            conn.commit()
        cur.execute(f"{_POST} WHERE p.id = {mark}", (post_id,))
        return jsonify(_post(cur.fetchone())), 201

    return app
