"""Rate limits: login attempts per account, failed logins and writes per client address.

Counted by the `limits` library in moving windows: in Redis when REDIS_URL is set, so that every
worker and every instance shares the counts; in this process's memory otherwise. Redis is asked
with short timeouts and no retries; when it fails, the counting goes on in memory at once (the
counts start again there) and Redis is tried again after REDIS_RETRY_S, so a Redis outage costs
one bounded wait per REDIS_RETRY_S, never one per request. /health then says `degraded`.

Keys carry no username in clear: a name is hashed (it may be a password typed into the wrong
field), an account is its id.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import error_response

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.5  # a local Redis answers in well under a millisecond
REDIS_RETRY_S = 5.0  # after a failure, how long the limits stay in memory before Redis is asked
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_KEY = "blog_api.rate_limits"
# Login has limits of its own (per account and per address, checked before bcrypt).
_OWN_LIMITS = frozenset({"users.login", "users_v2.login"})


@dataclass(frozen=True)
class Throttled:
    """A limit is reached: wait `retry_after` seconds."""

    retry_after: int


class RateLimits:
    """One app's limits and their storage (Redis, or memory; memory while Redis fails)."""

    def __init__(
        self,
        login_per_username: str,
        login_per_address: str,
        writes_per_address: str,
        redis_url: str | None,
        key_prefix: str,
    ) -> None:
        self.login_per_username = parse(login_per_username)
        self.login_per_address = parse(login_per_address)
        self.writes_per_address = parse(writes_per_address)
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis: RateLimiter | None = None
        if redis_url:
            storage = RedisStorage(
                redis_url,
                key_prefix=key_prefix,
                wrap_exceptions=True,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default
            )
            self._redis = MovingWindowRateLimiter(storage)
        self._redis_down_until = 0.0
        self._lock = threading.Lock()

    @property
    def storage(self) -> str:
        """Where the counts are kept now: `redis` or `memory`."""
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return "memory"
        return "redis"

    def _ask(self, method: str, item: RateLimitItem, *keys: str):
        """Call `method` on Redis's limiter, or on memory's while Redis is failing."""
        if self.storage == "redis":
            try:
                return getattr(self._redis, method)(item, *keys)
            except (StorageError, redis.RedisError) as exc:
                with self._lock:
                    if time.monotonic() >= self._redis_down_until:
                        log.warning(
                            "rate limits counted in memory for %ss: Redis failed (%s)",
                            REDIS_RETRY_S,
                            exc.__class__.__name__,
                        )
                    self._redis_down_until = time.monotonic() + REDIS_RETRY_S
        return getattr(self._memory, method)(item, *keys)

    def _retry_after(self, item: RateLimitItem, key: str) -> Throttled:
        reset_at = self._ask("get_window_stats", item, key).reset_time
        return Throttled(max(1, math.ceil(reset_at - time.time())))

    def login_attempt(self, account: str) -> Throttled | None:
        """Before a password is checked: may this account be tried from this address now?

        The account's attempt is counted here, atomically (so parallel guesses, on any worker,
        get no more tries than serial ones), and forgiven by `login_succeeded`; the address's
        failures are counted by `login_failed`, so that the many users behind one address can
        still log in.
        """
        address = f"login-address/{client_address()}"
        if not self._ask("test", self.login_per_address, address):
            return self._retry_after(self.login_per_address, address)
        account_key = f"login-account/{account}"
        if not self._ask("hit", self.login_per_username, account_key):
            return self._retry_after(self.login_per_username, account_key)
        return None

    def login_failed(self) -> None:
        """Count a wrong password against the client's address."""
        self._ask("hit", self.login_per_address, f"login-address/{client_address()}")

    def login_succeeded(self, account: str) -> None:
        """The owner got in: earlier attempts no longer count against the account."""
        self._ask("clear", self.login_per_username, f"login-account/{account}")

    def write_throttled(self) -> Throttled | None:
        """Count a write from this address; throttled once its limit is used up."""
        key = f"writes/{client_address()}"
        if self._ask("hit", self.writes_per_address, key):
            return None
        return self._retry_after(self.writes_per_address, key)


def client_address() -> str:
    """The client's address: the peer's, or the one trusted proxies forwarded (TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def account_key(user_id: int | None, name: str) -> str:
    """An existing account by id (its name and email share the count), else the name, hashed."""
    if user_id is not None:
        return f"id:{user_id}"
    digest = hashlib.sha256(name.lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"name:{digest[:32]}"


def too_many_requests(throttled: Throttled, message: str):
    """The 429 a throttled request gets, in the one error shape, with Retry-After."""
    return error_response(429, message, headers={"Retry-After": str(throttled.retry_after)})


def init_app(app: Flask) -> RateLimits:
    """Build the app's limits from its settings and limit every write route by address."""
    settings = app.extensions["blog_api.settings"]
    limits = RateLimits(
        settings.login_limit_per_username,
        settings.login_limit_per_address,
        settings.write_limit_per_address,
        settings.redis_url,
        settings.rate_limit_key_prefix,
    )
    app.extensions[_KEY] = limits
    app.before_request(_limit_writes)
    return limits


def rate_limits() -> RateLimits:
    """The current app's limits."""
    return current_app.extensions[_KEY]


def _limit_writes():
    """429 with Retry-After once an address has used up its writes (login counts on its own)."""
    if request.method not in WRITE_METHODS or request.url_rule is None:
        return None
    if not request.path.startswith("/api/") or request.endpoint in _OWN_LIMITS:
        return None
    throttled = rate_limits().write_throttled()
    if throttled is None:
        return None
    log.warning(
        "writes throttled",
        extra={"client_address": client_address(), "route": request.url_rule.rule},
    )
    return too_many_requests(throttled, "Too many writes from this address; try again later.")
