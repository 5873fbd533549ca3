"""Alembic's environment for `flask --app blog_api db ...` (Flask-Migrate's template, adapted).

Differences from the template, and why:
- No `fileConfig()`: the app has configured logging already (one line a record, JSON or text);
  Alembic's "Running upgrade ..." lines go through it.
- Column types of the app's own (a TypeDecorator such as UTCDateTime) are written into new
  revisions as the SQLAlchemy type they store, so a revision never imports blog_api.models.
- A connection of its own, not the app's pool: a migration may hold a lock or rebuild a table for
  longer than the app lets a request wait on the database, so it gets the app's URL and connect
  timeout but none of the per-request limits, and no tracing.
"""

import logging

from alembic import context
from flask import current_app
from sqlalchemy import TypeDecorator, create_engine
from sqlalchemy.pool import NullPool

from blog_api.database import CONNECT_TIMEOUT_S

config = context.config
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def get_url():
    return target_db.engine.url


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def render_item(type_, obj, autogen_context):
    """Render an app-defined column type as the type it stores (`sa.DateTime()`)."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False  # Alembic's default rendering


def run_migrations_offline():
    """Write the SQL to standard output (`flask db upgrade --sql`) instead of running it."""
    context.configure(url=get_url(), target_metadata=get_metadata(), literal_binds=True)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on one connection of their own."""

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives
    conf_args.setdefault("render_item", render_item)

    url = get_url()
    connect_args = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    elif url.get_backend_name() == "sqlite":
        connect_args["timeout"] = CONNECT_TIMEOUT_S
    connectable = create_engine(url, poolclass=NullPool, connect_args=connect_args)

    try:
        with connectable.connect() as connection:
            context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)

            with context.begin_transaction():
                context.run_migrations()
    finally:
        connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
