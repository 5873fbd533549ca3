"""The v2 page envelope: `{items, page, per_page, total, pages}`."""

from __future__ import annotations

from sqlalchemy import Select

from ..extensions import db


def paginate(query: Select, page: int, per_page: int) -> dict:
    """Run `query` for one page; a page past the end is empty, not an error."""
    result = db.paginate(query, page=page, per_page=per_page, max_per_page=100, error_out=False)
    return {
        "items": result.items,
        "page": page,
        "per_page": per_page,
        "total": result.total,
        "pages": result.pages,
    }
