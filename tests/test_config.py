"""Configuration from the environment: defaults, rewrites, refusals."""

import pytest

from blog_api import create_app
from blog_api.config import ConfigError, Settings

KEY = "k" * 32


def test_postgres_scheme_is_rewritten():
    settings = Settings.from_mapping(
        {"DATABASE_URL": "postgres://u:p@db:5432/blog", "SECRET_KEY": KEY}, "/tmp"
    )
    assert settings.database_url == "postgresql://u:p@db:5432/blog"


def test_default_database_is_sqlite_in_the_instance_folder():
    settings = Settings.from_mapping({"SECRET_KEY": KEY}, "/srv/instance")
    assert settings.database_url == "sqlite:////srv/instance/blog.db"


def test_secret_key_is_required_outside_development():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_mapping({}, "/tmp")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"APP_ENV": "production", "SECRET_KEY": ""})


def test_development_makes_a_random_key_per_process():
    a = Settings.from_mapping({"APP_ENV": "development"}, "/tmp")
    b = Settings.from_mapping({"APP_ENV": "development"}, "/tmp")
    assert len(a.secret_key) >= 32 and a.secret_key != b.secret_key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JWT_EXPIRES_SECONDS", "soon"),
        ("JWT_EXPIRES_SECONDS", "0"),
        ("APP_ENV", "staging"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_TIMEOUT", "soon"),
        ("DATABASE_TIMEOUT", "0"),
        ("DATABASE_TIMEOUT", "-1"),
        ("DATABASE_TIMEOUT", "nan"),
        ("DATABASE_TIMEOUT", "inf"),
        ("GUNICORN_THREADS", "0"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_mapping({"SECRET_KEY": KEY, name: value}, "/tmp")


def test_a_short_secret_key_is_refused_outside_development():
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Settings.from_mapping({"SECRET_KEY": "k" * 31}, "/tmp")
    assert Settings.from_mapping({"SECRET_KEY": "short", "APP_ENV": "development"}, "/tmp")


def test_the_database_timeout_is_seconds_and_2_5_by_default():
    assert Settings.from_mapping({"SECRET_KEY": KEY}, "/tmp").database_timeout == 2.5
    settings = Settings.from_mapping({"SECRET_KEY": KEY, "DATABASE_TIMEOUT": "0.75"}, "/tmp")
    assert settings.database_timeout == 0.75
