"""v2 lists: the page envelope, its bounds, and the filters; v2 shares v1's write routes."""

import pytest

from .conftest import assert_error

POSTS = "/api/v2/posts"
TODOS = "/api/v2/todos"


@pytest.fixture
def posts(client, users):
    """25 posts: alice wrote the even ones, bob the odd ones; every fifth mentions 'flask'."""
    alice = users.headers("alice")
    bob = users.headers("bob")
    for i in range(25):
        body = f"post number {i}" + (" about Flask" if i % 5 == 0 else "")
        response = client.post(
            POSTS, json={"title": f"title {i}", "body": body}, headers=alice if i % 2 == 0 else bob
        )
        assert response.status_code == 201
    return {"alice": alice, "bob": bob}


def test_default_page_envelope(client, posts):
    page = client.get(POSTS).get_json()
    assert set(page) == {"items", "page", "per_page", "total", "pages"}
    assert (page["page"], page["per_page"], page["total"], page["pages"]) == (1, 20, 25, 2)
    assert len(page["items"]) == 20
    assert page["items"][0]["title"] == "title 24"  # newest first


def test_pages_cover_everything_once(client, posts):
    seen = []
    for number in (1, 2, 3):
        page = client.get(f"{POSTS}?page={number}&per_page=10").get_json()
        assert page["pages"] == 3
        seen += [p["id"] for p in page["items"]]
    assert len(seen) == len(set(seen)) == 25


def test_page_past_the_end_is_empty(client, posts):
    page = client.get(f"{POSTS}?page=9").get_json()
    assert (page["items"], page["total"], page["page"]) == ([], 25, 9)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=1000001", "page"),
        ("page=99999999999999999999", "page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=ten", "per_page"),
    ],
)
def test_page_bounds_are_422(client, query, field):
    assert field in assert_error(client.get(f"{POSTS}?{query}"), 422)["details"]


def test_per_page_100_is_allowed(client, posts):
    assert len(client.get(f"{POSTS}?per_page=100").get_json()["items"]) == 25


def test_filter_by_author(client, posts):
    page = client.get(f"{POSTS}?author=alice&per_page=100").get_json()
    assert page["total"] == 13
    assert {p["author"]["username"] for p in page["items"]} == {"alice"}
    assert client.get(f"{POSTS}?author=nobody").get_json()["total"] == 0


def test_filter_by_text_in_title_or_body(client, posts):
    page = client.get(f"{POSTS}?q=flask").get_json()
    assert page["total"] == 5
    assert client.get(f"{POSTS}?q=title%2012").get_json()["total"] == 1
    assert client.get(f"{POSTS}?q=flask&author=bob").get_json()["total"] == 2


def test_like_wildcards_in_q_match_themselves(client, posts):
    assert client.get(f"{POSTS}?q=%25").get_json()["total"] == 0
    assert client.get(f"{POSTS}?q=_").get_json()["total"] == 0


def test_todos_page_filters_by_completion_and_stays_private(client, users):
    alice = users.headers("alice")
    bob = users.headers("bob")
    for i in range(5):
        client.post(TODOS, json={"title": f"t{i}", "completed": i < 2}, headers=alice)
    client.post(TODOS, json={"title": "bob's"}, headers=bob)

    page = client.get(TODOS, headers=alice).get_json()
    assert (page["total"], page["pages"], page["per_page"]) == (5, 1, 20)
    assert client.get(f"{TODOS}?completed=true", headers=alice).get_json()["total"] == 2
    assert client.get(f"{TODOS}?completed=false", headers=alice).get_json()["total"] == 3
    assert (
        client.get(f"{TODOS}?per_page=2&page=3", headers=alice).get_json()["items"][0]["title"]
        == "t4"
    )
    assert client.get(TODOS, headers=bob).get_json()["total"] == 1
    assert_error(client.get(TODOS), 401)
    assert (
        "completed"
        in assert_error(client.get(f"{TODOS}?completed=perhaps", headers=alice), 422)["details"]
    )


def test_v2_write_routes_behave_like_v1(client, users):
    alice = users.headers("alice")
    bob = users.headers("bob")
    post = client.post(POSTS, json={"title": "t", "body": "b"}, headers=alice).get_json()
    assert client.get(f"/api/v1/posts/{post['id']}").get_json() == post
    assert_error(client.patch(f"{POSTS}/{post['id']}", json={"title": "x"}, headers=bob), 403)
    assert client.delete(f"{POSTS}/{post['id']}", headers=alice).status_code == 204

    todo = client.post(TODOS, json={"title": "t"}, headers=alice).get_json()
    assert_error(client.get(f"{TODOS}/{todo['id']}", headers=bob), 404)
    assert (
        client.patch(f"{TODOS}/{todo['id']}", json={"completed": True}, headers=alice).get_json()[
            "completed"
        ]
        is True
    )
