"""`flask --app blog_api create-admin`: make or promote an admin."""

from .conftest import PASSWORD, assert_error


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
