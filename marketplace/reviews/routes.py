"""HTTP routes of the reviews domain: the review queue and bulk decisions."""

from __future__ import annotations

from marketplace.auth import BEARER, current_principal, role_required, scope_required
from marketplace.http.blueprint import Blueprint
from marketplace.reviews import schemas, service

blp = Blueprint("reviews", __name__, description="Reviewing submissions: the queue and bulk decisions")


def _review_filter(args: dict, field_prefix: str = "") -> service.ReviewFilter:
    return service.ReviewFilter(
        brief_id=args.get("brief"),
        status=args.get("status"),
        checks=service.parse_check_filter(args.get("check"), field_prefix + "check"),
        all_checks_pass=args.get("all_checks") == "pass",
    )


@blp.route("/v1/review/submissions", methods=["GET"])
@role_required("admin", "brand")
@scope_required("briefs:read")
@blp.arguments(schemas.ReviewListArgs(), location="query")
@blp.response(200, schemas.ReviewPage)
@blp.doc(security=BEARER, description="The review queue, newest first: admins see every submission, a brand "
         "those on its own briefs. Each item carries its check results and auto_approve_at. "
         + service.CHECK_SYNTAX)
def review_queue(args):
    items, next_cursor = service.list_queue(
        current_principal(), _review_filter(args), limit=args["limit"], cursor=args["cursor"])
    return {"data": items, "next_cursor": next_cursor}


@blp.route("/v1/review/decisions", methods=["POST"])
@role_required("admin", "brand")
@scope_required("review:write")
@blp.arguments(schemas.DecisionIn(), example=schemas.DECISION_EXAMPLE)
@blp.response(200, schemas.DecisionOut)
@blp.doc(security=BEARER, summary="Decide on submissions in bulk", description=(
    "Approve, reject or ask for a revision on up to 10,000 submissions, by `submission_ids` or by "
    f"`filter` (needs_review submissions matching it, oldest first). Done in chunks of {service.CHUNK:,}, one "
    "transaction each. Only needs_review submissions are decided; every other id is listed in "
    "`skipped` with the reason (not found — which includes another brand's submissions —, still "
    "validating, already approved, …). Approval moves unit price + fee from the brief's escrow to "
    "the worker's available balance and the platform's fees; approvals the escrow cannot cover are "
    "skipped as `insufficient escrow`, oldest approved first. Deciding again is a no-op. Reject "
    "ends the claim and reopens the task; request_revision keeps the claim so the worker can "
    "submit again on it before `revision_deadline` (default 48 hours)."))
def decide(data):
    review_filter = _review_filter(data["filter"], "filter.") if data["filter"] is not None else None
    return service.decide(
        current_principal(), data["decision"], submission_ids=data["submission_ids"], review_filter=review_filter,
        reason_code=data["reason_code"], reason=data["reason"],
        revision_deadline_hours=data["revision_deadline_hours"],
    ).as_dict()
