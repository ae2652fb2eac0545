"""Response shapes of the audit log."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.http.fields import UTCDateTime
from marketplace.http.pagination import ListArgs


class AuditListArgs(ListArgs):
    actor = fields.String(load_default=None, validate=validate.Length(max=60), metadata={
        "description": "Who, exactly: admin:adm_…, brand:brand_…, worker:wrk_… or system:<job>."})
    action = fields.String(load_default=None, validate=validate.Length(max=60), metadata={
        "description": "What, exactly (submission.rejected), or every action of a kind (submission.*)."})
    subject = fields.String(load_default=None, validate=validate.Length(max=40), metadata={
        "description": "The record acted on (sub_…, pb_…, rfd_…, case_…, apl_…, wrk_…)."})


class AuditEventOut(Schema):
    id = fields.String()
    actor = fields.String(metadata={"description": "admin:adm_…, brand:brand_…, worker:wrk_… or system:<job>.",
                                    "example": "admin:adm_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"})
    action = fields.String(metadata={"description": (
        "submission.approved | submission.rejected | submission.revision_requested | appeal.upheld | "
        "appeal.overturned | payout_batch.created | refund.reserved | brief.cancelled | case.retry | "
        "case.settle | case.resolved, and the actions of bonuses and suspensions."),
        "example": "submission.rejected"})
    subject = fields.String(metadata={"example": "sub_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"})
    reason = fields.String(allow_none=True, metadata={"description": "Why, as the person wrote it."})
    detail = fields.Dict(metadata={"description": "What else the action moved (amounts, reason codes, ids).",
                                   "example": {"reason_code": "off_brief", "brief_id": "brief_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"}})
    created_at = UTCDateTime()


class AuditPage(Schema):
    data = fields.List(fields.Nested(AuditEventOut))
    next_cursor = fields.String(allow_none=True)
