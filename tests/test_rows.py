"""The hot routes answer from Core rows (blog_api.rows): the same dicts the Out schemas dump.

Each route's body is compared with what marshmallow makes of the ORM objects of the same rows,
on SQLite and PostgreSQL, so a schema change the row path does not follow fails here.
"""

from __future__ import annotations

import pytest
from marshmallow import fields
from sqlalchemy import select

from blog_api.extensions import db
from blog_api.models import Post, Todo, User
from blog_api.rows import RowShape
from blog_api.schemas import PostOut, PostPageOut, TodoOut, TodoPageOut, UserOut


@pytest.fixture
def seeded(client, users):
    """Two users' posts (one with no text but spaces around it) and todos, some done."""
    alice, bob = users.headers("alice"), users.headers("bob")
    for i, (who, title) in enumerate(
        [(alice, "First"), (bob, "Ünïcødé ✓"), (alice, "  padded  "), (bob, "50% off_x")]
    ):
        body = {"title": title, "body": f"Body {i}\nwith a second line"}
        assert client.post("/api/v1/posts", json=body, headers=who).status_code == 201
    for i in range(5):
        todo = {"title": f"Todo {i}", "completed": i % 2 == 0}
        assert client.post("/api/v1/todos", json=todo, headers=alice).status_code == 201
    return alice


def _dumped(app, schema, statement, envelope=None, **page) -> list[dict] | dict:
    """What `schema` dumps of the objects `statement` loads (or of a page of them)."""
    with app.app_context():
        objects = db.session.scalars(statement).all()
        if envelope is not None:
            return envelope().dump({"items": objects, **page})
        return schema(many=True).dump(objects)


def test_one_post_is_what_the_schema_dumps(app, client, seeded):
    expected = _dumped(app, PostOut, select(Post).order_by(Post.id))
    for post in expected:
        assert client.get(f"/api/v1/posts/{post['id']}").get_json() == post
        assert client.get(f"/api/v2/posts/{post['id']}").get_json() == post


def test_lists_and_pages_are_what_the_schemas_dump(app, client, seeded):
    newest = _dumped(app, PostOut, select(Post).order_by(Post.id.desc()))
    assert client.get("/api/v1/posts").get_json() == newest
    page = client.get("/api/v2/posts?page=2&per_page=3").get_json()
    oldest = select(Post).order_by(Post.id).limit(1)
    assert page == _dumped(app, None, oldest, PostPageOut, page=2, per_page=3, total=4, pages=2)
    assert list(page) == list(PostPageOut().dump_fields)  # the schema's order, not sorted
    by_bob = client.get("/api/v2/posts?author=bob").get_json()["items"]
    assert by_bob == [p for p in newest if p["author"]["username"] == "bob"]
    with app.app_context():
        alice_id = db.session.scalar(select(User.id).where(User.username == "alice"))
    todos = _dumped(app, TodoOut, select(Todo).where(Todo.owner_id == alice_id).order_by(Todo.id))
    assert client.get("/api/v1/todos", headers=seeded).get_json() == todos[::-1]
    done = client.get("/api/v2/todos?completed=true&per_page=2", headers=seeded).get_json()
    first_done = select(Todo).where(Todo.completed.is_(True)).order_by(Todo.id).limit(2)
    assert done == _dumped(app, None, first_done, TodoPageOut, page=1, per_page=2, total=3, pages=2)
    assert len(todos) == 5


def test_me_and_a_new_post_are_what_the_schemas_dump(app, client, seeded):
    me = client.get("/api/v1/users/me", headers=seeded).get_json()
    created = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=seeded)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "alice"))
        assert me == UserOut().dump(user)
        post = db.session.get(Post, created.get_json()["id"])
        assert created.get_json() == PostOut().dump(post)
    assert "password_hash" not in me


def test_a_shape_follows_its_schema_and_refuses_a_column_it_lacks():
    """A field added to a schema is selected too; one with no column fails at import, not later."""
    shape = RowShape(PostOut, Post.__table__, author=User.__table__)
    assert shape.labels == (
        "id",
        "title",
        "body",
        "author__id",
        "author__username",
        "created_at",
        "updated_at",
    )

    class Wider(TodoOut):
        owner = fields.Integer(attribute="owner_id")
        nickname = fields.String()

    with pytest.raises(KeyError, match="nickname"):
        RowShape(Wider, Todo.__table__)


def test_a_page_of_todos_counts_only_its_owners(client, users):
    """The total of a page that is not the last is counted, and only over the owner's todos."""
    alice, bob = users.headers("alice"), users.headers("bob")
    for who, n in ((alice, 3), (bob, 4)):
        for i in range(n):
            todo = {"title": f"Todo {i}", "completed": True}
            assert client.post("/api/v1/todos", json=todo, headers=who).status_code == 201
    for query in ("per_page=2", "per_page=2&completed=true"):
        page = client.get(f"/api/v2/todos?{query}", headers=alice).get_json()
        assert (page["total"], page["pages"], len(page["items"])) == (3, 2, 2), query
