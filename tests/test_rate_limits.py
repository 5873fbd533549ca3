"""Brute force and write limits: 429 with Retry-After, before bcrypt, shared through Redis.

Failed logins are limited per account (5 per 15 minutes by default) and per client address (20),
writes per address; counted in Redis when REDIS_URL is set, in memory otherwise and while Redis
fails. Each app here is new (memory) or has a Redis key prefix of its own, so no count leaks from
one test into another.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from blog_api import create_app

from .conftest import PASSWORD, _settle_readiness, assert_error
from .live_server import LiveServer, total
from .test_metrics import scrape

LOGIN = "/api/v1/users/login"
WRONG = "wrong password"
WINDOW_S = 15 * 60


def login(client, username: str, password: str = WRONG, address: str = "127.0.0.1"):
    return client.post(
        LOGIN,
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def assert_throttled(response) -> int:
    """A 429 in the one error shape with a Retry-After of whole seconds; return it."""
    assert_error(response, 429)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW_S
    return retry_after


def throttled_logins(client) -> float:
    return total(scrape(client), "blog_api_logins", "blog_api_logins_total", outcome="throttled")


def test_25_failed_logins_then_429_even_for_the_right_password(client, users):
    users.register("alice")
    before = throttled_logins(client)
    statuses = [login(client, "alice").status_code for _ in range(25)]
    assert statuses == [401] * 5 + [429] * 20
    assert_throttled(login(client, "alice"))
    # The owner's right password is refused too while throttled (bcrypt never ran).
    right = login(client, "alice", PASSWORD)
    assert_throttled(right)
    assert "access_token" not in right.get_json()
    # The same account by its email, or by its name in another case, shares the count.
    assert_throttled(login(client, "ALICE", PASSWORD))
    assert_throttled(login(client, "alice@example.org", PASSWORD))
    assert throttled_logins(client) - before == 20 + 4


def test_40_usernames_guessed_from_one_address_then_429(client, users):
    users.register("alice")
    statuses = [login(client, f"guess{i}").status_code for i in range(40)]
    assert statuses == [401] * 20 + [429] * 20
    assert_throttled(login(client, "alice", PASSWORD))
    # Another address is not held back by this one's guesses, and its owner logs in.
    assert login(client, "alice", PASSWORD, address="192.0.2.7").status_code == 200
    assert login(client, "guess41", address="192.0.2.7").status_code == 401


def test_a_success_forgives_earlier_typos(client, users):
    users.register("alice")
    for _ in range(2):
        assert [login(client, "alice").status_code for _ in range(4)] == [401] * 4
        assert login(client, "alice", PASSWORD).status_code == 200


def test_x_forwarded_for_counts_only_behind_trusted_proxies(app_config, users):
    def guesses(app, forwarded_for: str) -> list[int]:
        client = app.test_client()
        headers = {"X-Forwarded-For": forwarded_for}
        return [
            client.post(
                LOGIN, json={"username": f"g{i}", "password": WRONG}, headers=headers
            ).status_code
            for i in range(3)
        ]

    limits = {"LOGIN_LIMIT_PER_ADDRESS": "2 per 15 minutes"}
    direct = create_app({**app_config, **limits})
    # A client writing its own X-Forwarded-For does not become a new address...
    assert (
        guesses(direct, "198.51.100.1") + guesses(direct, "198.51.100.2") == [401, 401] + [429] * 4
    )
    # ...unless a trusted proxy (TRUSTED_PROXIES=1) put it there.
    proxied = create_app({**app_config, **limits, "TRUSTED_PROXIES": "1"})
    assert guesses(proxied, "198.51.100.1") == [401, 401, 429]
    assert guesses(proxied, "198.51.100.2") == [401, 401, 429]


@pytest.fixture
def write_limited(app_config):
    app = create_app({**app_config, "WRITE_LIMIT_PER_ADDRESS": "4 per minute"})
    _settle_readiness(app)
    return app.test_client()


def test_writes_are_limited_per_address(write_limited):
    client = write_limited
    user = {"username": "alice", "email": "a@example.org", "password": PASSWORD}
    assert client.post("/api/v1/users/register", json=user).status_code == 201  # 1st write
    token = login(client, "alice", PASSWORD).get_json()["access_token"]  # login: not a write
    headers = {"Authorization": f"Bearer {token}"}
    post = {"title": "t", "body": "b"}
    assert [client.post("/api/v1/posts", json=post, headers=headers).status_code for _ in range(3)]
    assert_throttled(client.post("/api/v2/todos", json={"title": "t"}, headers=headers))
    assert_throttled(client.delete("/api/v1/posts/1", headers=headers))
    assert client.get("/api/v1/posts").status_code == 200  # reads are not limited
    other = client.post(
        "/api/v1/posts", json=post, headers=headers, environ_base={"REMOTE_ADDR": "192.0.2.9"}
    )
    assert other.status_code == 201


def test_a_throttled_write_reads_no_body(write_limited):
    for _ in range(4):
        write_limited.post("/api/v1/posts", json={})
    assert_throttled(write_limited.post("/api/v1/posts", data=b"\x00 not json"))


def test_failed_and_throttled_logins_log_the_name_and_address(client, caplog):
    sneaky = "eve\n2026-11-29 INFO forged line\x1b[31m" + "x" * 200
    with caplog.at_level(logging.INFO, logger="blog_api.logins"):
        for _ in range(6):
            login(client, sneaky, address="203.0.113.5")
    events = [r for r in caplog.records if r.name == "blog_api.logins"]
    assert [(r.levelname, r.getMessage()) for r in events] == [("INFO", "login failed")] * 5 + [
        ("WARNING", "login throttled")
    ]
    for record in events:
        assert record.client_address == "203.0.113.5"
        assert record.username.startswith("eve\\n2026-11-29 INFO forged line\\x1b[31mxxx")
        assert record.username.endswith("...") and len(record.username) < 100
        assert record.username.isprintable()
        assert WRONG not in record.getMessage() + record.username


def test_limits_must_be_rates(app_config):
    from blog_api.config import ConfigError

    with pytest.raises(ConfigError, match="LOGIN_LIMIT_PER_USERNAME must be a rate"):
        create_app({**app_config, "LOGIN_LIMIT_PER_USERNAME": "five"})


# --- Redis: shared by every worker and instance; down, the limits go on in memory -------------


@pytest.mark.redis
def test_two_instances_share_the_counts_through_redis(app_config, users, redis_url):
    shared = {**app_config, "REDIS_URL": redis_url, "RATE_LIMIT_KEY_PREFIX": uuid.uuid4().hex}
    users.register("alice")  # in the database both instances use
    first, second = (create_app(shared).test_client() for _ in range(2))
    assert [login(first, "alice").status_code for _ in range(3)] == [401] * 3
    assert [login(second, "alice").status_code for _ in range(3)] == [401, 401, 429]
    assert_throttled(login(first, "alice", PASSWORD))
    assert first.get("/health").get_json()["status"] == "healthy"


class FreezingProxy:
    """A TCP proxy to Redis that can stop passing bytes, as a hung Redis would."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = threading.Event()
        self.stop = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            while self.frozen.is_set() and not self.stop.is_set():
                time.sleep(0.05)  # hold the bytes: the other side waits, as for a hung Redis
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.server.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def redis_proxy(redis_url):
    proxy = FreezingProxy(redis.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"])
    yield proxy
    proxy.close()


@pytest.mark.redis
def test_frozen_redis_login_still_throttles_in_memory_and_health_is_degraded(
    app_config, users, redis_url, redis_proxy
):
    db = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs.get("db", 0)
    url = f"redis://127.0.0.1:{redis_proxy.port}/{db}"
    app = create_app({**app_config, "REDIS_URL": url, "RATE_LIMIT_KEY_PREFIX": uuid.uuid4().hex})
    client = app.test_client()
    users.register("alice")
    assert [login(client, "alice").status_code for _ in range(2)] == [401] * 2  # via Redis
    redis_proxy.frozen.set()

    started = time.monotonic()
    statuses = [login(client, "alice").status_code for _ in range(7)]
    elapsed = time.monotonic() - started
    # The counts start again in memory: five more tries, then 429, as without Redis.
    assert statuses == [401] * 5 + [429] * 2
    # One bounded wait (0.5 s) for the whole outage, not one per request.
    assert elapsed < 3, elapsed
    health = client.get("/health")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"


@pytest.mark.redis
def test_unreachable_redis_login_still_throttles(app_config, users, closed_port):
    app = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"})
    client = app.test_client()
    users.register("alice")
    assert [login(client, "alice").status_code for _ in range(6)] == [401] * 5 + [429]
    health = client.get("/health")
    assert (health.status_code, health.get_json()["status"]) == (200, "degraded")


@pytest.mark.slow
@pytest.mark.redis
def test_gunicorn_workers_share_one_count_through_redis(tmp_path, redis_url):
    """20 parallel guesses at one account over 2 workers: exactly 5 are checked, whoever
    answers (counted per worker, up to 10 would be)."""
    prefix = uuid.uuid4().hex
    with LiveServer(
        tmp_path, workers=2, REDIS_URL=redis_url, RATE_LIMIT_KEY_PREFIX=prefix
    ) as server:
        user = {"username": "alice", "email": "a@example.org", "password": PASSWORD}
        assert server.request("POST", "/api/v1/users/register", user)[0] == 201
        guess = {"username": "alice", "password": WRONG}
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: server.request("POST", LOGIN, guess)[0], range(20)))
        assert sorted(statuses) == [401] * 5 + [429] * 15
        right = {"username": "alice", "password": PASSWORD}
        assert [server.request("POST", LOGIN, right)[0] for _ in range(4)] == [429] * 4
        deadline = time.monotonic() + 3.0  # workers publish their counts every 0.5 s
        while True:
            families = server.scrape()
            counts = [
                total(families, "blog_api_logins", "blog_api_logins_total", outcome=outcome)
                for outcome in ("failure", "throttled")
            ]
            if counts == [5, 19] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert counts == [5, 19]
