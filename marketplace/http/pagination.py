"""Newest-first cursor pagination over (created_at, id), the same for every list endpoint."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from marketplace.db.clock import as_utc
from marketplace.errors import InvalidInput
from marketplace.extensions import db
from marketplace.http.inputs import storable


class ListArgs(Schema):
    """?limit= (default 50, at most 500) and ?cursor=, the same on every list endpoint."""

    # Query strings carry text, so this integer is parsed from it (unlike money in JSON bodies).
    limit = fields.Integer(validate=validate.Range(min=1, max=500), load_default=50)
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


def encode_cursor(at: datetime, *key: str | int) -> str:
    """An opaque cursor: the last row's time and the rest of its sort key (an id, a position)."""
    raw = json.dumps([as_utc(at).isoformat(), *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *key_types: type) -> tuple:
    """(time, *key) from a cursor of encode_cursor, the key's parts of `key_types` (default: one
    id); else 422."""
    key_types = key_types or (str,)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, *key = json.loads(raw)
        if len(key) != len(key_types) or any(
                not isinstance(part, kind) or isinstance(part, bool) for part, kind in zip(key, key_types, strict=True)):
            raise TypeError("cursor key")
        if not all(storable(part) for part in (at, *key) if isinstance(part, str)):
            raise ValueError("cursor text")
        if not all(-2**31 <= part < 2**31 for part in key if isinstance(part, int)):
            raise ValueError("cursor number")  # our cursors' numbers are INTEGER columns: no overflow in SQL
        return (as_utc(datetime.fromisoformat(at)), *key)
    # OverflowError: a time at the edge of the calendar, moved to UTC, falls off it.
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput.field("cursor", "Not a cursor this API issued.") from exc


def page(query: sa.Select, model, *, limit: int, cursor: str | None) -> tuple[list, str | None]:
    """One page of `query` (which selects `model` rows) and the cursor of the next, if any."""
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(model.created_at, model.id) < sa.tuple_(sa.literal(created_at), sa.literal(row_id)))
    rows = list(db.session.scalars(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at, last.id)
