"""A slow statement is that request's 503, never an outage: the breaker stays closed.

Under gunicorn (2 workers) on a PostgreSQL database of 300,000 posts with DATABASE_TIMEOUT at
0.5 s (so statement_timeout is 0.3 s), two clients search for a word no post contains, each
search walking every row, for 10 s, while a third reads one post over and over.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa

from . import databases
from .live_server import LiveServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POSTS = 300_000
SEARCH = "/api/v2/posts?q=nowordlikethis"


@pytest.fixture
def large_database(postgres_url):
    with databases.new_postgres_database(postgres_url) as url:
        databases.upgrade(url)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (username, email, password_hash, is_admin, created_at)"
                    " VALUES ('writer', 'writer@example.org', 'x', false, now())"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO posts (title, body, author_id, created_at, updated_at)"
                    " SELECT 'Post ' || n, repeat('Words about many things. ', 12), u.id,"
                    " now(), now() FROM generate_series(1, :n) AS n, users AS u"
                ),
                {"n": POSTS},
            )
            conn.execute(sa.text("ANALYZE posts"))
        engine.dispose()
        yield url


def _loop(server: LiveServer, path: str, until: float, statuses: list, bodies: list) -> None:
    while time.monotonic() < until:
        status, body = server.request("GET", path)
        statuses.append(status)
        if status != 200:
            bodies.append(body)


def test_slow_searches_leave_other_requests_alone(large_database, tmp_path):
    with LiveServer(
        tmp_path, workers=2, DATABASE_URL=large_database, DATABASE_TIMEOUT="0.5"
    ) as server:
        for _ in range(10):  # both workers ready (their first readiness check done)
            assert server.request("GET", "/api/v1/posts/1")[0] == 200
        until = time.monotonic() + 10
        searches: list[int] = []
        search_bodies: list[bytes] = []
        reads: list[int] = []
        read_bodies: list[bytes] = []
        threads = [
            threading.Thread(target=_loop, args=(server, SEARCH, until, searches, search_bodies))
            for _ in range(2)
        ]
        threads.append(
            threading.Thread(
                target=_loop, args=(server, "/api/v1/posts/1", until, reads, read_bodies)
            )
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        assert reads and set(reads) == {200}, (len(reads), read_bodies[:3])
        assert searches and set(searches) == {503}, set(searches)
        answer = json.loads(search_bodies[0])
        assert answer["message"].startswith("The database took too long"), answer
        log = server.log()
        assert "statement cancelled by statement_timeout" in log
        assert "database unavailable" not in log  # the breaker's ERROR line
        families = server.scrape()
        cancelled = [
            s.value
            for s in families["blog_api_database_statement_timeouts"]
            if s.name.endswith("_total") and s.labels.get("http_route") == "/api/v2/posts"
        ]
        assert cancelled and cancelled[0] >= len(searches) * 0.9, (cancelled, len(searches))
