"""Todos are private: another user's todo is a 404, never a 403."""

import pytest

from .conftest import assert_error

TODOS = "/api/v1/todos"


def test_todo_lifecycle(client, auth_headers):
    response = client.post(TODOS, json={"title": "write tests"}, headers=auth_headers)
    assert response.status_code == 201
    todo = response.get_json()
    assert set(todo) == {"id", "title", "completed", "created_at", "updated_at"}
    assert todo["completed"] is False
    url = f"{TODOS}/{todo['id']}"

    assert client.get(url, headers=auth_headers).get_json() == todo
    patched = client.patch(url, json={"completed": True}, headers=auth_headers).get_json()
    assert (patched["title"], patched["completed"]) == ("write tests", True)
    put = client.put(url, json={"title": "write more tests"}, headers=auth_headers).get_json()
    assert (put["title"], put["completed"]) == ("write more tests", False)
    assert client.delete(url, headers=auth_headers).status_code == 204
    assert_error(client.get(url, headers=auth_headers), 404)


def test_huge_todo_id_is_404(client, auth_headers):
    for method in ("GET", "PATCH", "DELETE"):
        response = client.open(
            f"{TODOS}/99999999999999999999", method=method, json={}, headers=auth_headers
        )
        assert_error(response, 404)


def test_list_is_the_newest_100(client, auth_headers):
    ids = [
        client.post(TODOS, json={"title": f"todo {i}"}, headers=auth_headers).get_json()["id"]
        for i in range(110)
    ]
    listed = client.get(TODOS, headers=auth_headers).get_json()
    assert [t["id"] for t in listed] == ids[::-1][:100]
    page = client.get("/api/v2/todos?per_page=100&page=2", headers=auth_headers).get_json()
    assert [t["id"] for t in page["items"]] == ids[100:]  # v2: oldest first, every one


def test_todos_need_a_token(client):
    assert_error(client.get(TODOS), 401)
    assert_error(client.post(TODOS, json={"title": "x"}), 401)
    assert_error(client.get(f"{TODOS}/1"), 401)


def test_a_user_sees_only_their_own_todos(client, users):
    alice = users.headers("alice")
    bob = users.headers("bob")
    client.post(TODOS, json={"title": "alice's"}, headers=alice)
    client.post(TODOS, json={"title": "bob's"}, headers=bob)
    assert [t["title"] for t in client.get(TODOS, headers=alice).get_json()] == ["alice's"]
    assert [t["title"] for t in client.get(TODOS, headers=bob).get_json()] == ["bob's"]


def test_someone_elses_todo_is_404_for_every_method(client, users):
    alice = users.headers("alice")
    bob = users.headers("bob")
    admin = users.headers("root", admin=True)
    url = f"{TODOS}/{client.post(TODOS, json={'title': 'mine'}, headers=alice).get_json()['id']}"

    for headers in (bob, admin):
        assert_error(client.get(url, headers=headers), 404)
        assert_error(client.put(url, json={"title": "x"}, headers=headers), 404)
        assert_error(client.patch(url, json={"completed": True}, headers=headers), 404)
        assert_error(client.delete(url, headers=headers), 404)
    todo = client.get(url, headers=alice).get_json()
    assert (todo["title"], todo["completed"]) == ("mine", False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "completed": "maybe"}, "completed"),
        ({"title": "ok", "completed": 1}, "completed"),  # JSON booleans only, as documented
        ({"title": "ok", "completed": "true"}, "completed"),
        ({"title": "ok", "owner_id": 2}, "owner_id"),
    ],
)
def test_invalid_todo_is_422(client, auth_headers, body, field):
    assert (
        field in assert_error(client.post(TODOS, json=body, headers=auth_headers), 422)["details"]
    )
