"""Request and response shapes of a worker's notifications."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from marketplace.http.fields import UTCDateTime
from marketplace.http.pagination import ListArgs
from marketplace.notifications.models import KINDS
from marketplace.notifications.service import MAX_READ_IDS


class NotificationListArgs(ListArgs):
    unread = fields.Boolean(load_default=False, metadata={"description": "Only those not read yet."})


class NotificationOut(Schema):
    id = fields.String()
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={"description": " | ".join(KINDS)})
    subject_id = fields.String(metadata={"description": "The submission, payout item, bonus or appeal it is about."})
    title = fields.String()
    reason_code = fields.String(allow_none=True, metadata={
        "description": "A rejection's or revision's reason code (one of the review decision's codes; for an automatic "
                       "rejection, the code of the gravest check that failed)."})
    message = fields.String(allow_none=True, metadata={"description": "The reviewer's reason, or what failed."})
    amount_cents = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    read = fields.Boolean()
    read_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


class NotificationPage(Schema):
    data = fields.List(fields.Nested(NotificationOut))
    unread = fields.Integer(metadata={"description": "How many of yours are unread in all."})
    next_cursor = fields.String(allow_none=True)


class MarkReadIn(Schema):
    ids = fields.Raw(required=True, metadata={
        "description": f'Notification ids (at most {MAX_READ_IDS}), or "all".',
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string", "enum": ["all"]}],
        "example": ["ntf_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"]})

    @validates_schema
    def _ids(self, data, **kwargs):
        ids = data["ids"]
        if ids == "all":
            return
        if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 40 for i in ids):
            raise ValidationError('Must be a list of notification ids, or "all".', "ids")
        if len(ids) > MAX_READ_IDS:
            raise ValidationError(f"At most {MAX_READ_IDS} ids a call.", "ids")


class MarkReadOut(Schema):
    marked = fields.Integer(metadata={"description": "How many changed from unread to read."})
    unread = fields.Integer()
