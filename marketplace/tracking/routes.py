"""Tracked links (GET /t/{code}), conversions, a brief's report and its content bank."""

from __future__ import annotations

from flask import Response, redirect, request, stream_with_context
from marshmallow import ValidationError

from marketplace.auth import BEARER, current_principal, role_required, scope_required
from marketplace.briefs import service as briefs
from marketplace.errors import InvalidInput
from marketplace.http.blueprint import Blueprint
from marketplace.http.origin import public_origin
from marketplace.http.problems import field_errors
from marketplace.tracking import assets, reports, schemas, service
from workers import tracking as tracking_jobs

blp = Blueprint("tracking", __name__, description="Tracked links, conversions, reports and the content bank")

_STATUS = {service.CREATED: 201, service.DUPLICATE: 200, service.NOT_FOUND: 404, service.CONFLICT: 409,
           service.INVALID: 422}


@blp.route("/t/<string:code>", methods=["GET"])
@blp.alt_response(302, description="To the brief's landing URL with utm_source=marketplace, utm_medium=<group "
                  "kind>, utm_campaign=<brief id>, utm_content=<task id> and mkt_click=<click id> (these win over "
                  "parameters of the same name; the URL's other parameters and fragment are kept).")
@blp.doc(description=(
    "A tracked link: no authentication, no rate limit. GET records one click (time, task, group, worker, and "
    "HMAC-SHA256 digests of the IP address and user agent — never the raw values) and redirects. A visitor (one "
    "address and user agent) counts once per link per window (CLICK_VISIT_WINDOW_SECONDS, default 30 minutes): "
    "a repeat redirects with the first click's mkt_click. One address counts at most "
    "CLICK_CAP_PER_ADDRESS_PER_MINUTE clicks a minute (default 60); past it, requests still redirect, with no "
    "mkt_click. Reports state this under click_counting. HEAD answers "
    "the same redirect without recording a click (link checkers and preview bots use HEAD). An unknown code "
    "is a 404 problem document, never a redirect."))
def follow_tracked_link(code):
    target = service.follow(code, ip=request.remote_addr, user_agent=request.headers.get("User-Agent"),
                            record=request.method != "HEAD")
    response = redirect(target.location, code=302)
    # Every visit must come back to us to be counted.
    response.headers["Cache-Control"] = "no-store"
    return response


_CONVERSION_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"oneOf": [schemas.ConversionIn, schemas.ConversionBatchIn]}}},
}


def _parse_conversions() -> tuple[list[dict], bool]:
    body = request.get_json()
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object.", errors={"_schema": ["Must be an object."]})
    bulk = "conversions" in body
    try:
        if bulk:
            return schemas.ConversionBatchIn().load(body)["conversions"], True
        return [schemas.ConversionIn().load(body)], False
    except ValidationError as err:
        errors = field_errors(err.messages)
        name, messages = next(iter(errors.items()))
        raise InvalidInput(f"{name}: {messages[0]}", errors=errors) from None


@blp.route("/v1/conversions", methods=["POST"])
@role_required("brand")
@scope_required("conversions:write")
@blp.response(201, schemas.ConversionOut)
@blp.alt_response(200, schema=schemas.ConversionBatchOut, description=(
    "The bulk form's per-item results; or, for the single form, the conversion stored earlier under this "
    "external_id (a replay)."))
@blp.doc(security=BEARER, requestBody=_CONVERSION_BODY, summary="Report conversions", description=(
    "Report a conversion against a tracked link of one of your briefs, by `code` or `click_id`, or by "
    "`promo_code` (the code a claim of a brief with promo codes carries: a sale with no click is credited to "
    "that claim's worker; matched case-insensitively, the hyphen optional); exactly one of the three "
    "(422 otherwise). Idempotent by "
    "`external_id`: the same conversion again answers 200 with the first one; the same external_id with "
    "anything different is 409. A code, click or promo code that is unknown or of another brand's brief is 404. `currency` defaults to the "
    "brief's and must equal it (422). Bulk form: `{\"conversions\": [...]}`, 1 to 1,000 items, stored in one "
    "statement; the answer is 200 with one result per item (items that fail do not stop the others), while "
    "a malformed item (a float or negative value, a missing external_id, …) makes the whole call 422 and "
    "stores nothing. New conversions queue the stop rule for their briefs."))
def post_conversions():
    items, bulk = _parse_conversions()
    brand_id = current_principal().id
    if not bulk:
        conversion, created = service.record_conversion(brand_id, items[0])
        if created:
            tracking_jobs.enqueue_stop_rule([conversion["brief_id"]])
        return conversion, 201 if created else 200
    results = service.record_conversions(brand_id, items)
    tracking_jobs.enqueue_stop_rule(service.briefs_converted(results))
    return Response(
        schemas.ConversionBatchOut().dumps({
            "created": sum(r.outcome == service.CREATED for r in results),
            "duplicates": sum(r.outcome == service.DUPLICATE for r in results),
            "failed": sum(r.outcome not in (service.CREATED, service.DUPLICATE) for r in results),
            "results": [{**r.__dict__, "status": _STATUS[r.outcome]} for r in results],
        }),
        status=200, mimetype="application/json",
    )


@blp.route("/v1/briefs/<string:brief_id>/report", methods=["GET"])
@role_required("brand", "admin")
@scope_required("briefs:read")
@blp.response(200, schemas.ReportOut)
@blp.doc(security=BEARER, summary="A brief's results: spend, CPA and ROAS", description=(
    "Spend (approved payouts plus fees, from the ledger), approved actions, clicks, conversions, revenue, "
    "cost per action, CPA = spend / conversions and ROAS = revenue / spend, per group, per worker, per UTC day "
    "and for the brief. Ratios are exact, shown as decimal strings (cents to hundredths of a cent; ROAS to "
    "4 places; rounded half up) and null where undefined. Verdicts compare groups of the same kind: the one "
    "whose CPA is at least 20% lower wins, within 10% is a tie, anything else (or fewer than "
    "VERDICT_MIN_CONVERSIONS conversions on either side) is undecided. Groups paused by the stop rule (CPA over "
    "3x target_cpa_cents after STOP_RULE_MIN_SPEND_CENTS) show why in paused_reason. Another brand's brief is 404."))
def brief_report(brief_id):
    return reports.brief_report(briefs.get_brief(current_principal(), brief_id))


@blp.route("/v1/briefs/<string:brief_id>/assets", methods=["GET"])
@role_required("brand", "admin")
@scope_required("briefs:read")
@blp.arguments(schemas.AssetArgs(), location="query")
@blp.response(200, schemas.AssetPage)
@blp.doc(security=BEARER, description=(
    "The content bank: every approved (or paid) asset with its text or link, screenshot URL, worker, group, "
    "tracked link and that link's clicks, conversions and revenue, newest first. `?format=csv` streams all of "
    "them as text/csv (RFC 4180; a cell starting with = + - @ or a tab/CR is prefixed with ' so spreadsheets "
    "never run it as a formula). Each asset carries the brief's usage_rights and its rights_expire_at (approval "
    "time + term_days); `?rights=expiring` lists only those whose rights end within the next 30 days (JSON and "
    "CSV alike)."), responses={"200": {
        "description": "A page of assets as JSON, or with ?format=csv every asset as CSV.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AssetPage"}},
                    "text/csv": {"schema": {"type": "string",
                                            "description": "One header row, then one row per asset."}}}}})
def brief_assets(args, brief_id):
    brief = briefs.get_brief(current_principal(), brief_id)
    base_url = public_origin()
    if args["format"] == "csv":
        response = Response(stream_with_context(assets.csv_rows(brief, base_url, args["rights"])), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{brief.id}-assets.csv"'
        response.headers["Cache-Control"] = "private, no-store"
        return response
    data, next_cursor = assets.list_assets(brief, base_url, limit=args["limit"], cursor=args["cursor"],
                                          rights=args["rights"])
    return {"data": data, "next_cursor": next_cursor}
