"""usernames unique whatever their case; SQLite tables AUTOINCREMENT

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:55:00

A unique index on lower(username): `Alice` cannot register once `alice` has. A database that
already holds names differing only in case cannot take the index: the upgrade stops before it
changes anything and names them, for an operator to rename all but one of each (the app cannot
know which account is the real one).

On SQLite the tables are rebuilt with AUTOINCREMENT, so that a deleted row's id is never given
again (PostgreSQL's sequences never do); the rows and ids are kept.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("users", "posts", "todos")


class CaseDuplicates(RuntimeError):
    """Usernames that differ only in case: the unique index cannot be built over them."""


def _refuse_case_duplicates() -> None:
    clashes = op.get_bind().execute(
        sa.text(
            "SELECT lower(username) FROM users GROUP BY lower(username) "
            "HAVING count(*) > 1 ORDER BY 1 LIMIT 20"
        )
    )
    names = [row[0] for row in clashes]
    if names:
        raise CaseDuplicates(
            "revision 0002 makes usernames unique whatever their case, but these are taken "
            f"more than once in different cases: {', '.join(names)}. Rename all but one of "
            "each (UPDATE users SET username = ... WHERE id = ...), then run db upgrade again; "
            "nothing was changed."
        )


def _set_sqlite_autoincrement(enabled: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": enabled}
        ):
            pass


def upgrade():
    _refuse_case_duplicates()
    _set_sqlite_autoincrement(True)
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade():
    op.drop_index("uq_users_username_lower", table_name="users")
    _set_sqlite_autoincrement(False)
