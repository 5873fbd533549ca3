"""The hot routes' reads and the post insert, as Core statements built once at import.

A read selects just the columns its response needs (the post's author joined in the same
statement) and answers from the rows (blog_api.rows); SQLAlchemy caches each statement's
compiled form, so a request pays for a lookup, the driver and the rows, not for loading and
tracking ORM objects it would only serialise. Every statement runs on the request's connection,
the session's (`db.session.connection()`): one checkout a request, one transaction with any ORM
write, and the session's teardown ends it (blog_api.database).
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, Select, bindparam, func, insert, or_, select

from .extensions import db
from .models import Post, Todo, User
from .rows import Envelope, RowShape
from .schemas import PostOut, PostPageOut, TodoOut, TodoPageOut, UserOut

posts, users, todos = Post.__table__, User.__table__, Todo.__table__

POST = RowShape(PostOut, posts, author=users)
TODO = RowShape(TodoOut, todos)
USER = RowShape(UserOut, users)
POST_PAGE = Envelope(PostPageOut)
TODO_PAGE = Envelope(TodoPageOut)

_POSTS = select(*POST.columns).select_from(posts.join(users, users.c.id == posts.c.author_id))
ONE_POST = _POSTS.where(posts.c.id == bindparam("post_id"))
NEWEST_POSTS = _POSTS.order_by(posts.c.id.desc())
OWN_TODOS = select(*TODO.columns).where(todos.c.owner_id == bindparam("owner_id"))
ONE_USER = select(*USER.columns).where(users.c.id == bindparam("user_id"))
NEW_POST = insert(posts).returning(posts.c.id, posts.c.created_at, posts.c.updated_at)


def connection() -> Connection:
    """The request's connection, in the session's transaction."""
    return db.session.connection()


def one(statement, **params) -> Row | None:
    return connection().execute(statement, params).first()


def all_rows(statement, **params) -> list[Row]:
    return connection().execute(statement, params).all()


def post_page(author: str | None, text: str | None, page: int, per_page: int) -> dict:
    """A page of posts, newest first, by `author` and containing `text` when given."""
    stmt = NEWEST_POSTS
    if author is not None:
        stmt = stmt.where(users.c.username == author)
    if text is not None:
        pattern = "%" + _escape_like(text) + "%"
        stmt = stmt.where(
            or_(posts.c.title.ilike(pattern, escape="\\"), posts.c.body.ilike(pattern, escape="\\"))
        )
    return _page(stmt, {}, POST, POST_PAGE, page, per_page)


def todo_page(owner_id: int, completed: bool | None, page: int, per_page: int) -> dict:
    """A page of a user's todos, oldest first, only those `completed` (or not) when given."""
    stmt = OWN_TODOS.order_by(todos.c.id)
    if completed is not None:
        stmt = stmt.where(todos.c.completed == completed)
    return _page(stmt, {"owner_id": owner_id}, TODO, TODO_PAGE, page, per_page)


def _page(
    stmt: Select, params: dict, shape: RowShape, envelope: Envelope, page: int, per_page: int
) -> dict:
    """The items of one page and the total; a page past the end is empty, not an error."""
    conn = connection()
    offset = (page - 1) * per_page
    items = conn.execute(stmt.limit(per_page).offset(offset), params).all()
    if 0 < len(items) < per_page or (page == 1 and not items):
        total = offset + len(items)  # this is the last page: no count needed
    else:
        counted = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = conn.execute(counted, params).scalar_one()
    pages = -(-total // per_page)
    values = {"items": shape.dump_all(items), "page": page, "per_page": per_page}
    return envelope.dump({**values, "total": total, "pages": pages})


def _escape_like(text: str) -> str:
    """Make `%` and `_` in the user's text match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
