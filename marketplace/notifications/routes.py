"""HTTP routes of a worker's notifications: the feed and marking it read."""

from __future__ import annotations

from marketplace.auth import BEARER, current_principal, role_required
from marketplace.http.blueprint import Blueprint
from marketplace.notifications import schemas, service

blp = Blueprint("notifications", __name__, description="A worker's notifications")


@blp.route("/v1/me/notifications", methods=["GET"])
@role_required("worker")
@blp.arguments(schemas.NotificationListArgs(), location="query")
@blp.response(200, schemas.NotificationPage)
@blp.doc(security=BEARER, summary="Your notifications, newest first", description=(
    "Approved, rejected (with the reason), revision requested, paid, bonus, appeal decided; ?unread=true for "
    "those not read yet. Also e-mailed when the service has SMTP_URL set."))
def list_notifications(args):
    worker_id = current_principal().id
    rows, next_cursor = service.list_for(worker_id, unread=args["unread"], limit=args["limit"], cursor=args["cursor"])
    return {"data": rows, "unread": service.unread_count(worker_id), "next_cursor": next_cursor}


@blp.route("/v1/me/notifications/read", methods=["POST"])
@role_required("worker")
@blp.arguments(schemas.MarkReadIn(), example={"ids": ["ntf_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"]})
@blp.response(200, schemas.MarkReadOut)
@blp.doc(security=BEARER, summary="Mark notifications read", description=(
    'By id (yours; others are ignored), or {"ids": "all"}. Marking one already read changes nothing.'))
def mark_read(data):
    worker_id = current_principal().id
    marked = service.mark_read(worker_id, None if data["ids"] == "all" else data["ids"])
    return {"marked": marked, "unread": service.unread_count(worker_id)}
