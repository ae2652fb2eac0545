"""Briefs: create, plan, list, read, fund, and move along the lifecycle."""

from __future__ import annotations

from flask import current_app, g, jsonify
from flask.views import MethodView

from marketplace.auth import (
    BEARER,
    authenticated_before_refusal,
    bearer_secret,
    current_principal,
    declares_scope,
    role_required,
    scope_required,
)
from marketplace.briefs import documents, lifecycle, scaling, schemas, service
from marketplace.briefs.planning import MixItem, plan
from marketplace.http import idempotency
from marketplace.http.blueprint import Blueprint
from marketplace.http.route_facts import calls_stripe, shows_secret

blp = Blueprint("briefs", __name__, description="Briefs (campaigns) and their task groups")


@blp.route("/v1/briefs")
class Briefs(MethodView):
    @role_required("brand", "admin")
    @scope_required("briefs:read")
    @blp.arguments(schemas.BriefListArgs(), location="query")
    @blp.response(200, schemas.BriefPage)
    @blp.doc(security=BEARER)
    def get(self, args):
        """The caller's briefs, newest first (admins see every brief)."""
        rows, next_cursor = service.list_briefs(current_principal(), **args)
        return {"data": service.present(rows), "next_cursor": next_cursor}

    @authenticated_before_refusal(service.brand_only)
    @declares_scope("briefs:write")  # checked inside the one statement (service.create_brief_as)
    @blp.arguments(schemas.BriefIn(), example=schemas.BRIEF_EXAMPLE)
    @blp.response(201, schemas.BriefOut)
    @blp.doc(security=BEARER)
    def post(self, data):
        """Create a draft brief.

        Its tasks plus the platform fee must fit the budget (else 422).
        """
        g.principal, document = service.create_brief_as(bearer_secret(), data,
                                                        brief_id=idempotency.derived_id("brief"))
        return jsonify(document), 201


@blp.route("/v1/briefs/plan", methods=["POST"])
@role_required("brand", "admin")
@scope_required("briefs:read")
@blp.arguments(schemas.PlanIn(), example=schemas.PLAN_EXAMPLE)
@blp.response(200, schemas.PlanOut)
@blp.doc(security=BEARER)
def plan_budget(data):
    """Plan a budget into task groups, without saving.

    Splits the budget into whole units by shares (largest remainder, never over budget).
    """
    fee_bps = data["fee_bps"] if data["fee_bps"] is not None else current_app.config["PLATFORM_FEE_BPS"]
    groups = plan(data["budget_cents"], [MixItem(**m) for m in data["mix"]], fee_bps)
    cost = sum(g.cost_cents for g in groups)
    fees = sum(g.fee_cents for g in groups)
    return {
        "budget_cents": data["budget_cents"], "currency": data["currency"], "fee_bps": fee_bps,
        # A group of no tasks is no group a brief can have: those come back apart, with why. The
        # groups are exactly what POST /v1/briefs takes, so they paste in; their figures are apart.
        "task_groups": [
            {"kind": g.kind, "name": g.name, "unit_price_cents": g.unit_price_cents, "quantity": g.quantity}
            for g in groups if g.quantity > 0
        ],
        "costs": [
            {"kind": g.kind, "name": g.name, "unit_price_cents": g.unit_price_cents, "quantity": g.quantity,
             "fee_per_task_cents": g.fee_per_task_cents, "cost_cents": g.cost_cents, "fee_cents": g.fee_cents}
            for g in groups if g.quantity > 0
        ],
        "left_out": [
            {"kind": g.kind, "name": g.name, "unit_price_cents": g.unit_price_cents,
             "fee_per_task_cents": g.fee_per_task_cents,
             "reason": f"Its share of the budget does not buy one task at {g.unit_cost_cents} cents with the fee."}
            for g in groups if g.quantity == 0
        ],
        "cost_cents": cost, "fee_cents": fees, "total_cents": cost + fees,
        "unspent_cents": data["budget_cents"] - cost - fees,
    }


@blp.route("/v1/briefs/<string:brief_id>", methods=["GET"])
@declares_scope("briefs:read")  # checked on the one statement's row (documents.read)
@blp.response(200, schemas.BriefOut)
@blp.doc(security=BEARER)
def get_brief(brief_id):
    """A brief, its groups' task counts and its money.

    The read brands poll: one round trip.
    """
    g.principal, document = documents.read(bearer_secret(), brief_id, roles=("brand", "admin"))
    return jsonify(document)  # already rendered: a Response passes flask-smorest's schema untouched


@blp.route("/v1/briefs/<string:brief_id>/task-groups", methods=["POST"])
@role_required("brand")
@scope_required("briefs:write")
@blp.arguments(schemas.TaskGroupIn(), example=schemas.BRIEF_EXAMPLE["task_groups"][1])
@blp.response(201, schemas.BriefOut)
@blp.doc(security=BEARER, summary="Add a task group to a running brief", description=(
    "Scale the winners: a live or paused brief of yours takes one more group (the body of one group in "
    "POST /v1/briefs) and opens its tasks at once, paid for by the brief's unspent escrow (what it holds "
    "beyond the tasks and performance bonuses it has promised; GET /v1/briefs/{id}/unspent). No new payment: "
    "the money is in escrow already. 422 when the unspent escrow cannot cover every task at its price plus fee "
    "(the problem says how much is missing), 409 for a brief that is not live or paused, 404 for a brief that "
    "is not yours. Answers the brief, with the new group last."))
def add_task_group(data, brief_id):
    return service.present([scaling.add_task_group(current_principal(), brief_id, data)])[0]


@blp.route("/v1/briefs/<string:brief_id>/fund", methods=["POST"])
@role_required("brand")
@scope_required("briefs:write")
@blp.response(201, schemas.FundOut)
@blp.doc(security=BEARER, summary="Fund a brief", description="Create (or reuse) a Stripe PaymentIntent for the brief's tasks plus fees "
         "(committed_cents). The fee counts against the budget, so this is the most the brief can spend, never "
         "more than budget_cents; charging the whole budget would hold money no task can spend. A declined card "
         "leaves the same PaymentIntent to pay again: asking again returns it. 422 when Stripe will not charge the "
         "amount or currency (e.g. under its minimum charge). The brief becomes funded only when Stripe's signed "
         "webhook reports the payment succeeded.")
@calls_stripe
@shows_secret
def fund(brief_id):
    return lifecycle.fund(current_principal(), brief_id)


@blp.route("/v1/briefs/<string:brief_id>/publish", methods=["POST"])
@role_required("brand", "admin")
@scope_required("briefs:write")
@blp.response(200, schemas.BriefOut)
@blp.doc(security=BEARER, description="funded → live: expands every group into its tasks.")
def publish_brief(brief_id):
    return service.present([lifecycle.publish(current_principal(), brief_id)])[0]


@blp.route("/v1/briefs/<string:brief_id>/pause", methods=["POST"])
@role_required("brand", "admin")
@scope_required("briefs:write")
@blp.response(200, schemas.BriefOut)
@blp.doc(security=BEARER, description="live → paused: no new claims.")
def pause_brief(brief_id):
    return service.present([lifecycle.set_paused(current_principal(), brief_id, True)])[0]


@blp.route("/v1/briefs/<string:brief_id>/resume", methods=["POST"])
@role_required("brand", "admin")
@scope_required("briefs:write")
@blp.response(200, schemas.BriefOut)
@blp.doc(security=BEARER, description="paused → live.")
def resume_brief(brief_id):
    return service.present([lifecycle.set_paused(current_principal(), brief_id, False)])[0]


@blp.route("/v1/briefs/<string:brief_id>/cancel", methods=["POST"])
@role_required("brand", "admin")
@scope_required("briefs:write")
@blp.response(200, schemas.BriefOut)
@blp.doc(security=BEARER, description="Cancel; open tasks close and what is neither spent nor owed is refunded.")
def cancel_brief(brief_id):
    return service.present([lifecycle.cancel(current_principal(), brief_id)])[0]
