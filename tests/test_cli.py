"""`flask --app blog_api create-admin`: make or promote an admin; CLI errors are one line."""

import subprocess
import sys

import pytest

from blog_api import create_app
from blog_api.extensions import db

from .conftest import PASSWORD, SECRET, assert_error
from .live_server import ROOT


def test_create_admin_reads_the_password_from_stdin(app, client, users):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "root", "--email", "root@example.org", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    headers = users.login("root")
    assert client.get("/api/v1/users/me", headers=headers).get_json()["is_admin"] is True
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    assert PASSWORD not in result.output


def test_create_admin_promotes_an_existing_user(app, client, users):
    alice = users.headers("alice")
    assert_error(client.get("/api/v1/users", headers=alice), 403)
    result = app.test_cli_runner().invoke(args=["create-admin", "alice"])
    assert result.exit_code == 0 and "now an admin" in result.output
    assert client.get("/api/v1/users", headers=alice).status_code == 200


def test_create_admin_refuses_a_weak_password(app, client):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "root", "--email", "root@example.org", "--password-stdin"],
        input="short\n",
    )
    assert result.exit_code == 1
    assert "password" in result.output
    assert (
        client.post(
            "/api/v1/users/login", json={"username": "root", "password": "short"}
        ).status_code
        == 401
    )


def flask_command(args: list[str], env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    """`flask --app blog_api ARGS` in a fresh process, with only `env` (and PATH) set."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "blog_api", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_create_admin_needs_no_secret_key(database_url):
    result = flask_command(
        ["create-admin", "root", "--email", "root@example.org", "--password-stdin"],
        {"APP_ENV": "production", "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    app = create_app({"APP_ENV": "production", "DATABASE_URL": database_url, "SECRET_KEY": SECRET})
    try:
        client = app.test_client()
        login = client.post("/api/v1/users/login", json={"username": "root", "password": PASSWORD})
        token = login.get_json()["access_token"]
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.get_json()["is_admin"] is True
    finally:
        with app.app_context():
            db.engine.dispose()
        app.extensions["blog_api.health_checks"].engine.dispose()


def test_serving_still_needs_the_secret_key(tmp_path):
    """`flask run` serves, so it refuses to start without the key (in one line)."""
    result = flask_command(
        ["run", "--port", "1"],
        {"APP_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: SECRET_KEY is required outside development "
        "(set SECRET_KEY, or APP_ENV=development for a random per-process key)"
    ]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"BCRYPT_ROUNDS": "lots"}, "Error: BCRYPT_ROUNDS must be a whole number, not 'lots'"),
        ({"APP_ENV": "staging"}, "Error: APP_ENV must be 'development' or 'production'"),
        ({"DATABASE_URL": "postgresql://u:pw-secret@db:port/x"}, "Error: DATABASE_URL is not"),
        ({"DATABASE_URL": "mongodb://u:pw-secret@db/x"}, "Error: DATABASE_URL: no database"),
    ],
)
def test_a_bad_setting_is_a_one_line_cli_error(tmp_path, env, message):
    base = {"APP_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = flask_command(["create-admin", "root"], {**base, **env})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message)
    assert "pw-secret" not in result.stderr


def test_an_unreachable_database_is_a_one_line_cli_error(closed_port):
    result = flask_command(
        ["create-admin", "root", "--email", "root@example.org", "--password-stdin"],
        {
            "APP_ENV": "production",
            "DATABASE_URL": f"postgresql://postgres:pw-secret@127.0.0.1:{closed_port}/blog",
            "LOG_LEVEL": "WARNING",
        },
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: the database cannot be used: ")
    assert "refused" in line and "pw-secret" not in line
