"""Bearer-token authentication for the API routes, and the checks that go with it."""

from __future__ import annotations

from apiflask import HTTPError, HTTPTokenAuth, abort
from flask import current_app
from sqlalchemy import Row

from . import queries
from .tokens import InvalidToken, read_token

auth = HTTPTokenAuth(scheme="Bearer", description="A JWT from POST /api/v1/users/login.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="blog-api"'}


@auth.verify_token
def _verify_token(token: str) -> Row | None:
    if not token:
        raise HTTPError(
            401, "An access token is required: Authorization: Bearer <token>.", headers=_CHALLENGE
        )
    try:
        user_id = read_token(token)
    except InvalidToken as exc:
        raise HTTPError(401, str(exc), headers=_CHALLENGE) from None
    user = queries.one(queries.ONE_USER, user_id=user_id)
    if user is None:
        raise HTTPError(401, "The access token's user no longer exists.", headers=_CHALLENGE)
    return user


@auth.get_user_roles
def _user_roles(user: Row) -> list[str]:
    return ["admin"] if user.is_admin else ["user"]


@auth.error_processor
def _auth_error(error: HTTPError):
    if error.status_code == 403:
        error = HTTPError(403, "This needs an admin account.")
    else:
        error = HTTPError(
            error.status_code,
            "An access token is required: Authorization: Bearer <token>.",
            headers=_CHALLENGE,
        )
    return current_app.error_callback(error)


def current_user() -> Row:
    """The user the request's token belongs to (inside an auth_required route): a row of
    `queries.USER`, whose columns are UserOut's (`id`, `username`, `is_admin`, ...; no hash)."""
    return auth.current_user


def require_owner_or_admin(owner_id: int, what: str) -> None:
    """abort(403) unless the current user owns the object or is an admin."""
    user = current_user()
    if user.id != owner_id and not user.is_admin:
        abort(403, f"Only the {what}'s author or an admin may change it.")
