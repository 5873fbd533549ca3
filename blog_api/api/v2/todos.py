"""v2 todos: v1's routes, with a paginated list filtered by completion."""

from __future__ import annotations

from apiflask import APIBlueprint

from ...auth import auth
from ...models import Todo
from ...schemas import TodoPageOut, TodoQuery
from ..pagination import paginate
from ..v1.todos import TodoCollection, TodoItem, own_todos

bp = APIBlueprint("todos_v2", __name__, tag="Todos")


class TodoPage(TodoCollection):
    @bp.auth_required(auth)
    @bp.input(TodoQuery, location="query", arg_name="query")
    @bp.output(TodoPageOut)
    def get(self, query: dict):
        """A page of the current user's todos, oldest first, optionally by completion."""
        stmt = own_todos().order_by(Todo.id)
        if "completed" in query:
            stmt = stmt.where(Todo.completed == query["completed"])
        return paginate(stmt, query["page"], query["per_page"])


bp.add_url_rule("", view_func=TodoPage.as_view("collection"))
bp.add_url_rule("/<int:todo_id>", view_func=TodoItem.as_view("item"))
