"""Settings read once, in the factory, from the environment (12-factor) or a test mapping."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from limits import parse
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEVELOPMENT = "development"
PRODUCTION = "production"
MIN_SECRET_KEY_BYTES = 32  # HS256 wants a key at least as long as its hash (RFC 7518 3.2)


class ConfigError(ValueError):
    """Raised when the configuration cannot work; the message says which variable to fix."""


# gunicorn's threads a worker (gunicorn.conf.py reads the same default): chosen by
# bench/threads.py, see the README's worker-model table.
DEFAULT_THREADS = 4


def _int(source: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = source.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _rate(source: Mapping[str, str], name: str, default: str) -> str:
    """A limit in the `limits` notation: `5 per 15 minutes`, `60/minute`."""
    raw = source.get(name) or default
    try:
        parse(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate such as '5 per 15 minutes' or '60/minute', not {raw!r}"
        ) from None
    return raw


def _seconds(source: Mapping[str, str], name: str, default: float) -> float:
    raw = source.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 3600:  # NaN fails this too
        raise ConfigError(f"{name} must be more than 0 and at most 3600 seconds, not {raw!r}")
    return value


def normalize_database_url(url: str) -> str:
    """Accept Heroku's `postgres://` scheme, which SQLAlchemy 2 no longer does."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


def _check_database_url(url: str) -> None:
    """Refuse a DATABASE_URL SQLAlchemy cannot use; the value stays out (it may hold a password)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            "DATABASE_URL is not a database URL (postgresql://user:password@host:5432/name, "
            "or sqlite:////absolute/path.db)"
        ) from None
    try:
        parsed.get_dialect()
    except ArgumentError:  # NoSuchModuleError: an unknown scheme
        raise ConfigError(
            f"DATABASE_URL: no database driver for {parsed.drivername!r} (use postgresql or sqlite)"
        ) from None


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, validated in one place."""

    env: str
    database_url: str
    database_timeout: float
    threads: int
    secret_key: str
    jwt_expires_seconds: int
    redis_url: str | None
    log_level: str
    log_format: str
    bcrypt_rounds: int
    uses_instance_folder: bool
    login_limit_per_username: str
    login_limit_per_address: str
    write_limit_per_address: str
    rate_limit_key_prefix: str
    trusted_proxies: int

    @classmethod
    def from_mapping(
        cls, source: Mapping[str, str], instance_path: str, serving: bool = True
    ) -> Settings:
        """Build settings from `source` (os.environ, or a test's mapping).

        `serving=False` (a CLI command such as create-admin or db upgrade) needs no SECRET_KEY:
        it signs nothing, so a missing or short key is replaced by a random one.
        """
        env = source.get("APP_ENV", PRODUCTION).lower()
        if env not in (DEVELOPMENT, PRODUCTION):
            raise ConfigError(f"APP_ENV must be {DEVELOPMENT!r} or {PRODUCTION!r}, not {env!r}")

        secret_key = source.get("SECRET_KEY") or ""
        if not serving and len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            secret_key = ""
        if not secret_key:
            if env != DEVELOPMENT and serving:
                raise ConfigError(
                    "SECRET_KEY is required outside development "
                    "(set SECRET_KEY, or APP_ENV=development for a random per-process key)"
                )
            secret_key = secrets.token_urlsafe(48)
        elif env != DEVELOPMENT and len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            raise ConfigError(
                f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes outside development "
                '(python3 -c "import secrets; print(secrets.token_urlsafe(48))")'
            )

        database_url = source.get("DATABASE_URL") or ""
        uses_instance_folder = not database_url
        if uses_instance_folder:
            database_url = "sqlite:///" + str(Path(instance_path) / "blog.db")
        _check_database_url(normalize_database_url(database_url))

        log_format = source.get("LOG_FORMAT", "json").lower()
        if log_format not in ("json", "text"):
            raise ConfigError(f"LOG_FORMAT must be 'json' or 'text', not {log_format!r}")

        return cls(
            env=env,
            database_url=normalize_database_url(database_url),
            database_timeout=_seconds(source, "DATABASE_TIMEOUT", 2.5),
            # gunicorn's threads a worker (gunicorn.conf.py): the database pool holds as many.
            threads=_int(source, "GUNICORN_THREADS", DEFAULT_THREADS),
            secret_key=secret_key,
            jwt_expires_seconds=_int(source, "JWT_EXPIRES_SECONDS", 3600),
            redis_url=source.get("REDIS_URL") or None,
            log_level=source.get("LOG_LEVEL", "INFO").upper(),
            log_format=log_format,
            bcrypt_rounds=_int(source, "BCRYPT_ROUNDS", 12, minimum=4),
            uses_instance_folder=uses_instance_folder,
            login_limit_per_username=_rate(source, "LOGIN_LIMIT_PER_USERNAME", "5 per 15 minutes"),
            login_limit_per_address=_rate(source, "LOGIN_LIMIT_PER_ADDRESS", "20 per 15 minutes"),
            write_limit_per_address=_rate(source, "WRITE_LIMIT_PER_ADDRESS", "120 per minute"),
            rate_limit_key_prefix=source.get("RATE_LIMIT_KEY_PREFIX") or "blog-api",
            trusted_proxies=_int(source, "TRUSTED_PROXIES", 0, minimum=0),
        )
