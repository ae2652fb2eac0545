"""Response shapes of events."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.events.service import TYPES
from marketplace.http.fields import UTCDateTime
from marketplace.http.pagination import ListArgs


class EventListArgs(ListArgs):
    type = fields.String(load_default=None, validate=validate.OneOf(TYPES), metadata={
        "description": "Only events of this type."})


class EventData(Schema):
    object = fields.Dict(metadata={"description": "The record the event is about, as it was when it happened.",
                                   "example": {"id": "sub_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5", "status": "approved"}})


class EventOut(Schema):
    id = fields.String(metadata={"example": "evt_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"})
    type = fields.String(validate=validate.OneOf(TYPES), metadata={"description": " | ".join(TYPES)})
    created_at = UTCDateTime()
    data = fields.Nested(EventData)


class EventPage(Schema):
    data = fields.List(fields.Nested(EventOut))
    next_cursor = fields.String(allow_none=True)
