"""HTTP routes of appeals: a worker appeals a rejection; admins list and decide them."""

from __future__ import annotations

from marketplace.appeals import schemas, service
from marketplace.auth import BEARER, current_principal, role_required
from marketplace.http.blueprint import Blueprint
from marketplace.http.pagination import ListArgs

blp = Blueprint("appeals", __name__, description="Appeals of rejections")


@blp.route("/v1/submissions/<string:submission_id>/appeal", methods=["GET"])
@role_required("worker")
@blp.response(200, schemas.AppealOut)
@blp.doc(security=BEARER, summary="Your appeal of a submission", description=(
    "The appeal the worker made of their own submission, with its status (open, upheld, overturned) and, "
    "once decided, the decision's reason. 404 when there is none, or the submission is not yours."))
def my_appeal(submission_id):
    return service.present(service.appeal_of(current_principal(), submission_id))


@blp.route("/v1/submissions/<string:submission_id>/appeal", methods=["POST"])
@role_required("worker")
@blp.arguments(schemas.AppealIn(), example=schemas.APPEAL_EXAMPLE)
@blp.response(201, schemas.AppealOut)
@blp.doc(security=BEARER, summary="Appeal a rejection", description=(
    "One appeal per submission, by its worker, within APPEAL_WINDOW_DAYS (default 7) of its rejection or "
    "auto-rejection (the submission's appealable_until). 404 for a submission that is not yours; 409 when "
    "it was appealed already, is not rejected, or its appeal window has ended; 422 for an empty or too "
    "long message."))
def appeal(data, submission_id):
    return service.present(service.open_appeal(current_principal(), submission_id, data["message"]))


@blp.route("/v1/me/appeals", methods=["GET"])
@role_required("worker")
@blp.arguments(ListArgs(), location="query")
@blp.response(200, schemas.AppealPage)
@blp.doc(security=BEARER, summary="Your appeals, newest first", description=(
    "Every appeal the worker made, with its submission, status and, once decided, the decision's reason."))
def my_appeals(args):
    rows, next_cursor = service.my_appeals(current_principal(), limit=args["limit"], cursor=args["cursor"])
    return {"data": [service.present(row) for row in rows], "next_cursor": next_cursor}


@blp.route("/v1/appeals", methods=["GET"])
@role_required("admin")
@blp.arguments(schemas.AppealListArgs(), location="query")
@blp.response(200, schemas.AppealQueuePage)
@blp.doc(security=BEARER, summary="Appeals, oldest first", description=(
    "The appeals queue: oldest first, each with how long it has waited (age_seconds); ?status=open for "
    "the ones still to decide. Each carries what deciding it needs: its submission's reason_code and "
    "evidence (submission), its brief {id, title} and its worker {id, display_name}, read for the whole page at "
    "once."))
def list_appeals(args):
    rows, next_cursor = service.list_appeals(status=args["status"], limit=args["limit"], cursor=args["cursor"])
    return {"data": service.present_for_review(rows, current_principal()), "next_cursor": next_cursor}


@blp.route("/v1/appeals/<string:appeal_id>/decision", methods=["POST"])
@role_required("admin")
@blp.arguments(schemas.AppealDecisionIn(), example=schemas.DECISION_EXAMPLE)
@blp.response(200, schemas.AppealForReview)
@blp.doc(security=BEARER, summary="Uphold or overturn an appeal", description=(
    "uphold: the rejection stands. overturn: the submission is approved through the same approval as a "
    "review decision (paid once, the escrow never overdrawn): it takes its task back when that task is "
    "open again; when someone else holds it, it is paid from the brief's unspent escrow, and when none "
    "is left it is 409 and the appeal stays open. The worker is notified and the decision is audited. "
    "409 for an appeal decided already. Answers the appeal as the queue shows it (submission, brief, "
    "worker), its submission as the decision left it."))
def decide(data, appeal_id):
    principal = current_principal()
    decided = service.decide(principal, appeal_id, data["decision"], data["reason"])
    return service.present_for_review([decided], principal)[0]
