"""Posts: public reads, authenticated writes, owner-or-admin changes."""

import pytest

from .conftest import assert_error

POSTS = "/api/v1/posts"


def create_post(client, headers, title="Hello", body="First post") -> dict:
    response = client.post(POSTS, json={"title": title, "body": body}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_and_read_a_post(client, auth_headers):
    post = create_post(client, auth_headers)
    assert set(post) == {"id", "title", "body", "author", "created_at", "updated_at"}
    assert post["author"]["username"] == "alice"
    assert set(post["author"]) == {"id", "username"}
    assert post["created_at"].endswith("Z") and post["updated_at"].endswith("Z")
    # reads need no token
    assert client.get(f"{POSTS}/{post['id']}").get_json() == post


def test_list_is_newest_first(client, auth_headers):
    ids = [create_post(client, auth_headers, title=f"post {i}")["id"] for i in range(3)]
    listed = client.get(POSTS).get_json()
    assert [p["id"] for p in listed] == ids[::-1]


def test_list_is_the_newest_100(client, auth_headers):
    ids = [create_post(client, auth_headers, title=f"post {i}")["id"] for i in range(110)]
    listed = client.get(POSTS).get_json()
    assert [p["id"] for p in listed] == ids[::-1][:100]
    assert client.get("/api/v2/posts?per_page=100&page=2").get_json()["items"][-1]["id"] == ids[0]


def test_a_deleted_id_is_never_given_again(client, auth_headers):
    # schemathesis' use_after_free found it on SQLite: a link to a deleted post led to a new one.
    for url, body in ((POSTS, {"title": "t", "body": "b"}), ("/api/v1/todos", {"title": "t"})):
        first = client.post(url, json=body, headers=auth_headers).get_json()
        gone = f"{url}/{first['id']}"
        assert client.delete(gone, headers=auth_headers).status_code == 204
        assert client.post(url, json=body, headers=auth_headers).status_code == 201
        assert_error(client.get(gone, headers=auth_headers), 404)


def test_writing_needs_a_token(client):
    assert_error(client.post(POSTS, json={"title": "t", "body": "b"}), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "text"}, "title"),
        ({"title": "", "body": "text"}, "title"),
        ({"title": "   ", "body": "text"}, "title"),
        ({"title": "x" * 201, "body": "text"}, "title"),
        ({"title": 5, "body": "text"}, "title"),
        ({"title": "t"}, "body"),
        ({"title": "t", "body": ""}, "body"),
        ({"title": "t", "body": "x" * 20001}, "body"),
        ({"title": "t", "body": "b", "author_id": 2}, "author_id"),
    ],
)
def test_invalid_post_is_422_and_not_stored(client, auth_headers, body, field):
    error = assert_error(client.post(POSTS, json=body, headers=auth_headers), 422)
    assert field in error["details"]
    assert client.get(POSTS).get_json() == []


def test_limits_are_inclusive(client, auth_headers):
    create_post(client, auth_headers, title="x" * 200, body="y" * 20000)


def test_missing_post_is_404(client, auth_headers):
    assert_error(client.get(f"{POSTS}/999"), 404)
    assert_error(client.get(f"{POSTS}/2147483648"), 404)  # past PostgreSQL's INTEGER
    assert_error(client.get(f"{POSTS}/99999999999999999999999"), 404)
    assert_error(
        client.put(f"{POSTS}/999", json={"title": "t", "body": "b"}, headers=auth_headers), 404
    )
    assert_error(client.delete(f"{POSTS}/999", headers=auth_headers), 404)


def test_author_can_put_patch_and_delete(client, auth_headers):
    post = create_post(client, auth_headers)
    url = f"{POSTS}/{post['id']}"
    put = client.put(url, json={"title": "New", "body": "New body"}, headers=auth_headers)
    assert put.status_code == 200
    assert (put.get_json()["title"], put.get_json()["body"]) == ("New", "New body")
    assert put.get_json()["updated_at"] >= post["updated_at"]

    patch = client.patch(url, json={"title": "Newer"}, headers=auth_headers)
    assert patch.status_code == 200
    assert (patch.get_json()["title"], patch.get_json()["body"]) == ("Newer", "New body")

    assert client.delete(url, headers=auth_headers).status_code == 204
    assert_error(client.get(url), 404)


def test_put_needs_every_field_and_patch_validates_what_it_gets(client, auth_headers):
    url = f"{POSTS}/{create_post(client, auth_headers)['id']}"
    assert (
        "body"
        in assert_error(client.put(url, json={"title": "t"}, headers=auth_headers), 422)["details"]
    )
    assert (
        "title"
        in assert_error(client.patch(url, json={"title": ""}, headers=auth_headers), 422)["details"]
    )
    assert client.get(url).get_json()["title"] == "Hello"


def test_only_the_author_or_an_admin_may_change_a_post(client, users):
    alice = users.headers("alice")
    bob = users.headers("bob")
    admin = users.headers("root", admin=True)
    url = f"{POSTS}/{create_post(client, alice)['id']}"

    assert_error(client.put(url, json={"title": "x", "body": "y"}, headers=bob), 403)
    assert_error(client.patch(url, json={"title": "x"}, headers=bob), 403)
    assert_error(client.delete(url, headers=bob), 403)
    assert client.get(url).get_json()["title"] == "Hello"

    assert client.patch(url, json={"title": "moderated"}, headers=admin).status_code == 200
    assert client.get(url).get_json()["author"]["username"] == "alice"
    assert client.delete(url, headers=admin).status_code == 204
