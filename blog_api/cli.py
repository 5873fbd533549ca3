"""`flask --app blog_api create-admin USERNAME`: make an admin account (or promote one).

Under the `flask` command, an error is one line (`Error: ...`, exit status 1), not a traceback:
a bad setting while the app is built, and the database failing create-admin.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import with_appcontext
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .config import ConfigError
from .errors import driver_message
from .extensions import bcrypt, db
from .models import User
from .schemas import UserIn


def running_a_command() -> bool:
    """Whether a `flask` command other than `run` is building the app (create-admin, db ...)."""
    context = click.get_current_context(silent=True)
    return context is not None and context.command.name != "run"


@contextmanager
def config_errors_as_cli_errors() -> Iterator[None]:
    """Under the `flask` command, turn a ConfigError into click's one-line error."""
    try:
        yield
    except ConfigError as exc:
        if click.get_current_context(silent=True) is None:
            raise
        raise click.ClickException(str(exc)) from None


def _database_error(exc: SQLAlchemyError) -> click.ClickException:
    """The driver's first line (no SQL, no parameters, no credentials) as a one-line error."""
    return click.ClickException(f"the database cannot be used: {driver_message(exc)}")


@click.command("create-admin")
@click.argument("username")
@click.option("--email", help="Email for a new account (asked for when missing).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input, not a prompt."
)
@with_appcontext
def create_admin(username: str, email: str | None, password_stdin: bool) -> None:
    """Create USERNAME as an admin, or make an existing USERNAME an admin."""
    try:
        _create_admin(username, email, password_stdin)
    except SQLAlchemyError as exc:
        db.session.rollback()
        raise _database_error(exc) from None


def _create_admin(username: str, email: str | None, password_stdin: bool) -> None:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is not None:
        user.is_admin = True
        db.session.commit()
        click.echo(f"{username} is now an admin.")
        return

    if email is None:
        email = click.prompt("Email")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserIn().load({"username": username, "email": email, "password": password})
    except ValidationError as exc:
        for field, messages in exc.messages.items():
            click.echo(f"{field}: {' '.join(messages)}", err=True)
        raise SystemExit(1) from None

    db.session.add(
        User(
            username=data["username"],
            email=data["email"],
            password_hash=bcrypt.generate_password_hash(data["password"]).decode(),
            is_admin=True,
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        click.echo("That email is already taken.", err=True)
        raise SystemExit(1) from None
    click.echo(f"Created admin {username}.")


def init_app(app: Flask) -> None:
    app.cli.add_command(create_admin)
