"""The hot routes' reads and the post insert, as Core statements built once at import.

A read selects just the columns its response needs (the post's author joined in the same
statement) and answers from the rows (blog_api.rows); SQLAlchemy caches each statement's
compiled form, so a request pays for a lookup, the driver and the rows, not for loading and
tracking ORM objects it would only serialise. Every statement runs on the request's connection,
the session's (`db.session.connection()`): one checkout a request, one transaction with any ORM
write, and the session's teardown ends it (blog_api.database).
"""

from __future__ import annotations

from itertools import combinations

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    bindparam,
    func,
    insert,
    or_,
    select,
)

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


class Paged:
    """A list's page and count statements, built once for every combination of its filters.

    A statement built per request would have its cache key generated again by walking it whole;
    these are built at import, with the filters' values, the limit and the offset as parameters.
    `counted` is the count of the whole list, with the same conditions as `items` (the count may
    leave out a join the items need for their columns).
    """

    def __init__(
        self,
        items: Select,
        counted: Select,
        filters: dict[str, ColumnElement[bool]],
        always: tuple[str, ...] = (),
    ) -> None:
        self._always = frozenset(always)  # parameters of `items` itself, not filters
        self._statements: dict[frozenset[str], tuple[Select, Select]] = {}
        for n in range(len(filters) + 1):
            for names in map(frozenset, combinations(filters, n)):
                where = [filters[name] for name in sorted(names)]
                page = items.where(*where).limit(_LIMIT).offset(_OFFSET)
                count = counted.where(*where)
                self._statements[names] = (page, count)

    def page(
        self, shape: RowShape, envelope: Envelope, params: dict, page: int, per_page: int
    ) -> dict:
        """One page and the total; `params` names the filters used (None values are unused).

        A page past the end is empty, not an error; the last page needs no count.
        """
        used = {name: value for name, value in params.items() if value is not None}
        items_stmt, count_stmt = self._statements[frozenset(used) - self._always]
        conn = connection()
        offset = (page - 1) * per_page
        items = conn.execute(items_stmt, {**used, "limit": per_page, "offset": offset}).all()
        if 0 < len(items) < per_page or (page == 1 and not items):
            total = offset + len(items)
        else:
            total = conn.execute(count_stmt, used).scalar_one()
        values = {"items": shape.dump_all(items), "page": page, "per_page": per_page}
        return envelope.dump({**values, "total": total, "pages": -(-total // per_page)})


_LIMIT = bindparam("limit", type_=Integer)
_OFFSET = bindparam("offset", type_=Integer)
_PATTERN = bindparam("pattern", type_=posts.c.title.type)
POST_PAGES = Paged(
    NEWEST_POSTS,
    select(func.count()).select_from(posts),
    {
        "author_id": posts.c.author_id == bindparam("author_id", type_=Integer),
        "pattern": or_(
            posts.c.title.ilike(_PATTERN, escape="\\"), posts.c.body.ilike(_PATTERN, escape="\\")
        ),
    },
)
TODO_PAGES = Paged(
    OWN_TODOS.order_by(todos.c.id),
    select(func.count()).select_from(todos).where(todos.c.owner_id == bindparam("owner_id")),
    {"completed": todos.c.completed == bindparam("completed", type_=todos.c.completed.type)},
    always=("owner_id",),
)


AUTHOR_ID = select(users.c.id).where(users.c.username == bindparam("username"))


def post_page(author: str | None, text: str | None, page: int, per_page: int) -> dict:
    """A page of posts, newest first, by `author` and containing `text` when given.

    The author is looked up first: an unknown one is an empty page without touching the posts,
    a known one a range of the `(author_id, id)` index.
    """
    author_id = None
    if author is not None:
        author_id = connection().execute(AUTHOR_ID, {"username": author}).scalar()
        if author_id is None:
            values = {"items": [], "page": page, "per_page": per_page, "total": 0, "pages": 0}
            return POST_PAGE.dump(values)
    pattern = None if text is None else "%" + _escape_like(text) + "%"
    params = {"author_id": author_id, "pattern": pattern}
    return POST_PAGES.page(POST, POST_PAGE, params, page, per_page)


def todo_page(owner_id: int, completed: bool | None, page: int, per_page: int) -> dict:
    """A page of a user's todos, oldest first, only those `completed` (or not) when given."""
    params = {"owner_id": owner_id, "completed": completed}
    return TODO_PAGES.page(TODO, TODO_PAGE, params, page, per_page)


def _escape_like(text: str) -> str:
    """Make `%` and `_` in the user's text match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
