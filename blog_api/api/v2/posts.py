"""v2 posts: v1's routes, with a paginated list filtered by author and text."""

from __future__ import annotations

from apiflask import APIBlueprint
from sqlalchemy import or_, select

from ...models import Post, User
from ...schemas import PostPageOut, PostQuery
from ..pagination import paginate
from ..v1.posts import PostCollection, PostItem

bp = APIBlueprint("posts_v2", __name__, tag="Posts")


class PostPage(PostCollection):
    @bp.input(PostQuery, location="query", arg_name="query")
    @bp.output(PostPageOut)
    def get(self, query: dict):
        """A page of posts, newest first, optionally by one author or containing some text."""
        stmt = select(Post).order_by(Post.id.desc())
        if "author" in query:
            stmt = stmt.join(Post.author).where(User.username == query["author"])
        if "q" in query:
            pattern = "%" + _escape_like(query["q"]) + "%"
            stmt = stmt.where(
                or_(Post.title.ilike(pattern, escape="\\"), Post.body.ilike(pattern, escape="\\"))
            )
        return paginate(stmt, query["page"], query["per_page"])


def _escape_like(text: str) -> str:
    """Make `%` and `_` in the user's text match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


bp.add_url_rule("", view_func=PostPage.as_view("collection"))
bp.add_url_rule("/<int:post_id>", view_func=PostItem.as_view("item"))
