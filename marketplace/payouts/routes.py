"""HTTP routes of the payouts domain: workers' payout accounts and earnings, admins' payout batches."""

from __future__ import annotations

from flask.views import MethodView

from marketplace.auth import BEARER, current_principal, role_required
from marketplace.http.blueprint import Blueprint
from marketplace.http.origin import public_origin
from marketplace.http.route_facts import calls_stripe
from marketplace.payouts import schemas, service
from workers import payouts as payout_jobs

blp = Blueprint("payouts", __name__, description="Payout accounts, payout batches and earnings")


@blp.route("/v1/me/payout-account")
class MyPayoutAccount(MethodView):
    @role_required("worker")
    @blp.response(200, schemas.PayoutAccountOut)
    @blp.alt_response(201, schema=schemas.PayoutAccountOut, description="The account was just made.")
    @blp.doc(security=BEARER, summary="Create or reuse your payout account", description="Create (first call, 201) or reuse (200) the worker's Stripe Connect "
             "Express account, and return a fresh onboarding link every call. Stripe's account.updated "
             "webhook records when transfers and payouts become enabled.")
    @calls_stripe
    def post(self):
        # Back to the worker client's earnings page, which says how onboarding went.
        client = f"{public_origin()}/app/"
        body, created = service.set_up_payout_account(
            current_principal().id, return_url=f"{client}?payout_account=ready#earnings",
            refresh_url=f"{client}?payout_account=refresh#earnings")
        return body, 201 if created else 200

    @role_required("worker")
    @blp.response(200, schemas.PayoutAccountOut)
    @blp.doc(security=BEARER, summary="Your payout account", description="The worker's payout account and whether Stripe lets it receive money "
             "(404 before one is made).")
    def get(self):
        return service.get_payout_account(current_principal().id)


@blp.route("/v1/me/earnings", methods=["GET"])
@role_required("worker")
@blp.response(200, schemas.EarningsOut)
@blp.doc(security=BEARER, summary="Your earnings, per currency", description="Per currency: pending_review (unit prices of submissions still being "
         "validated or reviewed; not money yet, nothing is owed until approval), available (approved, "
         "not yet in a batch), in_transit (in a batch, transfer not yet made), paid (transferred, less "
         "reversals). All but pending_review are sums over the ledger.")
def my_earnings():
    return {"by_currency": service.earnings(current_principal().id)}


@blp.route("/v1/me/payouts", methods=["GET"])
@role_required("worker")
@blp.arguments(schemas.ListArgs(), location="query")
@blp.response(200, schemas.WorkerPayoutPage)
@blp.doc(security=BEARER, summary="Your payout history", description="Every payout of yours, newest first: "
         "one item per payout batch that carried your money, with its amount, status, Stripe transfer, "
         "reversals and how many submissions it paid for.")
def my_payouts(args):
    return service.worker_payouts(current_principal().id, limit=args["limit"], cursor=args["cursor"])


@blp.route("/v1/payout-batches")
class PayoutBatches(MethodView):
    @role_required("admin")
    @blp.arguments(schemas.BatchIn())
    @blp.response(202, schemas.BatchOut)
    @blp.doc(security=BEARER, summary="Start a payout batch", description="Snapshot, in one transaction, every worker whose available balance is "
             "at least min_amount_cents and whose payout account can receive transfers, move those balances to "
             "in transit, and pay them in the background: one Stripe Transfer per worker, idempotent on the "
             "item id, transfer_group = the batch id. A batch with nobody to pay is completed at once. What Stripe's "
             "available balance cannot cover yet (card money is pending for days) is held, each held item saying "
             "when its funds become available, and paid by a later run once they are.")
    def post(self, data):
        batch = service.start_batch(currency=data["currency"], min_amount_cents=data["min_amount_cents"],
                                    created_by=f"admin:{current_principal().id}")
        payout_jobs.enqueue_batch(batch)
        return service.present([batch])[0]

    @role_required("admin")
    @blp.arguments(schemas.ListArgs(), location="query")
    @blp.response(200, schemas.BatchPage)
    @blp.doc(security=BEARER, description="Payout batches, newest first, with progress and totals.")
    def get(self, args):
        return service.batch_page(**args)


@blp.route("/v1/payout-batches/<string:batch_id>", methods=["GET"])
@role_required("admin")
@blp.response(200, schemas.BatchDetailOut)
@blp.doc(security=BEARER, description="A batch: status, progress {done, total} (items paid, failed or "
         "reversed, out of all; held items are not done), totals, every item, and every worker it left out "
         "(skipped, with the reason). All of it is read in one snapshot: the summary always agrees with the items.")
def get_batch(batch_id):
    return service.batch_detail(batch_id)
