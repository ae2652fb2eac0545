"""Request and response shapes of appeals."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.appeals.models import APPEAL_MOVES, APPEAL_STATUSES
from marketplace.appeals.service import EVIDENCE, MAX_MESSAGE, MAX_REASON
from marketplace.http.fields import UTCDateTime
from marketplace.http.pagination import ListArgs
from marketplace.proofs.schemas import SubmissionOut

APPEAL_EXAMPLE = {"message": "The post is live: the tracked link is in the first line of the caption."}
DECISION_EXAMPLE = {"decision": "overturn", "reason": "The link is in the caption; the page was slow to load."}


class AppealIn(Schema):
    message = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MESSAGE), metadata={
        "description": "Why the rejection is wrong; shown to the admin who decides."})


class AppealOut(Schema):
    id = fields.String()
    status = fields.String(validate=validate.OneOf(APPEAL_STATUSES), metadata={
        "description": "open → upheld (the rejection stands) | overturned (the submission is approved and paid)"})
    submission_id = fields.String()
    brief_id = fields.String()
    worker_id = fields.String()
    message = fields.String()
    created_at = UTCDateTime()
    age_seconds = fields.Integer(metadata={"description": "How long it has waited since it was made."})
    decided_at = UTCDateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decision_reason = fields.String(allow_none=True)


class AppealPage(Schema):
    data = fields.List(fields.Nested(AppealOut))
    next_cursor = fields.String(allow_none=True)


class AppealSubmission(SubmissionOut):
    """The appealed submission's rejection and evidence, as GET /v1/submissions/{id} shows them to an admin."""

    class Meta:
        fields = EVIDENCE


class AppealBrief(Schema):
    id = fields.String()
    title = fields.String()


class AppealWorker(Schema):
    id = fields.String()
    display_name = fields.String(metadata={"description": "The worker's display name."})


class AppealForReview(AppealOut):
    """An appeal in the admins' queue, with what deciding it needs, so that a page is one request."""

    submission = fields.Nested(AppealSubmission, metadata={
        "description": "The appealed submission: its status, reason_code, reason (the evidence) and, for an "
                       "automatic rejection, each failed check (checks, reasons), with its proof (text, link, "
                       "screenshot_url), as GET /v1/submissions/{id} shows them to an admin."})
    brief = fields.Nested(AppealBrief, metadata={"description": "The brief the submission was made for."})
    worker = fields.Nested(AppealWorker, metadata={"description": "Who appealed."})


class AppealQueuePage(Schema):
    data = fields.List(fields.Nested(AppealForReview))
    next_cursor = fields.String(allow_none=True)


class AppealListArgs(ListArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(APPEAL_STATUSES),
                           metadata={"description": "Only appeals in this status (open for the queue)."})


class AppealDecisionIn(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(tuple(APPEAL_MOVES)))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON), metadata={
        "description": "Why; shown to the worker and kept in the audit log."})
