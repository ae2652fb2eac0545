"""HTTP routes of the workforce: a worker's profile; brands' blocks; admins' worker list, detail and suspensions."""

from __future__ import annotations

from marketplace.auth import BEARER, current_principal, role_required
from marketplace.http.blueprint import Blueprint
from marketplace.workforce import profile, schemas, service

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
