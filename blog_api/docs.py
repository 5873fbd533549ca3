"""Serve Swagger UI's files from the installed package, so /api/docs works with no internet."""

from __future__ import annotations

from apiflask import APIFlask
from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/docs/assets"


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
_BODY_ERRORS = {
    "400": "The body is not a JSON object (or not sent as application/json)",
    "413": "The body is over 1 MiB",
}


def _document_shared_errors(spec: dict) -> dict:
    """Add the errors every API route can answer, which no route declares itself."""
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            extra = {"503": "The database is unreachable (with Retry-After)"}
            if "requestBody" in operation:
                extra.update(_BODY_ERRORS)
            for status, description in extra.items():
                operation["responses"].setdefault(
                    status, {"description": description, "content": _ERROR}
                )
    return spec


def init_app(app: APIFlask) -> None:
    """Point APIFlask's Swagger UI page at local copies of its CSS and JavaScript."""
    app.spec_processor(_document_shared_errors)
    assets = Blueprint(
        "docs_assets", __name__, static_folder=str(swagger_ui_path), static_url_path=ASSETS_URL
    )
    app.register_blueprint(assets)
    app.config.update(
        # The bundled Swagger UI (4.x) renders OpenAPI 3.0 only; APIFlask's default is 3.1.
        OPENAPI_VERSION="3.0.3",
        SWAGGER_UI_CSS=f"{ASSETS_URL}/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{ASSETS_URL}/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{ASSETS_URL}/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{ASSETS_URL}/favicon-32x32.png",
    )
