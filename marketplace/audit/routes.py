"""HTTP routes of the audit log (admin, read only: nobody edits it)."""

from __future__ import annotations

from marketplace.audit import schemas, service
from marketplace.auth import BEARER, role_required
from marketplace.http.blueprint import Blueprint

blp = Blueprint("audit", __name__, description="The audit log of actions that move money or change standing")


@blp.route("/v1/audit-events", methods=["GET"])
@role_required("admin")
@blp.arguments(schemas.AuditListArgs(), location="query")
@blp.response(200, schemas.AuditPage)
@blp.doc(security=BEARER, summary="The audit log", description=(
    "Every admin and brand action that moves money or changes someone's standing (decisions, overturns, "
    "bonuses, suspensions, payout batches, refunds, person-only resolutions), newest first: who, what, "
    "when and why. Written in the transaction of the change it records; append-only (the database "
    "refuses to update or delete a row). Filter by ?actor=, ?action= (exact, or `kind.*`) and ?subject=."))
def list_audit_events(args):
    rows, next_cursor = service.list_events(**args)
    return {"data": rows, "next_cursor": next_cursor}
