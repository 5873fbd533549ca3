"""Posts: anyone reads, a logged-in user writes, only the author or an admin changes."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from flask import jsonify
from flask.views import MethodView

from ... import queries
from ...auth import auth, current_user, require_owner_or_admin
from ...extensions import db
from ...models import MAX_ID, Post
from ...schemas import PostIn, PostOut, PostPatchIn
from ..lists import LIST_LIMIT, newest_first

bp = APIBlueprint("posts", __name__, tag="Posts")
NOT_THE_AUTHOR = {403: "Neither the post's author nor an admin"}
# Built once: a statement built per request has its cache key generated again.
NEWEST_POSTS = queries.NEWEST_POSTS.limit(LIST_LIMIT)


def get_post_or_404(post_id: int) -> Post:
    """The post with that id, to change, or abort(404)."""
    if post_id > MAX_ID:
        abort(404, f"There is no post {post_id}.")
    return db.get_or_404(Post, post_id, description=f"There is no post {post_id}.")


def post_row_or_404(post_id: int):
    """The post with that id as a row of `queries.POST`, to answer with, or abort(404)."""
    row = queries.one(queries.ONE_POST, post_id=post_id) if post_id <= MAX_ID else None
    if row is None:
        abort(404, f"There is no post {post_id}.")
    return row


class PostCollection(MethodView):
    @bp.output(PostOut(many=True))
    @bp.doc(responses=newest_first("PostOut", "posts"))
    def get(self):
        """The newest 100 posts, newest first (`GET /api/v2/posts` pages through all)."""
        rows = queries.all_rows(NEWEST_POSTS)
        return jsonify(queries.POST.dump_all(rows))

    @bp.auth_required(auth)
    @bp.input(PostIn, arg_name="data")
    @bp.output(PostOut, status_code=201)
    def post(self, data: dict):
        """Publish a post as the current user."""
        author = current_user()
        values = {"title": data["title"], "body": data["body"], "author_id": author.id}
        row = queries.one(queries.NEW_POST, **values)
        db.session.commit()
        post = {**values, **row._mapping, "author__id": author.id}
        response = jsonify(queries.POST.dump_mapping({**post, "author__username": author.username}))
        response.status_code = 201
        return response


class PostItem(MethodView):
    @bp.output(PostOut)
    def get(self, post_id: int):
        """One post."""
        return jsonify(queries.POST.dump(post_row_or_404(post_id)))

    @bp.auth_required(auth)
    @bp.input(PostIn, arg_name="data")
    @bp.output(PostOut)
    @bp.doc(responses=NOT_THE_AUTHOR)
    def put(self, post_id: int, data: dict):
        """Replace a post's title and body (author or admin)."""
        return self._update(post_id, data)

    @bp.auth_required(auth)
    @bp.input(PostPatchIn, arg_name="data")
    @bp.output(PostOut)
    @bp.doc(responses=NOT_THE_AUTHOR)
    def patch(self, post_id: int, data: dict):
        """Change some of a post's fields (author or admin)."""
        return self._update(post_id, data)

    @bp.auth_required(auth)
    @bp.output({}, status_code=204)
    @bp.doc(responses=NOT_THE_AUTHOR)
    def delete(self, post_id: int):
        """Delete a post (author or admin)."""
        post = get_post_or_404(post_id)
        require_owner_or_admin(post.author_id, "post")
        db.session.delete(post)
        db.session.commit()
        return ""

    @staticmethod
    def _update(post_id: int, data: dict) -> Post:
        post = get_post_or_404(post_id)
        require_owner_or_admin(post.author_id, "post")
        for field, value in data.items():
            setattr(post, field, value)
        db.session.commit()
        return post


bp.add_url_rule("", view_func=PostCollection.as_view("collection"))
bp.add_url_rule("/<int:post_id>", view_func=PostItem.as_view("item"))
