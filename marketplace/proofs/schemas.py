"""Request and response shapes for proof submissions and their check results."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.http.fields import UTCDateTime
from marketplace.http.pagination import ListArgs
from marketplace.proofs.models import WAITS_FOR

MAX_TEXT_CHARS = 20_000  # a hard cap on what we store; the brief's own bounds are a check


class SubmissionIn(Schema):
    """The proof fields of a JSON body or a multipart form (the file travels apart)."""

    link = fields.String(validate=validate.Length(min=1, max=2048), load_default=None, allow_none=True)
    text = fields.String(validate=validate.Length(max=MAX_TEXT_CHARS), load_default=None, allow_none=True)
    captured_at = UTCDateTime(load_default=None, allow_none=True,
                              metadata={"description": "When the proof was captured (RFC 3339 with offset)."})


class SubmissionCheckOut(Schema):
    name = fields.String()
    outcome = fields.String(metadata={"description": "pass | fail | warn"})
    detail = fields.String()
    checked_at = UTCDateTime()


class SubmissionRevisionOut(Schema):
    reason_code = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    deadline = UTCDateTime(allow_none=True)


class SubmissionReversalOut(Schema):
    reversed_at = UTCDateTime()
    detail = fields.String()


class SubmissionOut(Schema):
    id = fields.String()
    task_id = fields.String()
    claim_id = fields.String()
    group_id = fields.String()
    brief_id = fields.String()
    worker_id = fields.String()
    status = fields.String(metadata={"description": "validating | needs_review | auto_rejected | approved | "
                                                    "rejected | revision_requested | paid"})
    link = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    captured_at = UTCDateTime(allow_none=True)
    screenshot_url = fields.String(allow_none=True)
    submitted_at = UTCDateTime()
    auto_approve_at = UTCDateTime(allow_none=True, metadata={
        "description": "When it is approved automatically unless a reviewer decides first; null once that "
                       "cannot happen (decided, or a check warned and it waits for a person)."})
    waits_for = fields.String(allow_none=True, validate=validate.OneOf(WAITS_FOR),
                              metadata={"description": "validation: its checks are running; auto_approval: "
                                                       "every check passed, approved at auto_approve_at unless "
                                                       "a reviewer decides first; review: a check warned, a "
                                                       "person decides; null once decided."})
    validated_at = UTCDateTime(allow_none=True)
    checks = fields.List(fields.Nested(SubmissionCheckOut))
    reasons = fields.List(fields.Dict(), metadata={
        "description": "Why it was auto-rejected: {check, detail, reason_code} per failed check."})
    decided_at = UTCDateTime(allow_none=True)
    reason_code = fields.String(allow_none=True, metadata={
        "description": "Why it was rejected or sent back: duplicate | off_brief | missing_disclosure | broken_link | "
                       "low_quality | other. A reviewer's code, or for an automatic rejection the gravest failed "
                       "check's (duplicate, near_copy: duplicate; disclosure, or no disclosure read on the "
                       "screenshot: missing_disclosure; prohibited: off_brief; link: broken_link; text, an unusable "
                       "screenshot: low_quality; timestamp: other)."})
    reason = fields.String(allow_none=True, metadata={
        "description": "The evidence: the reviewer's reason, or for an automatic rejection what each failed "
                       "check found."})
    revision = fields.Nested(SubmissionRevisionOut, allow_none=True)
    appealable_until = UTCDateTime(allow_none=True, metadata={
        "description": "A rejection or auto-rejection can be appealed (POST /v1/submissions/{id}/appeal) until "
                       "then: APPEAL_WINDOW_DAYS (default 7) after it was decided; null otherwise."})
    paid_at = UTCDateTime(allow_none=True, metadata={
        "description": "When the transfer carrying its money settled at Stripe (status paid); null otherwise."})
    reversal = fields.Nested(SubmissionReversalOut, allow_none=True, metadata={
        "description": "The latest reversal of a transfer that had paid it (it is approved again, to be "
                       "paid by a later batch); null when none."})
    created_at = UTCDateTime()


class SubmissionListArgs(ListArgs):
    pass


class ScreenshotArgs(Schema):
    size = fields.String(load_default="full", validate=validate.OneOf(["full", "thumbnail"]), metadata={
        "description": "thumbnail: a PNG at most 320 pixels a side, freshly encoded (422 no-preview when "
                       "the upload is no image that can be decoded); full: the stored file as uploaded."})


class SharedScreenshotArgs(Schema):
    expires = fields.Integer(required=True, validate=validate.Range(min=0, max=2**53),
                             metadata={"description": "When the link stops working (Unix time)."})
    signature = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}\Z",
                                                                      error="Not a link signature."))


class SubmissionPage(Schema):
    data = fields.List(fields.Nested(SubmissionOut))
    next_cursor = fields.String(allow_none=True)
