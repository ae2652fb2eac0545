"""Request and response shapes of the review queue and of bulk decisions."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from marketplace.http.fields import StrictInteger, UTCDateTime
from marketplace.http.pagination import ListArgs
from marketplace.proofs.models import REASON_CODES, SUBMISSION_STATUSES
from marketplace.reviews.service import CHECK_SYNTAX, DECISIONS, MAX_PER_CALL

_ID = fields.String(validate=validate.Length(min=1, max=80))


class ReviewListArgs(ListArgs):
    brief = fields.String(load_default=None, validate=validate.Length(max=80),
                          metadata={"description": "Only this brief's submissions (404 if it is not yours)."})
    status = fields.String(load_default=None, validate=validate.OneOf(SUBMISSION_STATUSES))
    check = fields.String(load_default=None, validate=validate.Length(max=400), metadata={"description": CHECK_SYNTAX})
    all_checks = fields.String(load_default=None, validate=validate.OneOf(["pass"]),
                               metadata={"description": "`pass`: at least one check, and every check passed."})


class ReviewCheck(Schema):
    name = fields.String()
    outcome = fields.String(metadata={"description": "pass | fail | warn"})
    detail = fields.String()


class GroupRef(Schema):
    id = fields.String()
    kind = fields.String()
    name = fields.String(allow_none=True)


class WorkerRef(Schema):
    id = fields.String()
    display_name = fields.String()


class ReviewItem(Schema):
    id = fields.String()
    status = fields.String()
    brief_id = fields.String()
    task_id = fields.String()
    claim_id = fields.String()
    group = fields.Nested(GroupRef)
    worker = fields.Nested(WorkerRef)
    unit_price_cents = fields.Integer()
    currency = fields.String()
    text = fields.String(allow_none=True)
    link = fields.String(allow_none=True)
    captured_at = UTCDateTime(allow_none=True)
    screenshot_url = fields.String(allow_none=True, metadata={
        "description": "Where the screenshot is served (to the submitter, the brief's brand and admins); "
                       "null when there is none."})
    checks = fields.List(fields.Nested(ReviewCheck))
    rejection_reasons = fields.Raw(allow_none=True)
    submitted_at = UTCDateTime()
    validated_at = UTCDateTime(allow_none=True)
    auto_approve_at = UTCDateTime(allow_none=True, metadata={
        "description": "When it is approved automatically if it is still waiting and every check passed; null "
                       "when that cannot happen (decided, or a check warned)."})
    waits_for = fields.String(allow_none=True, metadata={
        "description": "validation | auto_approval | review (a check warned: a person decides) | null (decided)."})
    decided_at = UTCDateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    reason_code = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    revision_deadline = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


class ReviewPage(Schema):
    data = fields.List(fields.Nested(ReviewItem))
    next_cursor = fields.String(allow_none=True)


class DecisionFilterIn(Schema):
    brief = fields.String(load_default=None, validate=validate.Length(max=80))
    status = fields.String(load_default="needs_review", validate=validate.OneOf(
        ["needs_review"], error="Only needs_review submissions can be decided; a filter selects only those."))
    all_checks = fields.String(load_default=None, validate=validate.OneOf(["pass"]))
    check = fields.String(load_default=None, validate=validate.Length(max=400), metadata={"description": CHECK_SYNTAX})


DECISION_EXAMPLE = {
    "submission_ids": ["sub_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"],
    "decision": "reject", "reason_code": "missing_disclosure",
    "reason": "The clip has no #ad; the brief asks for it on screen and in the caption.",
}


class DecisionIn(Schema):
    submission_ids = fields.List(_ID, load_default=None, validate=validate.Length(
        min=1, max=MAX_PER_CALL, error=f"Between 1 and {MAX_PER_CALL} ids a call."))
    filter = fields.Nested(DecisionFilterIn, load_default=None, metadata={
        "description": "Decide every needs_review submission that matches (oldest first), up to "
                       f"{MAX_PER_CALL} a call; `remaining` in the response says how many more matched."})
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS, error="Must be one of: {choices}."))
    reason_code = fields.String(load_default=None, validate=validate.OneOf(REASON_CODES, error="Must be one of: {choices}."),
                                metadata={"description": "Required to reject or to ask for a revision."})
    reason = fields.String(load_default=None, validate=validate.Length(max=2000),
                           metadata={"description": "Free text shown to the worker."})
    revision_deadline_hours = StrictInteger(load_default=48, validate=validate.Range(min=1, max=24 * 30),
                                            metadata={"description": "For request_revision: how long the worker has."})

    @validates_schema
    def _one_selection_and_a_reason(self, data, **kwargs):
        if (data.get("submission_ids") is None) == (data.get("filter") is None):
            raise ValidationError("Give either submission_ids or filter (exactly one).", "submission_ids")
        if data.get("decision") in ("reject", "request_revision") and not data.get("reason_code"):
            raise ValidationError("A reason code is required to reject or ask for a revision.", "reason_code")


class Skipped(Schema):
    id = fields.String()
    reason = fields.String()


class DecisionOut(Schema):
    approved = fields.Integer()
    rejected = fields.Integer()
    revision_requested = fields.Integer()
    skipped = fields.List(fields.Nested(Skipped), metadata={
        "description": "Submissions left as they were, with why: not found (or not yours), still validating, "
                       "already approved, insufficient escrow, …"})
    remaining = fields.Integer(metadata={
        "description": "With a filter: how many more matching submissions this call did not reach (cap 10,000)."})
