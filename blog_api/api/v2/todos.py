"""v2 todos: v1's routes, with a paginated list filtered by completion."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import jsonify

from ... import queries
from ...auth import auth, current_user
from ...schemas import TodoPageOut, TodoQuery
from ..v1.todos import TodoCollection, TodoItem

bp = APIBlueprint("todos_v2", __name__, tag="Todos")


class TodoPage(TodoCollection):
    @bp.auth_required(auth)
    @bp.input(TodoQuery, location="query", arg_name="query")
    @bp.output(TodoPageOut)
    def get(self, query: dict):
        """A page of the current user's todos, oldest first, optionally by completion."""
        page = queries.todo_page(
            current_user().id, query.get("completed"), query["page"], query["per_page"]
        )
        return jsonify(page)


bp.add_url_rule("", view_func=TodoPage.as_view("collection"))
bp.add_url_rule("/<int:todo_id>", view_func=TodoItem.as_view("item"))
