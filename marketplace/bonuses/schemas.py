"""Request and response shapes of bonuses."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.bonuses.models import KINDS
from marketplace.bonuses.service import MAX_BONUS_CENTS
from marketplace.http.fields import StrictInteger, UTCDateTime
from marketplace.http.pagination import ListArgs

BONUS_EXAMPLE = {
    "brief_id": "brief_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5",
    "worker_id": "wrk_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5",
    "amount_cents": 500,
    "reason": "Your clip drove the most sales of the week: thank you!",
}


class BonusIn(Schema):
    brief_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    worker_id = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={
        "description": "A worker with approved (or paid) work on the brief; anyone else is 404."})
    amount_cents = StrictInteger(required=True, validate=validate.Range(
        min=1, max=MAX_BONUS_CENTS, error=f"Must be a whole number of cents from 1 to {MAX_BONUS_CENTS}."),
        metadata={"description": "Integer minor units, in the brief's currency. Paid from the brief's unspent "
                                 "escrow; 422 when it holds less."})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500), metadata={
        "description": "Shown to the worker with the bonus."})


class BonusOut(Schema):
    id = fields.String()
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={
        "description": "one_off (POST /v1/bonuses) | performance (earned by a conversion)"})
    brief_id = fields.String()
    worker_id = fields.String()
    worker_name = fields.String(allow_none=True)
    group_id = fields.String(allow_none=True, metadata={"description": "A performance bonus's group."})
    task_id = fields.String(allow_none=True, metadata={"description": "A performance bonus's task."})
    conversion_id = fields.String(allow_none=True, metadata={"description": "The conversion that earned it."})
    amount_cents = fields.Integer()
    currency = fields.String()
    reason = fields.String(allow_none=True)
    created_by = fields.String(metadata={"description": "brand:…, admin:… or system:performance-bonus"})
    created_at = UTCDateTime()


class BonusPage(Schema):
    data = fields.List(fields.Nested(BonusOut))
    next_cursor = fields.String(allow_none=True)


class BonusListArgs(ListArgs):
    brief = fields.String(load_default=None, validate=validate.Length(max=40),
                          metadata={"description": "Only this brief's bonuses."})
    worker = fields.String(load_default=None, validate=validate.Length(max=40),
                           metadata={"description": "Only this worker's bonuses."})


class UnspentOut(Schema):
    brief_id = fields.String()
    currency = fields.String()
    unspent_cents = fields.Integer(metadata={"description": (
        "What the escrow holds beyond what the brief has promised: tasks that can still be approved (open in a "
        "running group, claimed, submitted) at price plus fee, and performance bonuses not yet earned. One-off "
        "bonuses and new task groups are paid from it.")})
