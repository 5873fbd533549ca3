"""Request and response schemas, named by direction (In/Out/Query).

They validate every request and generate the OpenAPI document, so the two never disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apiflask import Schema
from apiflask.fields import Boolean, Dict, Email, Integer, List, Nested, String
from apiflask.validators import Length, Range, Regexp
from marshmallow import fields, post_load

USERNAME = Regexp(r"[A-Za-z0-9_]+\Z", error="Use only letters, digits and underscores.")


NOT_BLANK = Regexp(r"(?s).*\S", error="Must not be blank.")
TITLE = [Length(1, 200), NOT_BLANK]
BODY = [Length(1, 20000), NOT_BLANK]


class UTCDateTime(fields.DateTime):
    """ISO 8601 in UTC with a `Z`, whatever the database handed back."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- users -------------------------------------------------------------------------------------


class UserIn(Schema):
    username = String(required=True, validate=[Length(3, 32), USERNAME])
    email = Email(required=True, validate=Length(max=254))
    password = String(required=True, validate=Length(8, 128), load_only=True)

    @post_load
    def normalize_email(self, data, **kwargs):
        data["email"] = data["email"].lower()
        return data


class LoginIn(Schema):
    username = String(
        required=True,
        validate=Length(1, 254),
        metadata={"description": "The username or the email address."},
    )
    password = String(required=True, validate=Length(1, 128), load_only=True)


class UserOut(Schema):
    id = Integer()
    username = String()
    email = String()
    is_admin = Boolean()
    created_at = UTCDateTime()


class AuthorOut(Schema):
    id = Integer()
    username = String()


class TokenOut(Schema):
    access_token = String()
    token_type = String()
    expires_in = Integer()


# --- posts -------------------------------------------------------------------------------------


class PostIn(Schema):
    title = String(required=True, validate=TITLE)
    body = String(required=True, validate=BODY)


# PATCH schemas are their own classes, not `PostIn(partial=True)`: v1 and v2 share the views, and
# APIFlask registers a partial schema once per route, which apispec warns is a duplicate.
class PostPatchIn(Schema):
    title = String(validate=TITLE)
    body = String(validate=BODY)


class PostOut(Schema):
    id = Integer()
    title = String()
    body = String()
    author = Nested(AuthorOut)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


# --- todos -------------------------------------------------------------------------------------


class TodoIn(Schema):
    title = String(required=True, validate=TITLE)
    completed = Boolean(load_default=False)


class TodoPatchIn(Schema):
    title = String(validate=TITLE)
    completed = Boolean()


class TodoOut(Schema):
    id = Integer()
    title = String()
    completed = Boolean()
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


# --- v2 pages ----------------------------------------------------------------------------------


class PageQuery(Schema):
    page = Integer(load_default=1, validate=Range(1, 1_000_000))
    per_page = Integer(load_default=20, validate=Range(1, 100))


class PostQuery(PageQuery):
    author = String(validate=Length(1, 32), metadata={"description": "Author's username."})
    q = String(validate=Length(1, 200), metadata={"description": "Text in title or body."})


class TodoQuery(PageQuery):
    completed = Boolean()


class PageOut(Schema):
    page = Integer()
    per_page = Integer()
    total = Integer()
    pages = Integer()


class PostPageOut(PageOut):
    items = List(Nested(PostOut))


class TodoPageOut(PageOut):
    items = List(Nested(TodoOut))


# --- errors ------------------------------------------------------------------------------------


class ErrorOut(Schema):
    error = String(metadata={"description": "The HTTP reason phrase.", "example": "Not Found"})
    message = String(metadata={"description": "What went wrong, for a person."})
    details = Dict(
        keys=String(),
        values=List(String()),
        metadata={"description": "Validation errors only: field -> messages."},
    )
