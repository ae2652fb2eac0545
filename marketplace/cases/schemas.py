"""Request and response shapes of person-only cases."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.cases.models import CASE_KINDS, CASE_STATUSES
from marketplace.http.fields import UTCDateTime
from marketplace.http.pagination import ListArgs


class CaseListArgs(ListArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES))
    kind = fields.String(load_default=None, validate=validate.OneOf(CASE_KINDS))


class CaseActionOut(Schema):
    id = fields.String()
    actor = fields.String(metadata={"description": "Who: admin:adm_…, or stripe / reconcile for what settled by itself."})
    action = fields.String(metadata={"description": "case.retry | case.settle | case.resolved"})
    reason = fields.String(allow_none=True, metadata={"description": "Why, as the person wrote it."})
    detail = fields.Dict()
    created_at = UTCDateTime()


class CaseOut(Schema):
    id = fields.String()
    kind = fields.String(metadata={"description": (
        "refund_failed: a refund to a brand Stripe refused or the bank failed later (subject: our first refund; "
        "its money is back in the brief's escrow); transfer_mismatch: a Stripe transfer for one of our payout "
        "items whose amount or destination is not the item's (subject: the payout item).")})
    subject_id = fields.String()
    status = fields.String(metadata={"description": "open → retrying → open | resolved; open → settled (by a person)"})
    detail = fields.String()
    amount_cents = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    stripe_object_id = fields.String(allow_none=True)
    attempts = fields.Integer(metadata={"description": "Retries a person has asked for."})
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    closed_at = UTCDateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)


class CaseDetailOut(CaseOut):
    actions = fields.List(fields.Nested(CaseActionOut), metadata={"description": "Every action on the case, oldest first."})


class CasePage(Schema):
    data = fields.List(fields.Nested(CaseOut))
    next_cursor = fields.String(allow_none=True)


class RetryIn(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class SettleIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000), metadata={
        "description": "Why and how it was settled (recorded with who did it)."})
    outcome = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["paid", "failed"]), metadata={
        "description": "transfer_mismatch only, and required there: paid (the transfer Stripe holds pays the item) "
                       "or failed (it does not; the item's money returns to the worker's available balance)."})
