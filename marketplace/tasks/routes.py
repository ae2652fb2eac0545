"""Finding, claiming and releasing tasks (workers)."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from marketplace.auth import BEARER, current_principal, role_required
from marketplace.briefs.models import Brief, TaskGroup
from marketplace.extensions import db
from marketplace.tasks import schemas, service

blp = Blueprint("tasks", __name__, description="Finding and claiming tasks (workers)")


def present_claim(claim) -> dict:
    group = db.session.get(TaskGroup, claim.group_id)
    brief = db.session.get(Brief, claim.brief_id)
    return {
        "claim_id": claim.id,
        "task": {"id": claim.task_id, "group_id": group.id, "brief_id": brief.id, "kind": group.kind,
                 "unit_price_cents": group.unit_price_cents, "currency": brief.currency,
                 "instructions": group.instructions, "proof": group.proof},
        "claimed_at": claim.claimed_at,
        "claim_expires_at": claim.expires_at,
        "tracked_code": claim.tracked_code,
        "tracked_link": request.host_url.rstrip("/") + f"/t/{claim.tracked_code}",
        "status": claim.status,
    }


@blp.route("/v1/task-groups/<string:group_id>/claim", methods=["POST"])
@role_required("worker")
@blp.response(201, schemas.ClaimOut)
@blp.doc(security=BEARER, description="Reserve one open task of the group. 409 when none is left, when the "
         "brief is not live, or when you already hold the group's max_per_worker tasks.")
def claim_task(group_id):
    return present_claim(service.claim(current_principal().id, group_id))


@blp.route("/v1/tasks/<string:task_id>/release", methods=["POST"])
@role_required("worker")
@blp.response(200, schemas.ClaimOut)
@blp.doc(security=BEARER, description="Give a claim back before submitting proof; the task reopens.")
def release_task(task_id):
    return present_claim(service.release(current_principal().id, task_id))
