"""HTTP routes of bonuses: pay one, list them, a worker's own, and what a brief can spare."""

from __future__ import annotations

from marketplace.auth import BEARER, current_principal, role_required, scope_required
from marketplace.bonuses import schemas, service
from marketplace.briefs.service import get_brief
from marketplace.http import idempotency
from marketplace.http.blueprint import Blueprint
from marketplace.http.pagination import ListArgs

blp = Blueprint("bonuses", __name__, description="One-off and performance bonuses")


@blp.route("/v1/bonuses", methods=["POST"])
@role_required("brand", "admin")
@scope_required("briefs:write")
@blp.arguments(schemas.BonusIn(), example=schemas.BONUS_EXAMPLE)
@blp.response(201, schemas.BonusOut)
@blp.doc(security=BEARER, summary="Pay a one-off bonus", description=(
    "From the brief's unspent escrow (what it holds beyond the tasks and performance bonuses it has promised) "
    "to a worker who did approved work on it; a brand for its own briefs, or an admin. Booked at once to the "
    "worker's available balance (no platform fee), paid by the next payout batch, shown in the worker's "
    "earnings and notifications, and counted in the brief's report as spend. Send an Idempotency-Key: a retry "
    "with it never pays twice. 404 for a brief that is not yours or a worker without approved work on it, "
    "409 for a brief that is not live or paused, 422 when the unspent escrow cannot cover the amount."))
def pay_bonus(data):
    bonus, _ = service.pay_bonus(current_principal(), **data, bonus_id=idempotency.derived_id("bon"))
    return service.present(bonus)


@blp.route("/v1/bonuses", methods=["GET"])
@role_required("brand", "admin")
@scope_required("briefs:read")
@blp.arguments(schemas.BonusListArgs(), location="query")
@blp.response(200, schemas.BonusPage)
@blp.doc(security=BEARER, summary="Bonuses, newest first", description=(
    "One-off and performance bonuses: a brand's on its own briefs, an admin's on any. ?brief= and ?worker= "
    "narrow the list."))
def list_bonuses(args):
    rows, next_cursor = service.list_bonuses(current_principal(), brief_id=args["brief"], worker_id=args["worker"],
                                             limit=args["limit"], cursor=args["cursor"])
    return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/me/bonuses", methods=["GET"])
@role_required("worker")
@blp.arguments(ListArgs(), location="query")
@blp.response(200, schemas.BonusPage)
@blp.doc(security=BEARER, summary="Your bonuses, newest first", description=(
    "Every bonus paid to you, one-off or performance, with its reason. Their money is in your available "
    "balance until a payout batch pays it."))
def my_bonuses(args):
    rows, next_cursor = service.list_for_worker(current_principal().id, limit=args["limit"], cursor=args["cursor"])
    return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/briefs/<string:brief_id>/unspent", methods=["GET"])
@role_required("brand", "admin")
@scope_required("briefs:read")
@blp.response(200, schemas.UnspentOut)
@blp.doc(security=BEARER, summary="What a brief's escrow can spare", description=(
    "The most a one-off bonus or a new task group can take from the brief's escrow now."))
def unspent(brief_id):
    principal = current_principal()
    currency = get_brief(principal, brief_id).currency
    return {"brief_id": brief_id, "currency": currency, "unspent_cents": service.unspent_cents(principal, brief_id)}
