"""v2 posts: v1's routes, with a paginated list filtered by author and text."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import jsonify

from ... import queries
from ...schemas import PostPageOut, PostQuery
from ..v1.posts import PostCollection, PostItem

bp = APIBlueprint("posts_v2", __name__, tag="Posts")


class PostPage(PostCollection):
    @bp.input(PostQuery, location="query", arg_name="query")
    @bp.output(PostPageOut)
    def get(self, query: dict):
        """A page of posts, newest first, optionally by one author or containing some text."""
        page = queries.post_page(
            query.get("author"), query.get("q"), query["page"], query["per_page"]
        )
        return jsonify(page)


bp.add_url_rule("", view_func=PostPage.as_view("collection"))
bp.add_url_rule("/<int:post_id>", view_func=PostItem.as_view("item"))
