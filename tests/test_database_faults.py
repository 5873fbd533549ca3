"""Database faults under real gunicorn (the project's gunicorn.conf.py, 2 workers) with the real
PostgreSQL behind a TCP proxy of the test's own (tests/tcp_proxy.py): late, empty, frozen, gone.

Every phase is bounded in time; no phase may ever answer 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from blog_api.config import DEFAULT_THREADS

from . import databases
from .live_server import LiveServer
from .tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POSTS = "/api/v1/posts"


@contextmanager
def _behind_proxy(postgres_url: str, mode: str, migrated: bool = True) -> Iterator[tuple]:
    """A private database (migrated or not) and a proxy to its server: (proxy, url via it)."""
    with databases.new_postgres_database(postgres_url) as direct_url:
        if migrated:
            databases.upgrade(direct_url)
        server = sa.make_url(direct_url)
        with TcpProxy((server.host or "127.0.0.1", server.port or 5432), mode=mode) as proxy:
            url = server.set(host="127.0.0.1", port=proxy.port)
            yield proxy, url.render_as_string(hide_password=False)


def _timed(server: LiveServer, path: str) -> tuple[int, float, bytes]:
    started = time.monotonic()
    status, body = server.request("GET", path)
    return status, time.monotonic() - started, body


def _until(server: LiveServer, path: str, status: int, within_s: float, seen: list) -> float:
    """Poll `path` until it answers `status` 8 times in a row (both workers, whichever answers);
    how long it took. Every status goes to `seen`."""
    started, in_a_row = time.monotonic(), 0
    while time.monotonic() - started < within_s:
        got, _, _ = _timed(server, path)
        seen.append(got)
        in_a_row = in_a_row + 1 if got == status else 0
        if in_a_row == 8:
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"{path} did not answer {status} within {within_s} s; last {seen[-5:]}")


def _assert_unavailable(server: LiveServer, path: str = POSTS, within_s: float = 3.0) -> None:
    status, elapsed, body = _timed(server, path)
    assert status == 503, (status, body)
    assert elapsed < within_s, f"{path} took {elapsed:.2f} s"


def test_a_database_late_at_start_is_503_then_200_without_a_restart(postgres_url, tmp_path):
    with _behind_proxy(postgres_url, "refuse") as (proxy, url):
        with LiveServer(tmp_path, workers=2, DATABASE_URL=url) as server:
            seen: list[int] = []
            for _ in range(4):  # both workers, whichever answers
                _assert_unavailable(server)
                _assert_unavailable(server, "/health/ready")

            proxy.mode = "forward"  # the database arrives
            _until(server, POSTS, 200, within_s=10, seen=seen)
            _until(server, "/health/ready", 200, within_s=10, seen=seen)
            assert 500 not in seen
            assert "Traceback" not in server.log()


def test_an_empty_database_arriving_late_is_never_ready_and_never_500(postgres_url, tmp_path):
    with _behind_proxy(postgres_url, "refuse", migrated=False) as (proxy, url):
        with LiveServer(tmp_path, workers=2, DATABASE_URL=url) as server:
            _assert_unavailable(server)
            _assert_unavailable(server, "/health/ready")

            proxy.mode = "forward"  # it arrives, with no tables
            seen: dict[str, list[int]] = {POSTS: [], "/health/ready": [], "/api/v2/todos": []}
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                for path, statuses in seen.items():
                    statuses.append(server.request("GET", path)[0])
                time.sleep(0.05)
            assert set(seen[POSTS]) == {503}, seen[POSTS]
            assert set(seen["/health/ready"]) == {503}, seen["/health/ready"]
            assert set(seen["/api/v2/todos"]) <= {401, 503}, seen["/api/v2/todos"]
            _, body = server.request("GET", "/health/ready")
            assert b"schema missing" in body, body


STUCK = DEFAULT_THREADS - 1


def test_a_frozen_database_is_a_fast_503_and_health_answers_meanwhile(postgres_url, tmp_path):
    with _behind_proxy(postgres_url, "forward") as (proxy, url):
        with LiveServer(tmp_path, workers=2, DATABASE_URL=url) as server:
            seen: list[int] = []
            _until(server, POSTS, 200, within_s=10, seen=seen)
            for _ in range(10):  # pooled connections in both workers
                assert server.request("GET", POSTS)[0] == 200
            time.sleep(1.1)  # no /health result younger than a second to reuse

            proxy.mode = "freeze"
            results: list[tuple[int, float, bytes]] = []
            # One fewer than a worker's threads (GUNICORN_THREADS, 4): however they spread over
            # the workers, each worker has a thread left for the probes.
            clients = [
                threading.Thread(target=lambda: results.append(_timed(server, POSTS)))
                for _ in range(STUCK)
            ]
            for client in clients:
                client.start()
            time.sleep(0.5)  # they are waiting on the frozen database by now
            health_status, health_s, health_body = _timed(server, "/health")
            live_status, live_s, _ = _timed(server, "/health/live")
            for client in clients:
                client.join(timeout=15)

            assert [r[0] for r in results] == [503] * STUCK, results
            assert max(r[1] for r in results) < 3.0, [round(r[1], 2) for r in results]
            assert health_status == 503, health_body
            assert health_s < 2.0, health_s
            assert live_status == 200 and live_s < 2.0
            _assert_unavailable(server)  # still frozen: fast

            proxy.mode = "forward"
            _until(server, POSTS, 200, within_s=10, seen=seen)
            _until(server, "/health", 200, within_s=10, seen=seen)
            assert 500 not in seen
            assert "Traceback" not in server.log()


def test_a_database_gone_mid_traffic_is_503_and_back_is_200(postgres_url, tmp_path):
    with _behind_proxy(postgres_url, "forward") as (proxy, url):
        with LiveServer(tmp_path, workers=2, DATABASE_URL=url, LOG_LEVEL="INFO") as server:
            seen: list[int] = []
            _until(server, POSTS, 200, within_s=10, seen=seen)
            stop = threading.Event()
            slowest = [0.0]

            def traffic() -> None:
                while not stop.is_set():
                    status, elapsed, _ = _timed(server, POSTS)
                    seen.append(status)
                    slowest[0] = max(slowest[0], elapsed)

            runners = [threading.Thread(target=traffic) for _ in range(3)]
            for runner in runners:
                runner.start()
            try:
                time.sleep(0.5)
                proxy.mode = "refuse"  # gone: connections cut, new ones refused
                gone = len(seen)
                time.sleep(2.0)
                assert 503 in seen[gone:], seen[gone:]
                _assert_unavailable(server)

                proxy.mode = "forward"
                back = time.monotonic()
                _until(server, POSTS, 200, within_s=10, seen=seen)
                assert time.monotonic() - back < 10
                time.sleep(0.5)
            finally:
                stop.set()
                for runner in runners:
                    runner.join(timeout=15)
            assert set(seen) == {200, 503}, sorted(set(seen))
            assert slowest[0] < 3.0, slowest
            assert seen[-1] == 200
            log = server.log()
            assert "Traceback" not in log
            # Two workers: one line each at most when it went away, one when it came back.
            assert 1 <= log.count("database unavailable (") <= 2, log[-3000:]
            assert 1 <= log.count("database available again after") <= 2, log[-3000:]
