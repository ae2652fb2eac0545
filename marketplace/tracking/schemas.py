"""Request and response shapes for conversions, reports and the content bank."""

from __future__ import annotations

from datetime import timedelta

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from marketplace.briefs.schemas import UsageRights
from marketplace.db.clock import utcnow
from marketplace.http.fields import Cents, UTCDateTime
from marketplace.http.pagination import ListArgs
from marketplace.workforce.schemas import ReputationOut

MAX_BULK = 1000
# Clocks disagree a little; a conversion further in the future than this is a bug on the sender's side.
FUTURE_SKEW = timedelta(minutes=10)

CENTS_RATIO = ("A decimal string in cents with two decimals (hundredths of a cent), rounded half up from "
               "the exact ratio; null when the denominator is zero.")
PLAIN_RATIO = "A decimal string with four decimals, rounded half up from the exact ratio; null when undefined."


class ConversionIn(Schema):
    code = fields.String(validate=validate.Length(min=1, max=32), load_default=None,
                         metadata={"description": "The tracked link's code (the part after /t/). Give code or click_id."})
    click_id = fields.String(validate=validate.Length(min=1, max=40), load_default=None,
                             metadata={"description": "The click's id (the landing page receives it as `mkt_click`)."})
    promo_code = fields.String(validate=validate.Length(min=1, max=64), load_default=None, metadata={
        "description": "A promo code a claim of one of your briefs carries (briefs with `promo_codes: true`), as "
                       "the buyer typed it: not case-sensitive, the hyphen optional (spaces ignored), a 0 in the letters "
                       "before the hyphen read as O. Attributes a sale "
                       "that came without a click to that claim's worker."})
    value_cents = Cents(required=True)  # integer cents, 0 allowed (a sign-up without revenue)
    currency = fields.String(validate=validate.Regexp(r"^[a-z]{3}$", error="Must be a lower-case ISO 4217 code."),
                             load_default=None, metadata={"description": "Defaults to the brief's; must equal it."})
    external_id = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                metadata={"description": "Your id for the conversion: reporting it again is a no-op."})
    occurred_at = UTCDateTime(required=True)

    @validates("occurred_at")
    def _not_in_the_future(self, value, **kwargs):
        if value > utcnow() + FUTURE_SKEW:
            raise ValidationError("Must not be in the future.")

    @validates_schema
    def _one_target(self, data, **kwargs):
        given = [name for name in ("code", "click_id", "promo_code") if data.get(name)]
        if len(given) != 1:
            raise ValidationError("Give exactly one of code, click_id and promo_code.", given[1] if given else "code")
        if data.get("promo_code") is not None and not data["promo_code"].strip():
            raise ValidationError("Must not be blank.", "promo_code")


class ConversionBatchIn(Schema):
    conversions = fields.List(fields.Nested(ConversionIn), required=True,
                              validate=validate.Length(min=1, max=MAX_BULK,
                                                       error=f"Send 1 to {MAX_BULK} conversions per call."))


class ConversionOut(Schema):
    id = fields.String()
    external_id = fields.String()
    brief_id = fields.String()
    group_id = fields.String()
    task_id = fields.String()
    worker_id = fields.String()
    click_id = fields.String(allow_none=True)
    attributed_by = fields.String(allow_none=True, metadata={
        "description": "code | click_id | promo_code: what the conversion was reported by (null: stored before "
                       "this was recorded)."})
    value_cents = fields.Integer()
    currency = fields.String()
    occurred_at = fields.String(metadata={"format": "date-time"})
    created_at = fields.String(metadata={"format": "date-time"})


class ConversionItemResult(Schema):
    index = fields.Integer(metadata={"description": "Position of the item in the request."})
    external_id = fields.String()
    outcome = fields.String(metadata={"description": "created | duplicate (stored before, the first one is "
                                                     "returned) | not_found | conflict | invalid"})
    status = fields.Integer(metadata={"description": "What the single form would have answered: 201, 200, 404, "
                                                     "409 or 422."})
    conversion = fields.Nested(ConversionOut, allow_none=True)
    detail = fields.String(allow_none=True)


class ConversionBatchOut(Schema):
    created = fields.Integer()
    duplicates = fields.Integer()
    failed = fields.Integer()
    results = fields.List(fields.Nested(ConversionItemResult))


class Performance(Schema):
    spend_cents = fields.Integer(metadata={"description": "Approved payouts plus platform fees, and the bonuses paid "
                                                         "(one-off and performance), from the ledger."})
    approved_actions = fields.Integer()
    clicks = fields.Integer()
    conversions = fields.Integer()
    revenue_cents = fields.Integer()
    cost_per_action_cents = fields.String(allow_none=True, metadata={"description": "spend / approved actions. "
                                                                                    + CENTS_RATIO})
    cpa_cents = fields.String(allow_none=True, metadata={"description": "spend / conversions. " + CENTS_RATIO})
    roas = fields.String(allow_none=True, metadata={"description": "revenue / spend. " + PLAIN_RATIO})


class GroupReport(Performance):
    group_id = fields.String()
    kind = fields.String()
    name = fields.String(allow_none=True)
    unit_price_cents = fields.Integer()
    paused_reason = fields.String(allow_none=True, metadata={"description": "Set when the stop rule (or anyone) "
                                                                             "paused the group."})
    over_stop_threshold = fields.Boolean(metadata={"description": "CPA is over 3× target after the minimum spend "
                                                                  "now (the job pauses such a group)."})
    promo_code_conversions = fields.Integer(metadata={
        "description": "Of `conversions`, those reported by a promo code (a sale that may have had no click)."})
    promo_code_revenue_cents = fields.Integer()


class PromoCodeReport(Schema):
    promo_code = fields.String()
    group_id = fields.String()
    task_id = fields.String()
    conversions = fields.Integer(metadata={"description": "Conversions reported by this promo code."})
    revenue_cents = fields.Integer()


class WorkerReport(Performance):
    worker_id = fields.String()
    display_name = fields.String(allow_none=True)
    promo_codes = fields.List(fields.Nested(PromoCodeReport), metadata={
        "description": "Briefs with promo codes: every promo code the worker's claims on this brief carry, oldest "
                       "claim first, with the conversions reported by each; empty otherwise."})
    conversions_per_approved_task = fields.String(allow_none=True, metadata={"description": PLAIN_RATIO})
    top_performer = fields.Boolean()
    reputation = fields.Nested(ReputationOut, metadata={
        "description": "The worker's reputation across the marketplace, from our records."})


class DayReport(Performance):
    date = fields.String(metadata={"description": "UTC day (YYYY-MM-DD): spend by approval time, clicks by "
                                                  "click time, conversions by occurred_at. Days with activity only."})


class Verdict(Schema):
    kind = fields.String()
    group_ids = fields.List(fields.String())
    outcome = fields.String(metadata={"description": "winner | tie | undecided"})
    winner_group_id = fields.String(allow_none=True)
    cpa_difference_percent = fields.String(allow_none=True, metadata={
        "description": "(higher CPA − lower CPA) / higher CPA × 100, two decimals."})
    reason = fields.String()


class ReportRules(Schema):
    verdict_min_conversions = fields.Integer()
    winner_margin_percent = fields.Integer()
    tie_margin_percent = fields.Integer()
    stop_rule_multiple = fields.Integer()
    stop_rule_threshold_cpa_cents = fields.Integer(allow_none=True)
    stop_rule_min_spend_cents = fields.Integer()


class ClickCounting(Schema):
    unique_per = fields.String(metadata={"description": "`visitor`: one client address and user agent together. "
                                                        "A visitor's repeated clicks on one tracked link count once "
                                                        "per window (every request still redirects)."})
    window_seconds = fields.Integer(metadata={"description": "The window's length; windows are fixed, counted "
                                                             "from the Unix epoch (CLICK_VISIT_WINDOW_SECONDS)."})
    address_cap_per_minute = fields.Integer(metadata={"description": "At most this many clicks are counted from "
                                                                     "one address in any minute, over all links "
                                                                     "(CLICK_CAP_PER_ADDRESS_PER_MINUTE)."})


class ReportOut(Schema):
    brief_id = fields.String()
    currency = fields.String()
    target_cpa_cents = fields.Integer(allow_none=True)
    totals = fields.Nested(Performance)
    groups = fields.List(fields.Nested(GroupReport))
    workers = fields.List(fields.Nested(WorkerReport))
    daily = fields.List(fields.Nested(DayReport))
    verdicts = fields.List(fields.Nested(Verdict), metadata={"description": "One per pair of groups of the same kind."})
    top_performers = fields.List(fields.String(), metadata={
        "description": "Worker ids: the top 20% (rounded up) by conversions per approved task."})
    top_workers = fields.List(fields.String(), metadata={
        "description": "Worker ids: the top 20% (rounded up) of workers with approved work, by CPA (lowest first), "
                       "then approval rate; those tied with the last one in are in too, and a worker without "
                       "conversions never is. Who to invite back to a group added with "
                       "POST /v1/briefs/{id}/task-groups."})
    rules = fields.Nested(ReportRules)
    click_counting = fields.Nested(ClickCounting, metadata={"description": "How `clicks` were counted."})


class AssetArgs(ListArgs):
    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json",
                           metadata={"description": "csv streams every asset (no pagination)."})
    rights = fields.String(validate=validate.OneOf(["expiring"]), load_default=None, metadata={
        "description": "expiring: only assets whose usage rights end within the next 30 days."})


class AssetOut(Schema):
    submission_id = fields.String()
    status = fields.String()
    approved_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    brief_id = fields.String()
    group_id = fields.String()
    group_kind = fields.String()
    group_name = fields.String(allow_none=True)
    task_id = fields.String()
    worker_id = fields.String()
    worker_name = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    link = fields.String(allow_none=True)
    screenshot_url = fields.String(allow_none=True, metadata={"description": "As JSON, the screenshot's API URL "
                                                                           "(send your key). In the CSV, a signed "
                                                                           "link that opens without one for 7 days."})
    tracked_code = fields.String()
    tracked_link = fields.String()
    promo_code = fields.String(allow_none=True, metadata={
        "description": "The promo code of the claim the asset was made under (briefs with promo codes); null "
                       "otherwise. A CSV column too."})
    clicks = fields.Integer()
    conversions = fields.Integer()
    revenue_cents = fields.Integer()
    currency = fields.String()
    usage_rights = fields.Nested(UsageRights, allow_none=True, metadata={
        "description": "The brief's usage rights, which the worker accepted by claiming; null: none stated. "
                       "The CSV has them as usage_channels and usage_territories (';'-separated), "
                       "usage_term_days and usage_exclusive."})
    rights_expire_at = fields.String(allow_none=True, metadata={
        "format": "date-time", "description": "approved_at + term_days: when the brand's rights end."})


class AssetPage(Schema):
    data = fields.List(fields.Nested(AssetOut))
    next_cursor = fields.String(allow_none=True)
