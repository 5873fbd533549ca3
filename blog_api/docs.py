"""The OpenAPI document's finishing touches, and Swagger UI served from the installed package.

APIFlask generates the document from the schemas; `_portable` adds what no route declares itself
(the errors every API route can answer, required bodies, links, `/metrics` as text) and makes it
valid for validators and client generators (unique tags and operation ids, a relative server).
"""

from __future__ import annotations

import re

from apiflask import APIFlask
from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/docs/assets"
METHODS = ("get", "put", "patch", "post", "delete")

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
_BODY_ERRORS = {
    "400": "The body is not a JSON object (or not sent as application/json), or nests too deep",
    "413": "The body is over 1 MiB",
}
# What each operation on an item does with the id a create answered, as the link's name.
_LINK_NAMES = {"get": "read", "put": "replace", "patch": "update", "delete": "delete"}


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _document_shared_errors(spec: dict) -> None:
    """Add the errors every API route can answer, which no route declares itself."""
    for path, method, operation in _operations(spec):
        if not path.startswith("/api/"):
            continue
        extra = {"503": "The database is unreachable (with Retry-After)"}
        if method in ("post", "put", "patch", "delete"):
            extra["429"] = "Too many requests from this address (with Retry-After)"
        if "requestBody" in operation:
            operation["requestBody"]["required"] = True  # an absent body is a 400
            extra.update(_BODY_ERRORS)
        for status, description in extra.items():
            operation["responses"].setdefault(
                status, {"description": description, "content": _ERROR}
            )


def _unique_names(spec: dict) -> None:
    """One tag a name (v1 and v2 blueprints share theirs); an operation id from method and path."""
    seen: set[str] = set()
    spec["tags"] = [
        t for t in spec.get("tags", []) if not (t["name"] in seen or seen.add(t["name"]))
    ]
    for path, method, operation in _operations(spec):
        words = [method] + [part.strip("{}") for part in path.strip("/").split("/")]
        operation.setdefault("operationId", re.sub(r"\W", "_", "_".join(words)))


def _link_creates_to_items(spec: dict) -> None:
    """Link each create (201) to the operations on what it made, by the `id` it answered."""
    for path, item in spec["paths"].items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        for item_path, operations in spec["paths"].items():
            match = re.fullmatch(re.escape(path) + r"/\{(\w+)\}", item_path)
            if match is None:
                continue
            links = created.setdefault("links", {})
            for method, name in _LINK_NAMES.items():
                if method in operations:
                    links[name] = {
                        "operationId": operations[method]["operationId"],
                        "parameters": {match[1]: "$response.body#/id"},
                    }


def _document_metrics(spec: dict) -> None:
    """`/metrics` is Prometheus text, not JSON, and may want a token."""
    operation = spec["paths"].get("/metrics", {}).get("get")
    if operation is None:  # OTEL_SDK_DISABLED: there is no /metrics
        return
    text = {"schema": {"type": "string"}}
    operation["summary"] = "Prometheus metrics"
    operation["description"] = (
        "The Prometheus text format; OpenMetrics, with exemplars, when the `Accept` header asks "
        "for `application/openmetrics-text`. Needs `Authorization: Bearer <METRICS_TOKEN>` when "
        "that variable is set."
    )
    operation["responses"] = {
        "200": {
            "description": "Every metric family",
            "content": {"text/plain": text, "application/openmetrics-text": text},
        },
        "401": {"description": "METRICS_TOKEN is set and was not sent", "content": _ERROR},
    }


def _portable(spec: dict) -> dict:
    _document_shared_errors(spec)
    _unique_names(spec)
    _link_creates_to_items(spec)
    _document_metrics(spec)
    return spec


def init_app(app: APIFlask) -> None:
    """Finish the document, and point Swagger UI at local copies of its CSS and JavaScript."""
    app.spec_processor(_portable)
    assets = Blueprint(
        "docs_assets", __name__, static_folder=str(swagger_ui_path), static_url_path=ASSETS_URL
    )
    app.register_blueprint(assets)
    app.config.update(
        # The bundled Swagger UI (4.x) renders OpenAPI 3.0 only; APIFlask's default is 3.1.
        OPENAPI_VERSION="3.0.3",
        # Relative: clients resolve it against wherever they fetched the document from.
        SERVERS=[{"url": "/"}],
        SWAGGER_UI_CSS=f"{ASSETS_URL}/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{ASSETS_URL}/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{ASSETS_URL}/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{ASSETS_URL}/favicon-32x32.png",
    )
