"""Serve Swagger UI's files from the installed package, so /api/docs works with no internet."""

from __future__ import annotations

from apiflask import APIFlask
from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/api/docs/assets"


def init_app(app: APIFlask) -> None:
    """Point APIFlask's Swagger UI page at local copies of its CSS and JavaScript."""
    assets = Blueprint(
        "docs_assets", __name__, static_folder=str(swagger_ui_path), static_url_path=ASSETS_URL
    )
    app.register_blueprint(assets)
    app.config.update(
        SWAGGER_UI_CSS=f"{ASSETS_URL}/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{ASSETS_URL}/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{ASSETS_URL}/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{ASSETS_URL}/favicon-32x32.png",
    )
