"""HTTP routes of events: a brand's own events, for brands that poll rather than take webhooks."""

from __future__ import annotations

from marketplace.auth import BEARER, current_principal, role_required, scope_required
from marketplace.events import schemas, service
from marketplace.http.blueprint import Blueprint

blp = Blueprint("events", __name__, description="What happened to a brand's briefs and submissions")


@blp.route("/v1/events", methods=["GET"])
@role_required("brand")
@scope_required("briefs:read")
@blp.arguments(schemas.EventListArgs(), location="query")
@blp.response(200, schemas.EventPage)
@blp.doc(security=BEARER, summary="Your events, newest first", description=(
    "Every event about your briefs and submissions, the same objects webhooks deliver: "
    "{id: evt_…, type, created_at, data: {object}}. Each is written in the transaction of the change it "
    "reports, so nothing is listed that did not happen. ?type= narrows to one type."))
def list_events(args):
    rows, next_cursor = service.list_events(current_principal().id, type=args["type"], limit=args["limit"],
                                            cursor=args["cursor"])
    return {"data": rows, "next_cursor": next_cursor}
