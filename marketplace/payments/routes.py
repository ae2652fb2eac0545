"""Stripe's webhook endpoint."""

from __future__ import annotations

from flask import current_app, request
from marshmallow import Schema, fields

from marketplace.http.blueprint import Blueprint
from marketplace.http.problems import problem
from marketplace.http.route_facts import ignores_idempotency_key
from marketplace.payments import gateway, service

blp = Blueprint("stripe_webhooks", __name__, description="Stripe webhooks")


# Stripe's Event object (https://docs.stripe.com/api/events/object), as far as we read it.
STRIPE_EVENT_BODY = {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["id", "type", "data"], "properties": {
        "id": {"type": "string", "example": "evt_1QxYz2AbCdEfGhIj"},
        "object": {"type": "string", "enum": ["event"]},
        "type": {"type": "string", "example": "payment_intent.succeeded"},
        "account": {"type": "string", "description": "The connected account, on the Connect endpoint."},
        "created": {"type": "integer", "description": "Unix seconds."},
        "data": {"type": "object", "properties": {"object": {"type": "object"}}},
    }},
    "example": {"id": "evt_1QxYz2AbCdEfGhIj", "object": "event", "type": "payment_intent.succeeded",
                "created": 1796300000, "data": {"object": {"id": "pi_3QxYz2AbCdEfGhIj", "object": "payment_intent",
                                                           "amount": 52000, "currency": "gbp",
                                                           "status": "succeeded"}}},
}}}


class WebhookOut(Schema):
    received = fields.Boolean()
    handled = fields.Boolean(metadata={"description": "False for an event id handled before (a replay)."})


@blp.route("/v1/webhooks/stripe", methods=["POST"])
@blp.response(200, WebhookOut)
@blp.doc(summary="Receive a Stripe event", description="Stripe events, verified by the Stripe-Signature header (400 bad-signature when it fails; "
         "400 malformed-event for a signed payload that is no readable event object; "
         "timestamps more than 5 minutes old or ahead are refused). Each event id is handled once; "
         "a replay answers 200 with handled=false.",
         requestBody=STRIPE_EVENT_BODY,
         parameters=[{"in": "header", "name": "Stripe-Signature", "required": True, "schema": {"type": "string"},
                      "description": "Stripe's signature of the raw body with the webhook secret."}])
@ignores_idempotency_key
def stripe_webhook():
    try:
        handled = service.handle_webhook(request.get_data(cache=False), request.headers.get("Stripe-Signature"),
                                         current_app.extensions["stripe_events"])
    except gateway.SignatureVerificationError:
        return problem(400, "The Stripe-Signature header does not verify.", slug="bad-signature")
    except gateway.MalformedEvent as exc:
        return problem(400, str(exc), slug="malformed-event")
    return {"received": True, "handled": handled}


@blp.route("/v1/webhooks/stripe/connect", methods=["POST"])
@blp.response(200, WebhookOut)
@blp.doc(description="Stripe's Connect endpoint: events of connected accounts (account.updated, "
         "payout.failed, …), which Stripe sends to a Connect endpoint only, signed with its own secret "
         "(STRIPE_CONNECT_WEBHOOK_SECRET). Verified, recorded once and handled as the platform endpoint's.",
         requestBody=STRIPE_EVENT_BODY,
         parameters=[{"in": "header", "name": "Stripe-Signature", "required": True, "schema": {"type": "string"},
                      "description": "Stripe's signature of the raw body with the Connect endpoint's secret."}])
@ignores_idempotency_key
def stripe_connect_webhook():
    try:
        handled = service.handle_webhook(request.get_data(cache=False), request.headers.get("Stripe-Signature"),
                                         current_app.extensions["stripe_events"],
                                         secret_setting="STRIPE_CONNECT_WEBHOOK_SECRET")
    except gateway.SignatureVerificationError:
        return problem(400, "The Stripe-Signature header does not verify.", slug="bad-signature")
    except gateway.MalformedEvent as exc:
        return problem(400, str(exc), slug="malformed-event")
    return {"received": True, "handled": handled}
