"""posts of one author and todos of one owner, in id order, straight from an index

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 22:40:00

`(author_id, id)` and `(owner_id, id)` replace the single-column indexes on author_id and
owner_id (whose every use they serve too): a page of one author's posts, or of one user's todos,
newest or oldest first, reads that page's index entries whatever the size of the table, where the
planner used to walk the primary key and filter each row.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

REPLACED = (
    ("posts", "author_id", "ix_posts_author_id", "ix_posts_author_id_id"),
    ("todos", "owner_id", "ix_todos_owner_id", "ix_todos_owner_id_id"),
)


def upgrade():
    for table, column, old, new in REPLACED:
        op.create_index(new, table, [column, "id"], unique=False)
        op.drop_index(old, table_name=table)


def downgrade():
    for table, column, old, new in REPLACED:
        op.create_index(old, table, [column], unique=False)
        op.drop_index(new, table_name=table)
