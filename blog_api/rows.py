"""Responses straight from result rows: an Out schema's fields, without ORM objects or a dump.

The hot routes read with Core `select()`s and answer from the rows. What a route returns still
comes from its output schema, which also makes the OpenAPI document: `RowShape(PostOut, posts,
author=users)` reads the schema's fields in order, selects the column each one names (a nested
field's from the table given for it, labelled `author__id`), and turns a row into the dict
marshmallow would have dumped from the object. `tests/test_rows.py` holds the two equal.

Converting a value is the field's own `_serialize`, except for plain `Integer`, `String` and
`Boolean` fields, whose values the database already hands back as int, str and bool: those pass
as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import ColumnElement, Table

_AS_IS = (fields.Integer, fields.String, fields.Boolean)

Convert = Callable[[Any], Any] | None


def _converter(field: fields.Field, key: str) -> Convert:
    if type(field) in _AS_IS and not getattr(field, "as_string", False):
        return None
    return lambda value: field._serialize(value, key, None)  # noqa: SLF001 - the field's own


class RowShape:
    """The columns an output schema needs, and the schema's dict from a row of them."""

    def __init__(self, schema: type[Schema], table: Table, **nested: Table) -> None:
        self.columns: list[ColumnElement] = []
        # (key, column index, converter, None) or, for a nested field, (key, -1, None, [...]).
        self._plan: list[tuple[str, int, Convert, list | None]] = []
        for key, field in schema().dump_fields.items():
            if isinstance(field, fields.Nested):
                inner = []
                for sub_key, sub_field in field.schema.dump_fields.items():
                    column = nested[key].c[sub_field.attribute or sub_key]
                    inner.append(self._add(column.label(f"{key}__{sub_key}"), sub_field, sub_key))
                self._plan.append((key, -1, None, inner))
            else:
                self._plan.append(self._add(table.c[field.attribute or key], field, key))
        self.labels = tuple(column.key for column in self.columns)

    def _add(self, column: ColumnElement, field: fields.Field, key: str) -> tuple:
        self.columns.append(column)
        return (key, len(self.columns) - 1, _converter(field, key), None)

    def dump(self, row: Sequence) -> dict:
        """The schema's dict of one row of `columns`, in the schema's field order."""
        out = {}
        for key, index, convert, inner in self._plan:
            if inner is None:
                value = row[index]
                out[key] = value if convert is None or value is None else convert(value)
            else:
                out[key] = {
                    k: row[i] if c is None or row[i] is None else c(row[i]) for k, i, c, _ in inner
                }
        return out

    def dump_all(self, rows: Sequence[Sequence]) -> list[dict]:
        return [self.dump(row) for row in rows]

    def dump_mapping(self, values: Mapping[str, Any]) -> dict:
        """The schema's dict of values named by `labels` (a row built by hand)."""
        return self.dump([values[label] for label in self.labels])


class Envelope:
    """An output schema whose values are dumped already (a page: its items are rows' dicts)."""

    def __init__(self, schema: type[Schema]) -> None:
        self.keys = tuple(schema().dump_fields)

    def dump(self, values: Mapping[str, Any]) -> dict:
        return {key: values[key] for key in self.keys}
