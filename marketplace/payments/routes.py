"""Stripe's webhook endpoint."""

from __future__ import annotations

from flask import current_app, request
from marshmallow import Schema, fields

from marketplace.http.blueprint import Blueprint
from marketplace.http.problems import problem
from marketplace.http.route_facts import ignores_idempotency_key
from marketplace.payments import gateway, service

blp = Blueprint("stripe_webhooks", __name__, description="Stripe webhooks")


class WebhookOut(Schema):
    received = fields.Boolean()
    handled = fields.Boolean(metadata={"description": "False for an event id handled before (a replay)."})


@blp.route("/v1/webhooks/stripe", methods=["POST"])
@blp.response(200, WebhookOut)
@blp.doc(description="Stripe events, verified by the Stripe-Signature header (400 when it fails; "
         "timestamps more than 5 minutes old or ahead are refused). Each event id is handled once; "
         "a replay answers 200 with handled=false.",
         parameters=[{"in": "header", "name": "Stripe-Signature", "required": True, "schema": {"type": "string"},
                      "description": "Stripe's signature of the raw body with the webhook secret."}])
@ignores_idempotency_key
def stripe_webhook():
    try:
        handled = service.handle_webhook(request.get_data(cache=False), request.headers.get("Stripe-Signature"),
                                         current_app.extensions["stripe_events"])
    except gateway.SignatureVerificationError:
        return problem(400, "The Stripe-Signature header does not verify.", slug="bad-signature")
    return {"received": True, "handled": handled}
