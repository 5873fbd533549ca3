"""v1's list endpoints: the newest LIST_LIMIT items, and a document that says so."""

from __future__ import annotations

LIST_LIMIT = 100


def newest_first(schema_name: str, what: str) -> dict:
    """The 200 response of a bounded v1 list, for `@bp.doc(responses=...)`."""
    return {
        200: {
            "description": f"The newest {LIST_LIMIT} {what}, newest first (v2 pages through all).",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "maxItems": LIST_LIMIT,
                        "items": {"$ref": f"#/components/schemas/{schema_name}"},
                    }
                }
            },
        }
    }
