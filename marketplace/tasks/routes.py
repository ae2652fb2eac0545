"""Finding, claiming and releasing tasks (workers)."""

from __future__ import annotations

from flask import Response, g, jsonify

from marketplace.auth import (
    BEARER,
    authenticated_before_refusal,
    bearer_secret,
    current_principal,
    require_role,
    role_required,
)
from marketplace.http import idempotency, ratelimit
from marketplace.http.blueprint import Blueprint
from marketplace.http.origin import public_origin
from marketplace.http.route_facts import rate_limited
from marketplace.tasks import schemas, service

blp = Blueprint("tasks", __name__, description="Finding and claiming tasks (workers)")


@blp.route("/v1/tasks", methods=["GET"])
@authenticated_before_refusal(lambda principal: require_role(principal, ("worker",)))
@blp.arguments(schemas.TaskListArgs(), location="query")
@blp.response(200, schemas.OpenGroupPage)
@blp.doc(security=BEARER, description="Task groups you can claim from now: open tasks on live briefs inside "
         "their window that the group's eligibility and the brand's blocks let you take, newest brief first. Filter by `kind` and `brief` (a brief id).")
def list_tasks(args):
    """The caller is authenticated inside the listing's one statement (service.list_open_groups_as)."""
    g.principal, rows, next_cursor = service.list_open_groups_as(
        bearer_secret(), kind=args["kind"], brief_id=args["brief"], limit=args["limit"], cursor=args["cursor"])
    return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/task-groups/<string:group_id>/claim", methods=["POST"])
@role_required("worker")
@blp.response(201, schemas.ClaimOut)
@blp.doc(security=BEARER, description="Reserve one open task of the group. 409 when none is left, when the "
         "brief is not live, or when you already hold the group's max_per_worker tasks; 403 (problem type "
         "not-eligible, its errors keyed by the rule: country, language, min_approval_rate, min_approved, "
         "invite_only, excluded, blocked) when the group's eligibility or the brand's block keeps you out; 429 (with Retry-After) "
         "past CLAIM_RATE_LIMIT. The claim expires at claim_expires_at unless proof is submitted. On a brief with "
         "promo codes the claim carries its own promo_code (unique platform-wide; should every code drawn for it be "
         "taken, a near impossibility, the answer is 503 with Retry-After and nothing is held).")
@rate_limited
def claim_task(group_id):
    worker_id = current_principal().id
    ratelimit.check_claim(worker_id)
    response = service.claim_described(worker_id, group_id, public_origin(), answer=_claimed)
    idempotency.recorded(response)  # committed with the claim
    return response


def _claimed(view: dict) -> tuple[Response, list]:
    """The 201 (as flask-smorest writes it from ClaimOut), and the statement recording it under
    the request's Idempotency-Key, which commits with the claim: a retry after a crash between
    the two would otherwise find the key reserved and unanswered, and claim a second task."""
    response = jsonify(_CLAIM_OUT.dump(view))
    response.status_code = 201
    return response, idempotency.recording(response)


_CLAIM_OUT = schemas.ClaimOut()


@blp.route("/v1/tasks/<string:task_id>/release", methods=["POST"])
@role_required("worker")
@blp.response(200, schemas.ClaimOut)
@blp.doc(security=BEARER, description="Give a claim back before submitting proof; the task reopens. "
         "404 when you hold no claim on the task, 409 once proof is in.")
def release_task(task_id):
    return service.describe_claim(service.release(current_principal().id, task_id), public_origin())


@blp.route("/v1/me/claims", methods=["GET"])
@role_required("worker")
@blp.arguments(schemas.ListArgs(), location="query")
@blp.response(200, schemas.ClaimPage)
@blp.doc(security=BEARER, summary="Your claims waiting for proof", description="Your claims still waiting for proof, newest first, with their countdown "
         "(claim_expires_at, expires_in_seconds) and tracked link; a claim whose proof came back for a "
         "revision is among them until the revision's deadline, with what was asked (revision).")
def my_claims(args):
    rows, next_cursor = service.my_active_claims(current_principal().id, public_origin(), **args)
    return {"data": rows, "next_cursor": next_cursor}
