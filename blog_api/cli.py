"""`flask --app blog_api create-admin USERNAME`: make an admin account (or promote one)."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import with_appcontext
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .extensions import bcrypt, db
from .models import User
from .schemas import UserIn


@click.command("create-admin")
@click.argument("username")
@click.option("--email", help="Email for a new account (asked for when missing).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input, not a prompt."
)
@with_appcontext
def create_admin(username: str, email: str | None, password_stdin: bool) -> None:
    """Create USERNAME as an admin, or make an existing USERNAME an admin."""
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
