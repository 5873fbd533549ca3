"""Users: register, log in, who am I, and the admin's list."""

from __future__ import annotations

import logging

from apiflask import APIBlueprint, abort
from flask import current_app, jsonify
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ... import queries
from ...auth import auth, current_user
from ...extensions import bcrypt, db
from ...login_events import log_security_event, record_login
from ...models import User
from ...rate_limits import account_key, client_address, rate_limits, too_many_requests
from ...schemas import LoginIn, TokenOut, UserIn, UserOut
from ...tokens import issue_token

bp = APIBlueprint("users", __name__, tag="Users")
log = logging.getLogger(__name__)


@bp.post("/register")
@bp.input(UserIn, arg_name="data")
@bp.output(UserOut, status_code=201)
@bp.doc(responses={409: "Username or email already taken"})
def register(data: dict) -> User:
    """Create an account; the database decides whether the name (in any case) or email is taken."""
    user = User(
        username=data["username"],
        email=data["email"],
        password_hash=bcrypt.generate_password_hash(data["password"]).decode(),
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        abort(409, "That username or email is already taken.")
    return user


@bp.post("/login")
@bp.input(LoginIn, arg_name="data")
@bp.output(TokenOut)
@bp.doc(
    responses={
        401: "Unknown user or wrong password (the same message for both)",
        429: "Too many failed logins for this username or from this address (with Retry-After)",
    }
)
def login(data: dict):
    """Exchange a username (any case) or email, and a password, for an access token.

    Failed logins are limited per account and per address; a throttled login is refused before
    bcrypt runs, whatever its password, so guessing costs the server nothing more.
    """
    name = data["username"]
    user = db.session.scalar(
        select(User).where(
            or_(func.lower(User.username) == name.lower(), User.email == name.lower())
        )
    )
    limits, account = rate_limits(), account_key(user.id if user else None, name)
    throttled = limits.login_attempt(account)
    if throttled is not None:
        record_login("throttled")
        log_security_event(logging.WARNING, "login throttled", name, client_address())
        return too_many_requests(throttled, "Too many failed logins; try again later.")
    if user is None:
        # Check a real hash anyway, so an unknown name costs as long as a wrong password.
        bcrypt.check_password_hash(current_app.extensions["blog_api.dummy_hash"], data["password"])
        ok = False
    else:
        ok = bcrypt.check_password_hash(user.password_hash, data["password"])
    record_login("success" if ok else "failure")
    if not ok:
        limits.login_failed()
        log_security_event(logging.INFO, "login failed", name, client_address())
        abort(401, "Wrong username or password.")
    limits.login_succeeded(account)
    log.info("login succeeded for user %d", user.id)
    token, lifetime = issue_token(user.id)
    return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}


@bp.get("/me")
@bp.auth_required(auth)
@bp.output(UserOut)
def me():
    """The account the token belongs to."""
    return jsonify(queries.USER.dump(current_user()))


@bp.get("")
@bp.auth_required(auth, roles=["admin"])
@bp.output(UserOut(many=True))
@bp.doc(responses={403: "The token's user is not an admin"})
def list_users() -> list[User]:
    """Every account, oldest first (admins only)."""
    return db.session.scalars(select(User).order_by(User.id)).all()
