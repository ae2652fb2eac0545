"""Shapes of task listings and claims."""

from __future__ import annotations

from marshmallow import Schema, fields

from marketplace.fields import UTCDateTime


class ClaimedTask(Schema):
    id = fields.String()
    group_id = fields.String()
    brief_id = fields.String()
    kind = fields.String()
    unit_price_cents = fields.Integer()
    currency = fields.String()
    instructions = fields.String(allow_none=True)
    proof = fields.Dict()


class ClaimOut(Schema):
    claim_id = fields.String()
    task = fields.Nested(ClaimedTask)
    claimed_at = UTCDateTime()
    claim_expires_at = UTCDateTime()
    tracked_code = fields.String()
    tracked_link = fields.String(metadata={"description": "Share this link; clicks on it are credited to you."})
    status = fields.String()
