"""Stripe's webhook endpoint."""

from __future__ import annotations

from flask import request

from marketplace.errors import problem
from marketplace.payments import gateway, service
from marketplace.routes import Blueprint

blp = Blueprint("stripe_webhooks", __name__, description="Stripe webhooks")


@blp.route("/v1/webhooks/stripe", methods=["POST"])
@blp.doc(description="Stripe events, verified by the Stripe-Signature header (400 when it fails; "
         "timestamps more than 5 minutes old or ahead are refused). Each event id is handled once; "
         "a replay answers 200 with handled=false.")
def stripe_webhook():
    try:
        handled = service.handle_webhook(request.get_data(cache=False), request.headers.get("Stripe-Signature"))
    except gateway.SignatureVerificationError:
        return problem(400, "The Stripe-Signature header does not verify.", slug="bad-signature")
    return {"received": True, "handled": handled}
