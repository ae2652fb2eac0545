"""HTTP routes of webhooks: a brand's endpoints, their deliveries, and sending an event again."""

from __future__ import annotations

from marketplace.auth import BEARER, current_principal, role_required, scope_required
from marketplace.http.blueprint import Blueprint
from marketplace.http.pagination import ListArgs
from marketplace.http.route_facts import shows_secret
from marketplace.webhooks import schemas, service
from workers import webhooks as webhook_jobs

blp = Blueprint("webhooks", __name__, description="Signed webhooks of a brand's events (Standard Webhooks)")


@blp.record_once
def _deliveries_go_to_the_job_layer(state) -> None:
    """The wiring: new deliveries' endpoints are enqueued (workers.webhooks) once their commit is in."""
    state.app.extensions[service.DELIVER_SOON] = webhook_jobs.deliver_soon


@blp.route("/v1/webhook-endpoints", methods=["POST"])
@role_required("brand")
@scope_required("webhooks:write")
@blp.arguments(schemas.EndpointIn(), example=schemas.ENDPOINT_EXAMPLE)
@blp.response(201, schemas.EndpointWithSecret)
@blp.doc(security=BEARER, summary="Register a webhook endpoint", description=(
    "Events of the given types are POSTed to the URL, signed per Standard Webhooks (webhook-id = the event id, "
    "webhook-timestamp, webhook-signature), so any Standard Webhooks library verifies them with the secret, "
    "shown in this answer only. Delivered at least once, retried with back-off for about 3 days on a timeout, "
    "a network error or a non-2xx answer. 422 for an unknown event type, a URL that is not https or points at "
    "a private, loopback or link-local address."))
@shows_secret
def create_endpoint(data):
    return service.create_endpoint(current_principal().id, url=data["url"], events=data["events"])


@blp.route("/v1/webhook-endpoints", methods=["GET"])
@role_required("brand")
@scope_required("webhooks:write")
@blp.arguments(ListArgs(), location="query")
@blp.response(200, schemas.EndpointPage)
@blp.doc(security=BEARER, summary="Your webhook endpoints, newest first", description="Never their secrets.")
def list_endpoints(args):
    rows, next_cursor = service.list_endpoints(current_principal().id, limit=args["limit"], cursor=args["cursor"])
    return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/webhook-endpoints/<string:endpoint_id>", methods=["DELETE"])
@role_required("brand")
@scope_required("webhooks:write")
@blp.response(204)
@blp.doc(security=BEARER, summary="Delete a webhook endpoint", description=(
    "Nothing more is sent to it, and its delivery history goes with it. 404 for another brand's."))
def delete_endpoint(endpoint_id):
    service.delete_endpoint(current_principal().id, endpoint_id)


@blp.route("/v1/webhook-endpoints/<string:endpoint_id>/rotate-secret", methods=["POST"])
@role_required("brand")
@scope_required("webhooks:write")
@blp.response(200, schemas.EndpointWithSecret)
@blp.doc(security=BEARER, summary="Rotate an endpoint's secret", description=(
    "A new secret, shown this once. For 24 hours the old secret keeps signing alongside it (webhook-signature "
    "carries both signatures, space-separated), so you can deploy the new one without missing a delivery."))
@shows_secret
def rotate_secret(endpoint_id):
    return service.rotate_secret(current_principal().id, endpoint_id)


@blp.route("/v1/webhook-endpoints/<string:endpoint_id>/enable", methods=["POST"])
@role_required("brand")
@scope_required("webhooks:write")
@blp.response(200, schemas.EndpointOut)
@blp.doc(security=BEARER, summary="Enable a disabled webhook endpoint", description=(
    "An endpoint is disabled when a delivery failed for the whole retry schedule (about 3 days). Once your "
    "receiver is fixed, this turns it back on: new events are sent to it again, and its failure streak starts "
    "over: each of its pending deliveries is due now, at the start of the retry schedule (attempt_count 0; its "
    "earlier attempts stay listed). Deliveries that failed while it was disabled stay failed: send their events "
    "again with POST /v1/events/{id}/redeliver. An endpoint that is enabled already is answered as it is. 404 "
    "for another brand's."))
def enable_endpoint(endpoint_id):
    return service.enable_endpoint(current_principal().id, endpoint_id)


@blp.route("/v1/webhook-endpoints/<string:endpoint_id>/deliveries", methods=["GET"])
@role_required("brand")
@scope_required("webhooks:write")
@blp.arguments(ListArgs(), location="query")
@blp.response(200, schemas.DeliveryPage)
@blp.doc(security=BEARER, summary="An endpoint's deliveries, newest first", description=(
    "Each event sent to it, with every attempt: when, the status code, the duration and the error."))
def list_deliveries(args, endpoint_id):
    rows, next_cursor = service.list_deliveries(current_principal().id, endpoint_id, limit=args["limit"],
                                                cursor=args["cursor"])
    return {"data": rows, "next_cursor": next_cursor}


@blp.route("/v1/events/<string:event_id>/redeliver", methods=["POST"])
@role_required("brand")
@scope_required("webhooks:write")
@blp.response(202, schemas.RedeliverOut)
@blp.doc(security=BEARER, summary="Send an event again", description=(
    "To each of your enabled endpoints that takes its type, as a new delivery due now. 404 for another "
    "brand's event."))
def redeliver(event_id):
    return {"event_id": event_id, "deliveries": service.redeliver(current_principal().id, event_id)}
