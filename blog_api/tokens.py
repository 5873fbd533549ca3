"""JWT access tokens: HS256 only, with an expiry, signed by SECRET_KEY."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why, for the client."""


def issue_token(user_id: int) -> tuple[str, int]:
    """Return a signed access token for `user_id` and its lifetime in seconds."""
    lifetime = current_app.config["JWT_EXPIRES_SECONDS"]
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + timedelta(seconds=lifetime)}
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM), lifetime


def read_token(token: str) -> int:
    """Return the user id a token was issued for; raise InvalidToken for anything else.

    The algorithm list is pinned, so `alg: none` and asymmetric-key confusion are refused.
    """
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
        )
        return int(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The access token has expired; log in again.") from None
    except (jwt.InvalidTokenError, ValueError):
        raise InvalidToken("The access token is malformed or its signature is invalid.") from None
