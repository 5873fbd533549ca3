"""Users: register, log in, me, the admin's list."""

from datetime import UTC, datetime

import pytest

from .conftest import PASSWORD, assert_error

REGISTER = "/api/v1/users/register"
LOGIN = "/api/v1/users/login"


def test_register_returns_the_user_without_any_password(client):
    response = client.post(
        REGISTER, json={"username": "alice", "email": "Alice@Example.org", "password": PASSWORD}
    )
    assert response.status_code == 201
    user = response.get_json()
    assert set(user) == {"id", "username", "email", "is_admin", "created_at"}
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.org"
    assert user["is_admin"] is False
    assert user["created_at"].endswith("Z")
    assert PASSWORD not in response.get_data(as_text=True)
    assert "$2b$" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ({"username": "alice", "email": "other@example.org"}, "same username"),
        ({"username": "bob", "email": "alice@example.org"}, "same email"),
        ({"username": "bob", "email": "ALICE@example.org"}, "same email, other case"),
        ({"username": "Alice", "email": "other@example.org"}, "same username, other case"),
        ({"username": "ALICE", "email": "other@example.org"}, "same username, upper case"),
    ],
)
def test_taken_username_or_email_is_409_and_nothing_is_written(client, users, second, why):
    users.register("alice")
    response = client.post(REGISTER, json={**second, "password": PASSWORD})
    assert "taken" in assert_error(response, 409)["message"], why
    # the failed insert was rolled back: the session still works and the first user is intact
    users.register("carol")
    assert client.post(LOGIN, json={"username": "alice", "password": PASSWORD}).status_code == 200


def test_mallory_after_mallory_is_409_and_login_by_name_ignores_case(client, users):
    """The database refuses the look-alike (not a check first); any case of the name logs in."""
    users.register("mallory")
    response = client.post(
        REGISTER,
        json={"username": "Mallory", "email": "other@example.org", "password": PASSWORD},
    )
    assert_error(response, 409)
    for name in ("MALLORY", "Mallory", "mallory", "MALLORY@example.org"):
        assert users.login(name), name


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.org", "password": PASSWORD}, "username"),
        ({"username": "ab", "email": "a@example.org", "password": PASSWORD}, "username"),
        ({"username": "a" * 33, "email": "a@example.org", "password": PASSWORD}, "username"),
        ({"username": "bad name", "email": "a@example.org", "password": PASSWORD}, "username"),
        ({"username": "bad-name", "email": "a@example.org", "password": PASSWORD}, "username"),
        ({"username": "alice\n", "email": "a@example.org", "password": PASSWORD}, "username"),
        ({"username": 123, "email": "a@example.org", "password": PASSWORD}, "username"),
        ({"username": "alice", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "a@example.c", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "a..b@example.org", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "x" * 65 + "@example.org", "password": PASSWORD}, "email"),
        ({"username": "alice", "email": "a@example.org"}, "password"),
        ({"username": "alice", "email": "a@example.org", "password": "short"}, "password"),
        ({"username": "alice", "email": "a@example.org", "password": "x" * 129}, "password"),
        (
            {"username": "alice", "email": "a@example.org", "password": PASSWORD, "admin": 1},
            "admin",
        ),
    ],
)
def test_invalid_registration_is_422_with_details(client, body, field):
    body = assert_error(client.post(REGISTER, json=body), 422)
    assert field in body["details"]
    assert all(isinstance(m, str) for m in body["details"][field])


def test_passwords_of_8_and_128_characters_both_work(client, users):
    for name, password in (("shortest", "x" * 8), ("longest", "é" * 128)):
        users.register(name, password=password)
        assert users.login(name, password=password)
    # bcrypt alone ignores bytes past 72: a password differing only at the end must still fail
    response = client.post(LOGIN, json={"username": "longest", "password": "é" * 127 + "e"})
    assert_error(response, 401)


def test_login_by_username_or_email(client, users):
    users.register("alice")
    for name in ("alice", "alice@example.org", "ALICE@example.org"):
        response = client.post(LOGIN, json={"username": name, "password": PASSWORD})
        assert response.status_code == 200
        body = response.get_json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert body["access_token"].count(".") == 2


def test_unknown_user_and_wrong_password_get_the_same_401(client, users):
    users.register("alice")
    wrong = assert_error(
        client.post(LOGIN, json={"username": "alice", "password": "nope-nope"}), 401
    )
    unknown = assert_error(client.post(LOGIN, json={"username": "zed", "password": PASSWORD}), 401)
    assert wrong == unknown


@pytest.mark.parametrize(
    "body", [{}, {"username": "alice"}, {"password": PASSWORD}, {"username": "", "password": "x"}]
)
def test_incomplete_login_is_422(client, body):
    assert_error(client.post(LOGIN, json=body), 422)


def test_me_is_the_tokens_user(client, users):
    headers = users.headers("alice")
    response = client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["username"] == "alice"
    assert "password" not in response.get_data(as_text=True)


def test_user_list_is_for_admins_only(client, users):
    alice = users.headers("alice")
    root = users.headers("root", admin=True)
    assert_error(client.get("/api/v1/users"), 401)
    assert "admin" in assert_error(client.get("/api/v1/users", headers=alice), 403)["message"]
    response = client.get("/api/v1/users", headers=root)
    assert response.status_code == 200
    listed = response.get_json()
    assert [u["username"] for u in listed] == ["alice", "root"]
    assert [u["is_admin"] for u in listed] == [False, True]
    assert "hash" not in response.get_data(as_text=True)


def test_v2_has_the_user_routes_too(client, users):
    users.register("alice")
    response = client.post("/api/v2/users/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    token = response.get_json()["access_token"]
    me = client.get("/api/v2/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.get_json()["username"] == "alice"


def test_times_are_iso_8601_utc_of_now(client, users):
    """DESIGN: times are ISO 8601 UTC; a local time with a `Z` glued on would be hours off."""
    headers = users.headers("alice")
    user = client.get("/api/v1/users/me", headers=headers).get_json()
    post = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=headers)
    todo = client.post("/api/v1/todos", json={"title": "t"}, headers=headers)
    stamps = [user["created_at"]]
    for item in (post.get_json(), todo.get_json()):
        stamps += [item["created_at"], item["updated_at"]]
    now = datetime.now(UTC)
    for stamp in stamps:
        assert stamp.endswith("Z"), stamp
        parsed = datetime.fromisoformat(stamp[:-1] + "+00:00")
        assert abs((now - parsed).total_seconds()) < 120, (stamp, now)
