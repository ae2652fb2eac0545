"""Shapes of task listings and claims."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.briefs.models import KINDS
from marketplace.briefs.schemas import UsageRights
from marketplace.http.fields import UTCDateTime
from marketplace.http.pagination import ListArgs  # noqa: F401 - routes refer to schemas.ListArgs


class TaskListArgs(ListArgs):
    kind = fields.String(validate=validate.OneOf(KINDS, error="Must be one of: {choices}."), load_default=None)
    brief = fields.String(validate=validate.Length(min=1, max=100), load_default=None,
                          metadata={"description": "A brief id: only that brief's groups."})


class BriefSummary(Schema):
    id = fields.String()
    title = fields.String()
    key_message = fields.String(allow_none=True)
    hook = fields.String(allow_none=True)
    offer = fields.String(allow_none=True)
    prohibitions = fields.List(fields.String())
    disclosure_required = fields.Boolean(metadata={"description": "Proof text must carry #ad or #sponsored."})
    disclosure_on_media = fields.Boolean(metadata={"description": (
        "The screenshot itself must show a disclosure (#ad, #sponsored, Paid partnership, Publicité, "
        "Collaboration commerciale, Werbung, Anzeige or Publicidad), read from the image.")})
    usage_rights = fields.Nested(UsageRights, allow_none=True, metadata={"description": (
        "What the brand may do with approved work (channels, term_days from approval, territories, "
        "exclusive); claiming a task accepts them. Null: none stated.")})
    landing_url = fields.String()
    ends_at = UTCDateTime()
    promo_codes = fields.Boolean(metadata={"description": (
        "True: each claim carries a promo_code of its own, to share alongside the tracked link; sales made "
        "with it are credited to you even without a click.")})


class OpenGroup(Schema):
    id = fields.String(metadata={"description": "The task group id; claim with POST /v1/task-groups/{id}/claim."})
    brief_id = fields.String()
    kind = fields.String()
    name = fields.String(allow_none=True)
    unit_price_cents = fields.Integer(metadata={"description": "What one approved task pays, in minor units."})
    currency = fields.String()
    remaining_count = fields.Integer(metadata={
        "description": "Open tasks left in the group right now, counted up to 1000 (see remaining_count_capped)."})
    remaining_count_capped = fields.Boolean(metadata={
        "description": "True when more than 1000 tasks are open: show it as '1000+'."})
    instructions = fields.String(allow_none=True)
    proof = fields.Dict(metadata={"description": "The proof rules: screenshot, link and text requirements. A link "
                                              "rule carries `where`: where the tracked link must appear (in the "
                                              "post itself; the post's own URL is what is submitted)."})
    max_per_worker = fields.Integer(allow_none=True)
    held_by_you = fields.Integer(metadata={"description": "Tasks of this group you hold (claimed or submitted)."})
    can_claim = fields.Boolean(metadata={"description": (
        "True: the listing holds only groups you may take now (a group where you hold max_per_worker "
        "tasks is left out). Kept for clients that show it.")})
    ends_at = UTCDateTime()
    brief = fields.Nested(BriefSummary)


class OpenGroupPage(Schema):
    data = fields.List(fields.Nested(OpenGroup))
    next_cursor = fields.String(allow_none=True)


class ClaimedTask(Schema):
    id = fields.String()
    group_id = fields.String()
    brief_id = fields.String()
    kind = fields.String()
    name = fields.String(allow_none=True)
    unit_price_cents = fields.Integer()
    currency = fields.String()
    instructions = fields.String(allow_none=True)
    proof = fields.Dict()


class RevisionAsked(Schema):
    submission_id = fields.String(metadata={"description": "The submission sent back."})
    reason_code = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "What the reviewer asked for."})
    requested_at = UTCDateTime(allow_none=True)
    deadline = UTCDateTime(metadata={"description": "Submit again on this task before then."})


class ClaimOut(Schema):
    claim_id = fields.String()
    task = fields.Nested(ClaimedTask)
    brief = fields.Nested(BriefSummary)
    claimed_at = UTCDateTime()
    claim_expires_at = UTCDateTime()
    expires_in_seconds = fields.Integer(metadata={"description": "Seconds left to submit proof, by the server's clock."})
    tracked_code = fields.String()
    tracked_link = fields.String(metadata={"description": "Share this link; clicks on it are credited to you."})
    promo_code = fields.String(allow_none=True, metadata={"description": (
        "When the brief has promo codes: this claim's code, unique across the platform (a prefix from the "
        "brand's name and 8 characters without 0/O, 1/I/L or U, e.g. NORTHW-K7M3QX9P; not case-sensitive, "
        "the hyphen optional). "
        "Share it with your post: a sale made with it is credited to you. Null otherwise.")})
    status = fields.String(metadata={"description": "active: waiting for proof; submitted: proof sent back "
                                     "for a revision (see revision)."})
    revision = fields.Nested(RevisionAsked, allow_none=True, metadata={
        "description": "Set when the reviewer asked for a revision: what was asked and by when; "
                       "claim_expires_at is then the revision's deadline."})


class ClaimPage(Schema):
    data = fields.List(fields.Nested(ClaimOut))
    next_cursor = fields.String(allow_none=True)
