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


def openapi(client, base_url="http://localhost") -> dict:
    return client.get("/api/openapi.json", base_url=base_url).get_json()


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    validate(openapi(client))  # raises on any error, e.g. the repeated tags it once had


def test_tags_and_operation_ids_are_unique(client):
    spec = openapi(client)
    tags = [tag["name"] for tag in spec["tags"]]
    assert sorted(tags) == sorted(set(tags)) and {"Users", "Posts", "Todos"} <= set(tags)
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))


def test_servers_do_not_follow_the_first_request(client):
    first = openapi(client, "http://first.example:8000")
    assert first["servers"] == [{"url": "/"}]
    assert openapi(client, "https://second.example")["servers"] == [{"url": "/"}]


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "patch", "post", "delete"):
                yield path, method, operation


def test_request_bodies_are_required_and_their_errors_documented(client):
    bodies = 0
    for path, method, operation in operations(openapi(client)):
        if "requestBody" in operation:
            bodies += 1
            assert operation["requestBody"]["required"] is True, (method, path)
            assert {"400", "413", "422", "503"} <= set(operation["responses"]), (method, path)
    assert bodies == 16  # register, login; posts and todos: create, replace, update; in v1 and v2


def test_every_status_a_route_can_answer_is_documented(client):
    spec = openapi(client)
    for path, method, operation in operations(spec):
        responses = set(operation["responses"])
        if path.startswith("/api/"):
            assert "503" in responses, (method, path)
        if "security" in operation:
            assert "401" in responses, (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
    paths = spec["paths"]
    for version in ("v1", "v2"):
        assert "403" in paths[f"/api/{version}/users"]["get"]["responses"]  # not an admin
        assert "409" in paths[f"/api/{version}/users/register"]["post"]["responses"]
        assert "401" in paths[f"/api/{version}/users/login"]["post"]["responses"]
        for verb in ("put", "patch", "delete"):
            assert "403" in paths[f"/api/{version}/posts/{{post_id}}"][verb]["responses"]


def test_metrics_are_documented_as_text_behind_an_optional_token(client):
    operation = openapi(client)["paths"]["/metrics"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {
        "text/plain",
        "application/openmetrics-text",
    }
    assert "application/json" in operation["responses"]["401"]["content"]
    assert "METRICS_TOKEN" in operation["description"]


def test_each_create_links_to_the_operations_on_what_it_made(client):
    spec = openapi(client)
    by_id = {op["operationId"]: (method, path) for path, method, op in operations(spec)}
    for version in ("v1", "v2"):
        for resource, parameter in (("posts", "post_id"), ("todos", "todo_id")):
            created = spec["paths"][f"/api/{version}/{resource}"]["post"]["responses"]["201"]
            targets = {
                by_id[link["operationId"]]
                for link in created["links"].values()
                if link["parameters"] == {parameter: "$response.body#/id"}
            }
            item = f"/api/{version}/{resource}/{{{parameter}}}"
            assert targets == {(verb, item) for verb in ("get", "put", "patch", "delete")}


def schema_patterns(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in schema_patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in schema_patterns(value)]
    return []


PROBES = [
    "", "a", "alice", "alice\n", "\nalice", "Alice_99", "bad name", "a-b", "   ", "\t\n", "\u3000",
    "\u00a0x", "\ufeff", "\u001c", "\u0085", "x\u2028", "\x00", "a\x00b", "é", "名前", "😀",
    "a@example.org", "first.last@sub.example.co", "a..b@example.org", "0@0.a", "a@-x.org",
    "x@y", "me@[127.0.0.1]", "o'neil+tag@example.org",
]  # fmt: skip


def test_patterns_are_ecma_262_and_mean_what_python_checks(client):
    """Every pattern compiles as JSON Schema's regex dialect (ECMA-262, `u` flag) in Node.js and
    accepts exactly the probe strings the app's own validator accepts."""
    import json
    import shutil
    import subprocess

    from blog_api.schemas import Pattern

    from .services import missing

    node = shutil.which("node")
    if node is None:
        missing("Node.js is not installed (apt-get install -y nodejs)")
    patterns = sorted(set(schema_patterns(openapi(client))))
    assert len(patterns) >= 4 and not any("(?s)" in p or r"\S" in p for p in patterns)
    script = (
        "const [patterns, probes] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map("
        "p => { const r = new RegExp(p, 'u'); return probes.map(s => r.test(s)); })));"
    )
    result = subprocess.run(
        [node, "-e", script],
        input=json.dumps([patterns, PROBES]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for pattern, ecma in zip(patterns, json.loads(result.stdout), strict=True):
        python = [Pattern(pattern, error="").accepts(probe) for probe in PROBES]
        assert python == ecma, pattern
