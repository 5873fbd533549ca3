"""Fixture chain: database_url -> app -> client -> users/auth headers.

Every API test runs twice: on a fresh SQLite file and on the real PostgreSQL at 127.0.0.1:5432.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
import redis
import sqlalchemy as sa

from blog_api import create_app
from blog_api.extensions import db
from blog_api.models import User

from . import databases
from .services import POSTGRES_URL, REDIS_URL, missing

SECRET = "test-secret-key-long-enough-for-hs256-and-hs512-0123456789abcdefghijklmn"
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _root_log_level():
    """Give each test the root logger's level it started with: create_app sets it for the whole
    process (LOG_LEVEL), and a test's CRITICAL must not hide the next test's records from caplog."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        missing(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.orig}")
    finally:
        engine.dispose()
    databases.remigrate_postgres(POSTGRES_URL)  # the real migrations, once a session
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the tests use (TEST_REDIS_URL, db 15 by default)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request, tmp_path) -> str:
    """A migrated database with no rows (see tests/databases.py)."""
    if request.param == "sqlite":
        return databases.migrated_sqlite(tmp_path / "blog.db")
    url = request.getfixturevalue("postgres_url")
    databases.empty_postgres(url)
    return url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def empty_database_url(request, tmp_path):
    """A reachable database with no tables at all: no migration has run on it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with databases.new_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def app_config(database_url) -> dict:
    return {
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    _settle_readiness(app)
    yield app
    databases.dispose_app(app)


def _settle_readiness(app, patience_s: float = 10.0) -> None:
    """Ask the database once before the test, waiting out a slow machine.

    The readiness gate gives the first API request 1.5 s for its check; a loaded CI machine has
    taken longer than that once, and the test then saw 503 for a database that was fine. A check
    that answers (up or down) settles it; only one that ran out of time is asked again, so tests
    of a database that is down or not migrated still see that at once.
    """
    checks = app.extensions["blog_api.health_checks"]
    deadline = time.monotonic() + patience_s
    while True:
        result = checks.run(("database",))["database"]
        if "no answer within" not in result.get("error", "") or time.monotonic() > deadline:
            return
        time.sleep(0.2)


@pytest.fixture
def client(app):
    return app.test_client()


class Users:
    """Register users through the API and hand back their auth headers."""

    def __init__(self, app, client) -> None:
        self.app = app
        self.client = client

    def register(self, username: str, password: str = PASSWORD, email: str | None = None) -> dict:
        response = self.client.post(
            "/api/v1/users/register",
            json={
                "username": username,
                "email": email or f"{username}@example.org",
                "password": password,
            },
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def login(self, username: str, password: str = PASSWORD) -> dict:
        response = self.client.post(
            "/api/v1/users/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    def headers(self, username: str, admin: bool = False) -> dict:
        """Register `username` (an admin if asked) and return its Authorization header."""
        self.register(username)
        if admin:
            with self.app.app_context():
                db.session.execute(
                    sa.update(User).where(User.username == username).values(is_admin=True)
                )
                db.session.commit()
        return self.login(username)


@pytest.fixture
def users(app, client) -> Users:
    return Users(app, client)


@pytest.fixture
def auth_headers(users) -> dict:
    return users.headers("alice")


def assert_error(response, status: int) -> dict:
    """Assert the one error shape of DESIGN.md and return the body."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"error", "message", "details"}
    return body


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def hanging_port():
    """A server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()
