"""The OpenAPI document covers every route and the docs page needs no internet."""

import re

V1_OPERATIONS = {
    ("post", "/users/register"),
    ("post", "/users/login"),
    ("get", "/users/me"),
    ("get", "/users"),
    ("get", "/posts"),
    ("post", "/posts"),
    ("get", "/posts/{post_id}"),
    ("put", "/posts/{post_id}"),
    ("patch", "/posts/{post_id}"),
    ("delete", "/posts/{post_id}"),
    ("get", "/todos"),
    ("post", "/todos"),
    ("get", "/todos/{todo_id}"),
    ("put", "/todos/{todo_id}"),
    ("patch", "/todos/{todo_id}"),
    ("delete", "/todos/{todo_id}"),
}


def test_openapi_document_lists_every_api_route(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    operations = {(m, p) for p, item in spec["paths"].items() for m in item if m != "parameters"}
    for version in ("v1", "v2"):
        for method, path in V1_OPERATIONS:
            assert (method, f"/api/{version}{path}") in operations


def test_openapi_schemas_are_the_validating_schemas(client):
    spec = client.get("/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    post_in = schemas["PostIn"]
    assert post_in["properties"]["title"]["maxLength"] == 200
    assert set(post_in["required"]) == {"title", "body"}
    assert "required" not in schemas["PostPatchIn"]
    query = spec["paths"]["/api/v2/posts"]["get"]["parameters"]
    per_page = next(p for p in query if p["name"] == "per_page")
    assert per_page["schema"]["maximum"] == 100
    error = spec["paths"]["/api/v1/posts"]["post"]["responses"]["422"]["content"]
    assert error["application/json"]["schema"]["$ref"].endswith("/ErrorOut")


def test_openapi_version_is_one_the_bundled_swagger_ui_renders(client):
    from swagger_ui_bundle import swagger_ui_path

    major = int(swagger_ui_path.name.removeprefix("swagger-ui-").split(".")[0])
    version = client.get("/api/openapi.json").get_json()["openapi"]
    assert version.startswith("3.0.") or major >= 5, (version, swagger_ui_path.name)


def test_docs_page_loads_only_local_assets(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/api/openapi.json" in html
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    assets = re.findall(r'(?:src|href)="(/api/docs/assets/[^"]+)"', html)
    assert len(assets) >= 3
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.get_data()) > 500
        served.close()


def test_openapi_documents_the_errors_every_route_can_answer(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    post = paths["/api/v1/posts"]["post"]["responses"]
    assert {"400", "401", "413", "422", "503"} <= set(post)
    assert "403" in paths["/api/v2/posts/{post_id}"]["delete"]["responses"]
    assert "409" in paths["/api/v1/users/register"]["post"]["responses"]
    assert {"200", "503"} <= set(paths["/health"]["get"]["responses"])


def test_v1_lists_say_they_hold_at_most_100_newest_first(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path, schema_name in (("/api/v1/posts", "PostOut"), ("/api/v1/todos", "TodoOut")):
        ok = paths[path]["get"]["responses"]["200"]
        schema = ok["content"]["application/json"]["schema"]
        assert schema["maxItems"] == 100
        assert schema["items"]["$ref"].endswith(f"/{schema_name}")
        assert "newest" in ok["description"]
