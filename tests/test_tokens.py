"""Forged, expired and malformed tokens are all 401; the algorithm is pinned to HS256."""

import base64
import json
import time

import jwt
import pytest

from .conftest import SECRET, assert_error

ME = "/api/v1/users/me"
OTHER_KEY = "another-secret-key-long-enough-for-any-hmac-algorithm-0123456789abcdefgh"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: int = 1, **overrides) -> dict:
    now = int(time.time())
    return {"sub": str(user_id), "iat": now, "exp": now + 600, **overrides}


def forged_tokens(valid: str) -> dict[str, str]:
    header, payload, signature = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "2"  # try to become someone else
    return {
        "alg none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".",
        "another key": jwt.encode(_claims(), OTHER_KEY, algorithm="HS256"),
        "HS512 with the right key": jwt.encode(_claims(), SECRET, algorithm="HS512"),
        "expired": jwt.encode(
            _claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            SECRET,
            algorithm="HS256",
        ),
        "tampered payload": f"{header}.{_b64(claims)}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "no exp": jwt.encode({"sub": "1", "iat": int(time.time())}, SECRET, algorithm="HS256"),
        "non-numeric sub": jwt.encode(_claims(user_id="x"), SECRET, algorithm="HS256"),
        "garbage": "not-a-token",
        "two parts": f"{header}.{payload}",
    }


def test_valid_token_works(client, auth_headers):
    assert client.get(ME, headers=auth_headers).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "alg none",
        "another key",
        "HS512 with the right key",
        "expired",
        "tampered payload",
        "tampered signature",
        "no exp",
        "non-numeric sub",
        "garbage",
        "two parts",
    ],
)
def test_forged_or_broken_token_is_401(client, users, name):
    users.register("mallory")
    valid = users.login("mallory")["Authorization"].split()[1]
    users.register("victim")
    token = forged_tokens(valid)[name]
    body = assert_error(client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)
    assert "token" in body["message"].lower()


def test_expired_token_says_so(client, users):
    users.register("alice")
    token = jwt.encode(_claims(exp=int(time.time()) - 1), SECRET, algorithm="HS256")
    body = assert_error(client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)
    assert "expired" in body["message"]


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic YWxpY2U6cGFzc3dvcmQ=", "Token abc"],
)
def test_missing_or_malformed_authorization_header_is_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.get(ME, headers=headers)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_of_a_deleted_user_is_401(app, client, users):
    headers = users.headers("alice")
    from blog_api.extensions import db
    from blog_api.models import User

    with app.app_context():
        db.session.delete(db.session.scalar(db.select(User).filter_by(username="alice")))
        db.session.commit()
    assert_error(client.get(ME, headers=headers), 401)


def test_token_lifetime_follows_config(app_config):
    from blog_api import create_app

    app = create_app({**app_config, "JWT_EXPIRES_SECONDS": "60"})
    client = app.test_client()
    client.post(
        "/api/v1/users/register",
        json={"username": "alice", "email": "a@example.org", "password": "password1"},
    )
    body = client.post(
        "/api/v1/users/login", json={"username": "alice", "password": "password1"}
    ).get_json()
    assert body["expires_in"] == 60
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 60
