"""blog-api: a Flask REST API for a small blog, observable out of the box.

`create_app()` builds everything; importing this package does nothing else.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

from apiflask import APIFlask
from flask.sessions import SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from telemetry import configure_logging, init_telemetry

from . import (
    api,
    cli,
    database,
    docs,
    errors,
    health,
    login_events,
    rate_limits,
    schema,
    slow_statements,
)
from .config import Settings
from .extensions import bcrypt
from .schemas import ErrorOut

try:
    __version__ = version("blog-api")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

MAX_BODY_BYTES = 1024 * 1024


class NoCookieSession(SessionInterface):
    """A JSON API authenticated by bearer tokens keeps no cookie session: none is opened or saved
    (Flask's default would build a signing serializer and look for the cookie on every request).
    """

    def open_session(self, app, request) -> None:
        return None  # Flask hands views its read-only NullSession instead

    def save_session(self, app, session, response) -> None:
        return None


def create_app(config: Mapping[str, str] | None = None) -> APIFlask:
    """Build the app from the environment, overridden by `config` (tests pass a mapping)."""
    with cli.config_errors_as_cli_errors():
        return _build_app(config)


def _build_app(config: Mapping[str, str] | None) -> APIFlask:
    app = APIFlask(
        __name__,
        title="blog-api",
        version=__version__,
        spec_path="/api/openapi.json",
        docs_path="/api/docs",
        instance_relative_config=True,
    )
    env = {**os.environ, **(config or {})}
    settings = Settings.from_mapping(env, app.instance_path, serving=not cli.running_a_command())
    configure_logging(settings.log_level, settings.log_format)
    if settings.uses_instance_folder:
        os.makedirs(app.instance_path, exist_ok=True)

    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        JWT_EXPIRES_SECONDS=settings.jwt_expires_seconds,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=database.engine_options(
            settings.database_url, settings.database_timeout, settings.threads
        ),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        APP_VERSION=__version__,
        STARTED_AT=time.monotonic(),
        BCRYPT_LOG_ROUNDS=settings.bcrypt_rounds,
        BCRYPT_HANDLE_LONG_PASSWORDS=True,  # bcrypt ignores bytes past 72; passwords go to 128
    )
    app.config["HTTP_ERROR_SCHEMA"] = app.config["VALIDATION_ERROR_SCHEMA"] = ErrorOut
    app.json.sort_keys = False  # keep the schemas' field order
    app.session_interface = NoCookieSession()
    app.extensions["blog_api.settings"] = settings

    bcrypt.init_app(app)
    # Hashed at the configured cost for logins of unknown users (see the login route).
    app.extensions["blog_api.dummy_hash"] = bcrypt.generate_password_hash(
        secrets.token_urlsafe(16)
    ).decode()
    errors.init_app(app)
    rate_limits.init_app(app)  # before the API's own checks: a throttled write reads no body
    api.init_app(app)
    app.extensions["blog_api.schema_heads"] = schema.init_app(app)  # `flask db`; the head
    health.init_app(app)
    docs.init_app(app)
    cli.init_app(app)
    engine = database.init_app(app)
    if settings.trusted_proxies:
        # The client is the address the outermost trusted proxy saw (the Nth from the right in
        # X-Forwarded-For), never one a client wrote itself: the rate limits and logs use it.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)
    # Telemetry last: it wraps the finished app and the engine (no start-up spans).
    handle = init_telemetry(
        app,
        engine,
        env=env,
        service_name="blog-api",
        service_version=__version__,
        skip_paths=("/health",),
    )
    login_events.init_app(app, handle.meter)
    slow_statements.init_app(app, handle.meter)
    return app
