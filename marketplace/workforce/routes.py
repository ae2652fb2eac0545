"""HTTP routes of the workforce: a worker's profile; brands' blocks; admins' worker list, detail and suspensions."""

from __future__ import annotations

from flask.views import MethodView

from marketplace.auth import BEARER, current_principal, role_required, scope_required
from marketplace.http.blueprint import Blueprint
from marketplace.http.pagination import ListArgs
from marketplace.workforce import blocks, profile, schemas, service, suspensions

blp = Blueprint("workforce", __name__, description="Workers: profile, reputation, eligibility, blocks, suspensions")


@blp.route("/v1/me/profile", methods=["PATCH"])
@role_required("worker")
@blp.arguments(schemas.ProfileIn(), example=schemas.PROFILE_EXAMPLE)
@blp.response(200, schemas.WorkerProfileOut)
@blp.doc(security=BEARER, summary="Update your profile", description=(
    "Send any of display_name, country (ISO 3166-1 alpha-2), languages (ISO 639-1) and social_accounts "
    "(one per platform: tiktok, instagram, youtube, x); a list sent replaces the one held. Unknown codes are "
    "422. Answers your profile with its reputation, as GET /v1/me shows it."))
def update_profile(data):
    worker_id = current_principal().id
    profile.update_profile(worker_id, data)
    return service.view(worker_id)


@blp.route("/v1/blocked-workers")
class BlockedWorkers(MethodView):
    @role_required("brand")
    @scope_required("briefs:write")
    @blp.arguments(schemas.BlockIn(), example={"worker_id": "wrk_…", "reason": "Posted off-brief content twice"})
    @blp.response(201, schemas.BlockOut)
    @blp.doc(security=BEARER, summary="Block a worker", description=(
        "The worker no longer sees or claims your tasks (a claim is 403 with the rule 'blocked'); the tasks they "
        "hold now are theirs to finish. 404 for an unknown worker; 409 when they are blocked already (the block "
        "held keeps its reason and time: unblock first to change it). Recorded in the audit log."))
    def post(self, data):
        return blocks.block(current_principal().id, data["worker_id"], data["reason"])

    @role_required("brand")
    @scope_required("briefs:read")
    @blp.arguments(ListArgs(), location="query")
    @blp.response(200, schemas.BlockPage)
    @blp.doc(security=BEARER, summary="Your blocked workers", description="Newest block first.")
    def get(self, args):
        rows, next_cursor = blocks.list_blocks(current_principal().id, **args)
        return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/blocked-workers/<string:worker_id>", methods=["DELETE"])
@role_required("brand")
@scope_required("briefs:write")
@blp.response(204)
@blp.doc(security=BEARER, summary="Unblock a worker", description=(
    "The worker sees and may claim your tasks again (if the groups' eligibility lets them). 404 when they are "
    "not blocked. Recorded in the audit log."))
def unblock(worker_id):
    blocks.unblock(current_principal().id, worker_id)


@blp.route("/v1/workers/<string:worker_id>/suspend", methods=["POST"])
@role_required("admin")
@blp.arguments(schemas.SuspensionIn(), example={"reason": "Same device as three banned accounts"})
@blp.response(200, schemas.WorkerProfileOut)
@blp.doc(security=BEARER, summary="Suspend a worker", description=(
    "The worker can no longer log in, claim tasks or submit proof (403 saying they are suspended). Their "
    "claims waiting for proof end and the tasks reopen; proof already in is still reviewed. Their available "
    "balance is held (a ledger movement to their held account): payout batches skip them, with the reason "
    "held, until they are reinstated. 404 for an unknown worker, 409 when already suspended. Audited."))
def suspend_worker(data, worker_id):
    suspensions.suspend(worker_id, data["reason"], f"admin:{current_principal().id}")
    return service.view(worker_id)


@blp.route("/v1/workers/<string:worker_id>/reinstate", methods=["POST"])
@role_required("admin")
@blp.arguments(schemas.SuspensionIn(), example={"reason": "Appeal upheld: the device was a shared library PC"})
@blp.response(200, schemas.WorkerProfileOut)
@blp.doc(security=BEARER, summary="Reinstate a suspended worker", description=(
    "End the worker's suspension: they may log in, claim and submit again, and what the suspension held "
    "returns to their available balance, for the next payout batch. 404 for an unknown worker, 409 when "
    "they are not suspended. Audited."))
def reinstate_worker(data, worker_id):
    suspensions.reinstate(worker_id, data["reason"], f"admin:{current_principal().id}")
    return service.view(worker_id)


@blp.route("/v1/workers", methods=["GET"])
@role_required("admin")
@blp.arguments(schemas.WorkerListArgs(), location="query")
@blp.response(200, schemas.WorkerPage)
@blp.doc(security=BEARER, summary="List workers", description=(
    "Workers newest first, with profile, status and reputation. `q` matches part of the email or display "
    "name; `status` is active or suspended."))
def list_workers(args):
    rows, next_cursor = service.list_workers(**args)
    return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/workers/<string:worker_id>", methods=["GET"])
@role_required("admin")
@blp.response(200, schemas.WorkerDetailOut)
@blp.doc(security=BEARER, summary="A worker, for review", description=(
    "Profile, reputation, balances by currency (available, held by a suspension, in transit, paid), every "
    "suspension, and fraud signals: other workers seen from one of this worker's devices, submissions the "
    "duplicate check caught, and submissions in the last hour against the median worker's. 404 for an "
    "unknown worker."))
def get_worker(worker_id):
    return service.detail(worker_id)
