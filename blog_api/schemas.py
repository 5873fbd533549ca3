"""Request and response schemas, named by direction (In/Out/Query).

They validate every request and generate the OpenAPI document, so the two never disagree. Every
string a client sends is a `Text` field: it refuses what the database and Python cannot hold (a
NUL character, a lone surrogate), and its one `Pattern` is written so that Python and ECMA-262
(JSON Schema, JavaScript, client generators, schemathesis) read it the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from apiflask import Schema
from apiflask.fields import Boolean, Dict, Email, Integer, List, Nested, String
from apiflask.validators import Length, Range, Regexp
from marshmallow import ValidationError, fields, post_load


class Pattern(Regexp):
    """A regex validator whose pattern means the same here as in the OpenAPI document.

    Write the pattern in the subset that Python's `re` and ECMA-262 read alike: anchored with `^`
    and a final `$`, explicit character classes with `\\uXXXX` escapes; no `.`, `\\s`, `\\d`,
    `\\w` or inline flags, whose meanings differ. Python's `$` also matches before a final
    newline and ECMA-262's does not, so the check here reads it as `\\Z`.
    """

    def __init__(self, pattern: str, error: str) -> None:
        if not (pattern.startswith("^") and pattern.endswith("$")):
            raise ValueError(f"anchor the pattern with ^ and $: {pattern!r}")
        super().__init__(pattern, error=error)  # `self.regex` is what the document shows
        self._strict = re.compile(pattern[:-1] + r"\Z")

    def accepts(self, value: str) -> bool:
        return self._strict.match(value) is not None

    def __call__(self, value: str) -> str:
        if not self.accepts(value):
            raise ValidationError(self._format_error(value))
        return value


NUL_MESSAGE = "Must not contain the NUL character (\\u0000)."


class _Storable:
    """Refuse what the database and Python's codecs cannot hold, before any other check."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError(NUL_MESSAGE)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which JSON can carry as "\\udfff"
            raise ValidationError("Must be valid Unicode text (no lone surrogates).") from None
        return text


class Text(_Storable, String):
    """A string a client sends."""


class EmailText(_Storable, Email):
    """An email address a client sends."""


class JSONBoolean(Boolean):
    """`true` or `false` in a JSON body; not `1`, `"yes"` or `"on"`, which the document forbids."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# Blank means only whitespace: Unicode's White_Space, the BOM, and U+001C..U+001F (Python's
# str.isspace counts them), spelled out because `\\s` differs between Python and ECMA-262.
_SPACE = (
    r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a"
    r"\u2028\u2029\u202f\u205f\u3000\ufeff"
)
NO_NUL = Pattern(r"^[^\u0000]*$", error=NUL_MESSAGE)
# Optional whitespace, one character that is neither, then anything but NUL: it never backtracks.
NOT_BLANK = Pattern(rf"^[{_SPACE}]*[^{_SPACE}\u0000][^\u0000]*$", error="Must not be blank.")
USERNAME = Pattern(r"^[A-Za-z0-9_]+$", error="Use only letters, digits and underscores.")
# A dot-atom at a host name whose top-level domain is letters: narrower than what marshmallow's
# Email takes, so that the two agree. With `format: email` (RFC 5321) the document also says
# what `local_part_fits` checks; a lookahead in the pattern would say it too, but would make
# clients' generators crawl.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = Pattern(
    rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$",
    error="Use an address like name@example.org.",
)


def local_part_fits(address: str) -> None:
    """Refuse an address whose part before the @ is over RFC 5321's 64 characters."""
    if len(address.rpartition("@")[0]) > 64:
        raise ValidationError("The part before the @ must be at most 64 characters.")


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
    username = Text(required=True, validate=[Length(3, 32), USERNAME])
    email = EmailText(required=True, validate=[Length(max=254), EMAIL, local_part_fits])
    password = Text(required=True, validate=[Length(8, 128), NO_NUL], load_only=True)

    @post_load
    def normalize_email(self, data, **kwargs):
        data["email"] = data["email"].lower()
        return data


class LoginIn(Schema):
    username = Text(
        required=True,
        validate=[Length(1, 254), NO_NUL],
        metadata={"description": "The username or the email address."},
    )
    password = Text(required=True, validate=[Length(1, 128), NO_NUL], load_only=True)


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
    title = Text(required=True, validate=TITLE)
    body = Text(required=True, validate=BODY)


# PATCH schemas are their own classes, not `PostIn(partial=True)`: v1 and v2 share the views, and
# APIFlask registers a partial schema once per route, which apispec warns is a duplicate.
class PostPatchIn(Schema):
    title = Text(validate=TITLE)
    body = Text(validate=BODY)


class PostOut(Schema):
    id = Integer()
    title = String()
    body = String()
    author = Nested(AuthorOut)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


# --- todos -------------------------------------------------------------------------------------


class TodoIn(Schema):
    title = Text(required=True, validate=TITLE)
    completed = JSONBoolean(load_default=False)


class TodoPatchIn(Schema):
    title = Text(validate=TITLE)
    completed = JSONBoolean()


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
    author = Text(validate=[Length(1, 32), NO_NUL], metadata={"description": "Author's username."})
    q = Text(validate=[Length(1, 200), NO_NUL], metadata={"description": "Text in title or body."})


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
