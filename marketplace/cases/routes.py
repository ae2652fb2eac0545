"""HTTP routes of person-only cases (admin): list them, and retry or settle each."""

from __future__ import annotations

from flask.views import MethodView

from marketplace.auth import BEARER, current_principal, role_required
from marketplace.cases import resolution, schemas, service
from marketplace.http.blueprint import Blueprint
from marketplace.http.route_facts import calls_stripe

blp = Blueprint("cases", __name__, description="Person-only cases: failed refunds, transfers unlike their items")


@blp.route("/v1/admin/cases")
class Cases(MethodView):
    @role_required("admin")
    @blp.arguments(schemas.CaseListArgs(), location="query")
    @blp.response(200, schemas.CasePage)
    @blp.doc(security=BEARER, description="Cases no job can settle by itself, newest first (?status=, ?kind=).")
    def get(self, args):
        rows, next_cursor = service.list_cases(**args)
        return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/admin/cases/<string:case_id>", methods=["GET"])
@role_required("admin")
@blp.response(200, schemas.CaseDetailOut)
@blp.doc(security=BEARER, description="A case and every action taken on it (who, what, when, why).")
def get_case(case_id):
    return service.get_case(case_id)


@blp.route("/v1/admin/cases/<string:case_id>/retry", methods=["POST"])
@role_required("admin")
@blp.arguments(schemas.RetryIn())
@blp.response(200, schemas.CaseDetailOut)
@blp.doc(security=BEARER, description=(
    "Retry an open case. refund_failed: a new attempt of the refund, at Stripe now, with an idempotency key "
    "derived from our first refund and the attempt number; only when every earlier attempt failed (409 "
    "otherwise, and when the brief's escrow no longer holds the money), so a refund is never made twice. The "
    "case resolves when Stripe makes it and is open again when it fails. transfer_mismatch: the item's "
    "transfer is looked up at Stripe again. 409 for a case that is not open."))
@calls_stripe
def retry_case(data, case_id):
    return resolution.retry(case_id, actor=f"admin:{current_principal().id}", reason=data["reason"])


@blp.route("/v1/admin/cases/<string:case_id>/settle", methods=["POST"])
@role_required("admin")
@blp.arguments(schemas.SettleIn())
@blp.response(200, schemas.CaseDetailOut)
@blp.doc(security=BEARER, description=(
    "Close an open case a person settled, with the reason (required). A transfer_mismatch also takes the "
    "item's outcome (paid or failed, booked in the ledger); 422 without it. 409 for a case that is not open."))
def settle_case(data, case_id):
    return resolution.settle(case_id, actor=f"admin:{current_principal().id}", reason=data["reason"],
                             outcome=data["outcome"])
