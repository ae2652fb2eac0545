"""Request and response shapes of profiles, reputation, eligibility, blocks and suspensions."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from marketplace.auth.schemas import AdminOut, BrandOut, WorkerOut
from marketplace.http.fields import StrictInteger, UTCDateTime
from marketplace.http.pagination import ListArgs
from marketplace.workforce.fields import CountryCode, LanguageCode
from marketplace.workforce.models import PLATFORMS

HANDLE = validate.Regexp(r"^@?[A-Za-z0-9._-]{1,60}$",
                         error="Must be a handle such as @name (letters, digits, '.', '_' or '-').")

PROFILE_EXAMPLE = {"display_name": "Ada", "country": "GB", "languages": ["en", "fr"],
                   "social_accounts": [{"platform": "tiktok", "handle": "@ada.makes"},
                                       {"platform": "instagram", "handle": "@ada_makes"}]}


class SocialAccountIn(Schema):
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS, error="Must be one of: {choices}."))
    handle = fields.String(required=True, validate=HANDLE)


class ProfileIn(Schema):
    display_name = fields.String(validate=validate.Length(min=1, max=100))
    country = CountryCode(metadata={"description": "ISO 3166-1 alpha-2, e.g. GB."})
    languages = fields.List(LanguageCode(), validate=validate.Length(max=20),
                            metadata={"description": "ISO 639-1 codes; replaces the list held."})
    social_accounts = fields.List(fields.Nested(SocialAccountIn), validate=validate.Length(max=len(PLATFORMS)),
                                  metadata={"description": "One per platform; replaces the list held."})

    @validates_schema
    def _one_per_platform(self, data, **kwargs):
        platforms = [a["platform"] for a in data.get("social_accounts") or []]
        if len(platforms) != len(set(platforms)):
            raise ValidationError("One account per platform.", "social_accounts")
        if not data:
            raise ValidationError("Send at least one of display_name, country, languages, social_accounts.")


class SocialAccountOut(Schema):
    platform = fields.String()
    handle = fields.String()


class ReputationOut(Schema):
    approved = fields.Integer(metadata={"description": "Submissions approved (paid ones included)."})
    rejected = fields.Integer(metadata={"description": "Submissions rejected by a reviewer."})
    auto_rejected = fields.Integer(metadata={"description": "Submissions a check failed."})
    approval_rate = fields.Float(allow_none=True, metadata={
        "description": "Approved share of the last 100 decided submissions; null below 5."})
    on_time_rate = fields.Float(allow_none=True, metadata={
        "description": "Of the claims that ended with proof or ran out, the share with proof in time; "
                       "null before any."})
    appeals_won = fields.Integer()
    since = UTCDateTime(metadata={"description": "When the worker signed up."})


class SuspensionIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500),
                           metadata={"description": "Why: kept in the suspension's history and the audit log."})


class SuspensionOut(Schema):
    reason = fields.String()
    suspended_at = UTCDateTime()


class WorkerProfileOut(WorkerOut):
    languages = fields.List(fields.String())
    social_accounts = fields.List(fields.Nested(SocialAccountOut))
    status = fields.String(metadata={"description": "active, or suspended (see suspension)."})
    suspension = fields.Nested(SuspensionOut, allow_none=True)
    reputation = fields.Nested(ReputationOut)


class WorkerMeOut(Schema):
    """GET /v1/me: the caller's role and account; a worker's with profile, standing and reputation."""

    role = fields.String(validate=validate.OneOf(["brand", "worker", "admin"]))
    brand = fields.Nested(BrandOut)
    worker = fields.Nested(WorkerProfileOut)
    admin = fields.Nested(AdminOut)


WORKER_ID = validate.Regexp(r"^wrk_[A-Za-z0-9_-]{1,60}$", error="Must be a worker id (wrk_…).")


class EligibilityIn(Schema):
    """Who may take a group's tasks. Every rule left out lets everyone through; `workers` makes the
    group invite-only. Worker ids are checked against the workers table by the service."""

    countries = fields.List(CountryCode(), validate=validate.Length(min=1, max=250), load_default=None,
                            metadata={"description": "ISO 3166-1 alpha-2 codes; the worker's profile country "
                                                     "must be one of them."})
    languages = fields.List(LanguageCode(), validate=validate.Length(min=1, max=200), load_default=None,
                            metadata={"description": "ISO 639-1 codes; the worker must write one of them."})
    min_approval_rate = fields.Float(validate=validate.Range(min=0, max=1), load_default=None, metadata={
        "description": "0–1: the worker's approval rate (last 100 decided submissions; none below 5) must reach "
                       "it. A worker with no rate yet is kept out."})
    min_approved = StrictInteger(validate=validate.Range(min=0, max=1_000_000), load_default=None,
                                  metadata={"description": "Approved submissions the worker must have."})
    workers = fields.List(fields.String(validate=WORKER_ID), validate=validate.Length(min=1, max=10_000),
                          load_default=None, metadata={"description": "Invite-only: only these workers."})
    exclude_workers = fields.List(fields.String(validate=WORKER_ID), validate=validate.Length(max=10_000),
                                  load_default=None, metadata={"description": "These workers are kept out."})


class EligibilityOut(Schema):
    countries = fields.List(fields.String(), allow_none=True)
    languages = fields.List(fields.String(), allow_none=True)
    min_approval_rate = fields.Float(allow_none=True)
    min_approved = fields.Integer(allow_none=True)
    workers = fields.List(fields.String(), allow_none=True)
    exclude_workers = fields.List(fields.String(), allow_none=True)


class BlockIn(Schema):
    worker_id = fields.String(required=True, validate=validate.Length(min=1, max=60))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class BlockOut(Schema):
    worker_id = fields.String()
    reason = fields.String()
    created_at = UTCDateTime()


class BlockPage(Schema):
    data = fields.List(fields.Nested(BlockOut))
    next_cursor = fields.String(allow_none=True)


class WorkerListArgs(ListArgs):
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=200), metadata={
        "description": "Part of the email or display name (any case)."})
    status = fields.String(load_default=None, validate=validate.OneOf(["active", "suspended"]))


class WorkerListItemOut(WorkerProfileOut):
    signal_count = fields.Integer(metadata={
        "description": "Fraud signals in short: other workers seen from one of this worker's devices plus "
                       "their submissions the duplicate check caught (GET /v1/workers/{id} has the detail)."})


class WorkerPage(Schema):
    data = fields.List(fields.Nested(WorkerListItemOut))
    next_cursor = fields.String(allow_none=True)


class BalanceOut(Schema):
    currency = fields.String()
    available_cents = fields.Integer(metadata={"description": "What the next payout batch may pay."})
    held_cents = fields.Integer(metadata={"description": "Set aside by a suspension; returned on reinstatement."})
    in_transit_cents = fields.Integer(metadata={"description": "In a payout batch, not yet paid."})
    paid_cents = fields.Integer(metadata={"description": "Paid out, net of reversals."})


class SuspensionRecordOut(Schema):
    id = fields.String()
    reason = fields.String()
    suspended_by = fields.String()
    suspended_at = UTCDateTime()
    reinstated_at = UTCDateTime(allow_none=True)
    reinstated_by = fields.String(allow_none=True)
    reinstate_reason = fields.String(allow_none=True)


class SignalsOut(Schema):
    shared_device_workers = fields.List(fields.String(), metadata={
        "description": "Other workers seen from a device (keyed digest of address and user agent) this one used."})
    duplicate_proof_caught = fields.Integer(metadata={
        "description": "This worker's submissions the duplicate-screenshot check failed."})
    submissions_last_hour = fields.Integer()
    median_submissions_last_hour = fields.Float(metadata={
        "description": "The median, over every worker who submitted in the last hour, of their submissions in it."})


class WorkerDetailOut(WorkerProfileOut):
    balances = fields.List(fields.Nested(BalanceOut))
    suspensions = fields.List(fields.Nested(SuspensionRecordOut), metadata={"description": "Newest first."})
    signals = fields.Nested(SignalsOut)
