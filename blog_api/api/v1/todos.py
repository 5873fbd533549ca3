"""Todos: private to their owner; someone else's todo does not exist (404)."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from flask import jsonify
from flask.views import MethodView
from sqlalchemy import select

from ... import queries
from ...auth import auth, current_user
from ...extensions import db
from ...models import MAX_ID, Todo
from ...schemas import TodoIn, TodoOut, TodoPatchIn
from ..lists import LIST_LIMIT, newest_first

bp = APIBlueprint("todos", __name__, tag="Todos")
# Built once: a statement built per request has its cache key generated again.
NEWEST_TODOS = queries.OWN_TODOS.order_by(queries.todos.c.id.desc()).limit(LIST_LIMIT)


def get_own_todo_or_404(todo_id: int) -> Todo:
    """The current user's todo with that id, or abort(404), also when another user owns it."""
    if todo_id > MAX_ID:
        abort(404, f"There is no todo {todo_id}.")
    return db.first_or_404(
        select(Todo).where(Todo.id == todo_id, Todo.owner_id == current_user().id),
        description=f"There is no todo {todo_id}.",
    )


class TodoCollection(MethodView):
    @bp.auth_required(auth)
    @bp.output(TodoOut(many=True))
    @bp.doc(responses=newest_first("TodoOut", "todos"))
    def get(self):
        """The current user's newest 100 todos, newest first (`GET /api/v2/todos` pages all)."""
        rows = queries.all_rows(NEWEST_TODOS, owner_id=current_user().id)
        return jsonify(queries.TODO.dump_all(rows))

    @bp.auth_required(auth)
    @bp.input(TodoIn, arg_name="data")
    @bp.output(TodoOut, status_code=201)
    def post(self, data: dict):
        """Add a todo for the current user."""
        todo = Todo(title=data["title"], completed=data["completed"], owner_id=current_user().id)
        db.session.add(todo)
        db.session.commit()
        return todo


class TodoItem(MethodView):
    @bp.auth_required(auth)
    @bp.output(TodoOut)
    def get(self, todo_id: int):
        """One of the current user's todos."""
        return get_own_todo_or_404(todo_id)

    @bp.auth_required(auth)
    @bp.input(TodoIn, arg_name="data")
    @bp.output(TodoOut)
    def put(self, todo_id: int, data: dict):
        """Replace a todo."""
        return self._update(todo_id, data)

    @bp.auth_required(auth)
    @bp.input(TodoPatchIn, arg_name="data")
    @bp.output(TodoOut)
    def patch(self, todo_id: int, data: dict):
        """Change some of a todo's fields."""
        return self._update(todo_id, data)

    @bp.auth_required(auth)
    @bp.output({}, status_code=204)
    def delete(self, todo_id: int):
        """Delete a todo."""
        db.session.delete(get_own_todo_or_404(todo_id))
        db.session.commit()
        return ""

    @staticmethod
    def _update(todo_id: int, data: dict) -> Todo:
        todo = get_own_todo_or_404(todo_id)
        for field, value in data.items():
            setattr(todo, field, value)
        db.session.commit()
        return todo


bp.add_url_rule("", view_func=TodoCollection.as_view("collection"))
bp.add_url_rule("/<int:todo_id>", view_func=TodoItem.as_view("item"))
