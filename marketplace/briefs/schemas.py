"""Request and response shapes for briefs, task groups and budget plans."""

from __future__ import annotations

import re
from collections.abc import Iterable

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from marketplace.briefs.models import KINDS, MAX_GROUP_QUANTITY, OBJECTIVES
from marketplace.briefs.rights import CHANNELS, MAX_TERM_DAYS, TERRITORIES
from marketplace.http.fields import Cents, Currency, StrictBoolean, StrictInteger, UTCDateTime
from marketplace.http.pagination import ListArgs
from marketplace.workforce.schemas import EligibilityIn, EligibilityOut

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
HTTP_URL = fields.Url(schemes={"http", "https"}, require_tld=False)


def _url(**kwargs):
    return fields.Url(schemes={"http", "https"}, validate=validate.Length(max=2048), **kwargs)


# What /docs shows for POST /v1/briefs and POST /v1/briefs/plan; tests/test_openapi_docs.py sends both.
BRIEF_EXAMPLE = {
    "title": "Spring blend launch",
    "objective": "conversions",
    "audience": "UK coffee drinkers, 18-34, on TikTok and Instagram",
    "key_message": "Our spring blend is smooth enough to drink black.",
    "hook": "First sip, no sugar",
    "offer": "20% off the first bag with the tracked link",
    "prohibitions": ["No health claims", "No competitor names"],
    "landing_url": "https://northwind.example/spring",
    "budget_cents": 50000,
    "currency": "gbp",
    "target_cpa_cents": 1500,
    "starts_at": "2027-03-01T09:00:00Z",
    "ends_at": "2027-03-31T21:00:00Z",
    "disclosure_required": True,
    "disclosure_on_media": True,
    "usage_rights": {"channels": ["organic", "paid_social"], "term_days": 365, "territories": ["GB", "FR"],
                     "exclusive": False},
    "promo_codes": True,
    "task_groups": [
        {"kind": "caption", "name": "Caption variants", "quantity": 20, "unit_price_cents": 500,
         "instructions": "Write one caption of at most 150 characters for the spring blend.",
         "proof": {"text": {"min_length": 20, "max_length": 150}}},
        {"kind": "clip", "name": "15-second clips", "quantity": 10, "unit_price_cents": 2500,
         "instructions": "Post a 15-second clip with the tracked link in the caption; send the post's URL.",
         "proof": {"screenshot": "required", "link": {"allowed_domains": ["tiktok.com", "instagram.com"]}}},
    ],
}
PLAN_EXAMPLE = {
    "budget_cents": 50000, "currency": "gbp",
    "mix": [{"kind": "caption", "name": "Caption variants", "unit_price_cents": 500, "share": 1},
            {"kind": "clip", "name": "15-second clips", "unit_price_cents": 2500, "share": 3}],
}


class TextProof(Schema):
    required = StrictBoolean(load_default=True)
    min_length = StrictInteger(validate=validate.Range(min=0, max=10_000), load_default=None)
    max_length = StrictInteger(validate=validate.Range(min=1, max=10_000), load_default=None)

    @validates_schema
    def _bounds_ordered(self, data, **kwargs):
        lo, hi = data.get("min_length"), data.get("max_length")
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError("Must not exceed max_length.", "min_length")


class LinkProof(Schema):
    required = StrictBoolean(load_default=True)
    allowed_domains = fields.List(fields.String(), validate=validate.Length(min=1, max=50), required=True)
    required_utm = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^utm_[a-z_]{1,30}$", error="UTM parameter names start with utm_.")),
        values=fields.String(validate=validate.Length(max=200)),
        load_default=dict,
        metadata={"description": "UTM parameters the link must carry (value '*' = any value) "
                                 "when it does not carry the task's tracked-link code."},
    )

    @validates("allowed_domains")
    def _domains(self, value, **kwargs):
        bad = [d for d in value if not DOMAIN_RE.match(d.strip().lower().rstrip("."))]
        if bad:
            raise ValidationError(f"Not a domain name: {', '.join(bad[:5])}.")


class ProofRules(Schema):
    screenshot = fields.String(validate=validate.OneOf(["required", "optional", "none"]), load_default="none")
    link = fields.Nested(LinkProof, load_default=None, allow_none=True)
    text = fields.Nested(TextProof, load_default=None, allow_none=True)


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


class UsageRights(Schema):
    """What the brand may do with approved content; workers accept it by claiming."""

    channels = fields.List(
        fields.String(validate=validate.OneOf(CHANNELS, error="Must be one of: {choices}.")),
        required=True, validate=validate.Length(min=1, max=len(CHANNELS)),
        metadata={"description": "Where the brand may use the content: organic (its own unpaid posts), "
                                 "paid_social, paid_search, display, website, email, ooh (out of home), "
                                 "broadcast, print."})
    term_days = StrictInteger(required=True, validate=validate.Range(
        min=1, max=MAX_TERM_DAYS, error=f"Must be a whole number of days from 1 to {MAX_TERM_DAYS}."),
        metadata={"description": "How long the rights last, from each asset's approval (rights_expire_at)."})
    territories = fields.List(
        fields.String(validate=validate.Length(equal=2)), required=True,
        validate=validate.Length(min=1, max=len(TERRITORIES)),
        metadata={"description": "ISO 3166-1 alpha-2 country codes where the content may be used."})
    exclusive = StrictBoolean(load_default=False, metadata={
        "description": "True: the worker may not license the same content to anyone else for the term."})

    @validates("territories")
    def _territories(self, value, **kwargs):
        unknown = [code for code in value if code.upper() not in TERRITORIES]
        if unknown:
            raise ValidationError(f"Not ISO 3166-1 alpha-2 country codes: {', '.join(unknown[:5])}.")

    @post_load
    def _normalised(self, data, **kwargs):
        return {**data, "channels": _unique(data["channels"]),
                "territories": _unique(code.upper() for code in data["territories"])}


# The FTC's Trade Regulation Rule on the Use of Consumer Reviews and Testimonials forbids paying for
# reviews conditioned on what they express; a bonus per conversion rewards a review for persuading.
REVIEW_BONUS_REFUSED = (
    "review groups may not carry a performance bonus: paying for a review by its effect is an incentive tied "
    "to its sentiment, which the FTC's rule on consumer reviews and testimonials forbids (16 CFR Part 465, "
    "465.4).")
MAX_BONUS_PER_TASK_CENTS = 1_000_000  # a performance bonus's cap per task, as a one-off bonus's most


class PerformanceBonus(Schema):
    """Each conversion on an approved task's tracked link earns its worker per_conversion_cents, until
    the task has earned max_per_task_cents. The budget rule reserves quantity × max_per_task_cents."""

    per_conversion_cents = Cents(required=True, minimum=1)
    max_per_task_cents = StrictInteger(required=True, validate=validate.Range(
        min=1, max=MAX_BONUS_PER_TASK_CENTS, error=f"Must be between 1 and {MAX_BONUS_PER_TASK_CENTS} cents."))

    @validates_schema
    def _cap_covers_one(self, data, **kwargs):
        per, cap = data.get("per_conversion_cents"), data.get("max_per_task_cents")
        if per is not None and cap is not None and cap < per:
            raise ValidationError("Must be at least per_conversion_cents.", "max_per_task_cents")


class TaskGroupIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS, error="Must be one of: {choices}."))
    name = fields.String(validate=validate.Length(max=100), load_default=None,
                         metadata={"description": "A label for the group, e.g. the caption variant 'A'."})
    quantity = StrictInteger(required=True, validate=validate.Range(
        min=1, max=MAX_GROUP_QUANTITY, error=f"Must be a positive integer up to {MAX_GROUP_QUANTITY}."))
    unit_price_cents = Cents(required=True, minimum=1)
    instructions = fields.String(validate=validate.Length(max=5000), load_default=None)
    max_per_worker = StrictInteger(validate=validate.Range(min=1, max=100_000), load_default=None)
    proof = fields.Nested(ProofRules, load_default=dict)
    eligibility = fields.Nested(EligibilityIn, load_default=None, allow_none=True, metadata={
        "description": "Who may take the group's tasks; open to every worker in good standing when left out."})
    bonus = fields.Nested(PerformanceBonus, load_default=None, allow_none=True, metadata={
        "description": "A performance bonus per conversion on the group's approved tasks' tracked links, capped "
                       "per task; not for review groups (16 CFR Part 465)."})

    @validates_schema
    def _no_review_bonus(self, data, **kwargs):
        if data.get("kind") == "review" and data.get("bonus"):
            raise ValidationError(REVIEW_BONUS_REFUSED, "bonus")

    @post_load
    def _bonus_columns(self, data, **kwargs):
        bonus = data.pop("bonus", None) or {}
        return {**data, "bonus_per_conversion_cents": bonus.get("per_conversion_cents"),
                "bonus_max_per_task_cents": bonus.get("max_per_task_cents")}


class BriefIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    objective = fields.String(required=True, validate=validate.OneOf(OBJECTIVES, error="Must be one of: {choices}."))
    audience = fields.String(validate=validate.Length(max=2000), load_default=None)
    key_message = fields.String(validate=validate.Length(max=2000), load_default=None)
    hook = fields.String(validate=validate.Length(max=2000), load_default=None)
    offer = fields.String(validate=validate.Length(max=2000), load_default=None)
    prohibitions = fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                               validate=validate.Length(max=100), load_default=list)
    reference_url = _url(load_default=None)
    landing_url = _url(required=True)
    budget_cents = Cents(required=True, minimum=1)
    currency = Currency()
    target_cpa_cents = Cents(minimum=1, load_default=None)
    starts_at = UTCDateTime(required=True)
    ends_at = UTCDateTime(required=True)
    auto_approve_after_hours = StrictInteger(validate=validate.Range(min=1, max=24 * 90), load_default=72)
    disclosure_required = StrictBoolean(load_default=True)
    disclosure_on_media = StrictBoolean(load_default=False, metadata={"description": (
        "True: the screenshot must show a disclosure on the image itself (#ad, #sponsored, Paid partnership, "
        "Publicité, Collaboration commerciale, Werbung, Anzeige, Publicidad), read by OCR; the text read is "
        "also compared with the worker's handle and the caption.")})
    usage_rights = fields.Nested(UsageRights, load_default=None, allow_none=True, metadata={
        "description": "Rights the brand gets over approved content; none stated when left out."})
    promo_codes = StrictBoolean(load_default=False, metadata={"description": (
        "True: every claim of the brief's tasks also gets a promo code (unique platform-wide, readable: a prefix "
        "from your brand's name and 8 characters without 0/O, 1/I/L or U), shown to its worker; report a "
        "sale made with one to POST /v1/conversions as `promo_code` and it is credited to that worker, "
        "click or no click.")})
    task_groups = fields.List(fields.Nested(TaskGroupIn), required=True, validate=validate.Length(min=1, max=50))

    @validates_schema
    def _window_ordered(self, data, **kwargs):
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            raise ValidationError("Must be after starts_at.", "ends_at")


class GroupCounts(Schema):
    """Tasks by state: open + claimed + submitted + approved + paid + cancelled = the group's quantity
    once the brief is published (each task is in exactly one). `rejected` counts submissions, apart."""

    open = fields.Integer(metadata={"description": "Tasks nobody holds: never claimed, released, expired, "
                                                   "or reopened after a rejection."})
    claimed = fields.Integer(metadata={"description": "Tasks a worker holds, proof not yet sent."})
    submitted = fields.Integer(metadata={"description": "Tasks whose proof is in: validating, waiting for "
                                                        "review, or sent back for a revision."})
    approved = fields.Integer(metadata={"description": "Tasks whose work was approved, not yet paid."})
    paid = fields.Integer(metadata={"description": "Tasks whose approved work was paid out."})
    cancelled = fields.Integer(metadata={"description": "Tasks closed with the brief (cancelled or completed) "
                                                        "before any work on them was approved."})
    rejected = fields.Integer(metadata={"description": "Submissions rejected (by a person or automatically); "
                                                       "not a task state: each one's task went back to open, "
                                                       "so it is not part of the sum above."})


class PerformanceBonusOut(Schema):
    per_conversion_cents = fields.Integer()
    max_per_task_cents = fields.Integer()


class TaskGroupOut(Schema):
    id = fields.String()
    kind = fields.String()
    name = fields.String(allow_none=True)
    quantity = fields.Integer()
    unit_price_cents = fields.Integer()
    fee_per_task_cents = fields.Integer()
    instructions = fields.String(allow_none=True)
    max_per_worker = fields.Integer(allow_none=True)
    proof = fields.Dict()
    paused_reason = fields.String(allow_none=True)
    bonus = fields.Nested(PerformanceBonusOut, allow_none=True)
    eligibility = fields.Nested(EligibilityOut, allow_none=True)
    counts = fields.Nested(GroupCounts)


class BriefMoney(Schema):
    currency = fields.String()
    budget_cents = fields.Integer()
    cost_cents = fields.Integer(metadata={"description": "All tasks approved, before fees."})
    fee_cents = fields.Integer(metadata={"description": "Platform fees on all tasks."})
    bonus_reserve_cents = fields.Integer(metadata={
        "description": "Performance bonuses at their caps: every task × its group's max_per_task_cents."})
    committed_cents = fields.Integer(metadata={
        "description": "cost + fees + bonus reserve: what funding charges, at most the budget."})
    funded_cents = fields.Integer()
    spent_cents = fields.Integer(metadata={"description": "Approved work plus its fees."})
    refunded_cents = fields.Integer()
    remaining_cents = fields.Integer(metadata={"description": "Held in escrow now."})


class FundingOut(Schema):
    status = fields.String(metadata={"description": (
        "unpaid: not asked to pay yet; requires_payment: a PaymentIntent waits for the card; failed: the last "
        "attempt was declined (the same intent can be paid again: POST /fund returns it); succeeded.")})
    failure_code = fields.String(allow_none=True, metadata={"description": "Stripe's decline or error code."})
    failure_reason = fields.String(allow_none=True, metadata={"description": "Stripe's message, for a person."})
    failed_at = UTCDateTime(allow_none=True)


class BriefOut(Schema):
    id = fields.String()
    brand_id = fields.String()
    title = fields.String()
    objective = fields.String()
    audience = fields.String(allow_none=True)
    key_message = fields.String(allow_none=True)
    hook = fields.String(allow_none=True)
    offer = fields.String(allow_none=True)
    prohibitions = fields.List(fields.String())
    reference_url = fields.String(allow_none=True)
    landing_url = fields.String()
    budget_cents = fields.Integer()
    currency = fields.String()
    target_cpa_cents = fields.Integer(allow_none=True)
    starts_at = UTCDateTime()
    ends_at = UTCDateTime()
    auto_approve_after_hours = fields.Integer()
    disclosure_required = fields.Boolean()
    disclosure_on_media = fields.Boolean()
    usage_rights = fields.Nested(UsageRights, allow_none=True)
    promo_codes = fields.Boolean(metadata={"description": "Claims of this brief carry promo codes."})
    fee_bps = fields.Integer()
    status = fields.String(metadata={"description": (
        "draft → funded → live ⇄ paused → completed | cancelled. A live or paused brief completes by itself "
        "once ends_at has passed (a scheduled job, within minutes): its open tasks close and what is neither "
        "spent nor owed to work already claimed or submitted is refunded; that work can still be submitted, "
        "reviewed and paid, and what of it ends unpaid is refunded too.")})
    status_reason = fields.String(allow_none=True)
    created_at = UTCDateTime()
    funded_at = UTCDateTime(allow_none=True)
    published_at = UTCDateTime(allow_none=True)
    closed_at = UTCDateTime(allow_none=True)
    task_groups = fields.List(fields.Nested(TaskGroupOut))
    money = fields.Nested(BriefMoney)
    funding = fields.Nested(FundingOut, metadata={
        "description": "The brief's payment: its state, and why the last attempt failed (a declined card)."})


class BriefPage(Schema):
    data = fields.List(fields.Nested(BriefOut))
    next_cursor = fields.String(allow_none=True)



class BriefListArgs(ListArgs):
    status = fields.String(validate=validate.OneOf(["draft", "funded", "live", "paused", "completed", "cancelled"]),
                           load_default=None)


class PlanMixIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS, error="Must be one of: {choices}."))
    name = fields.String(validate=validate.Length(max=100), load_default=None)
    unit_price_cents = Cents(required=True, minimum=1)
    share = StrictInteger(required=True, validate=validate.Range(min=1, max=1_000_000))


class PlanIn(Schema):
    budget_cents = Cents(required=True, minimum=1)
    currency = Currency()
    fee_bps = StrictInteger(validate=validate.Range(min=0, max=5000), load_default=None,
                            metadata={"description": "Defaults to the platform's fee."})
    mix = fields.List(fields.Nested(PlanMixIn), required=True, validate=validate.Length(min=1, max=50))


class _PlanItem(Schema):
    kind = fields.String()
    name = fields.String(allow_none=True)
    unit_price_cents = fields.Integer()
    fee_per_task_cents = fields.Integer()


class PlannedGroup(Schema):
    kind = fields.String()
    name = fields.String(allow_none=True)
    unit_price_cents = fields.Integer()
    quantity = fields.Integer()


class PlannedCost(_PlanItem):
    quantity = fields.Integer()
    cost_cents = fields.Integer()
    fee_cents = fields.Integer()


class LeftOut(_PlanItem):
    reason = fields.String()


class PlanOut(Schema):
    budget_cents = fields.Integer()
    currency = fields.String()
    fee_bps = fields.Integer()
    task_groups = fields.List(fields.Nested(PlannedGroup), metadata={
        "description": "Groups of at least one task, each exactly as POST /v1/briefs takes it, so they paste "
                       "in as they are (add instructions and proof rules as you like; at most 100,000 tasks)."})
    costs = fields.List(fields.Nested(PlannedCost), metadata={
        "description": "What each of task_groups costs, in the same order: price and fee per task, totals."})
    left_out = fields.List(fields.Nested(LeftOut), metadata={
        "description": "Mix items whose share of the budget does not buy one task at their price plus fee."})
    cost_cents = fields.Integer()
    fee_cents = fields.Integer()
    total_cents = fields.Integer()
    unspent_cents = fields.Integer()


class FundOut(Schema):
    payment_id = fields.String()
    payment_intent_id = fields.String()
    client_secret = fields.String()
    amount_cents = fields.Integer()
    currency = fields.String()
