"""Stripe stand-in: a stateful, in-memory fake of the Stripe v1 API subset the marketplace uses.

A test double of an outside system, so it lives beside the application, not inside it.

The real ``stripe`` library talks to it over HTTP::

    standin = StripeStandIn(webhook_url="http://127.0.0.1:5000/webhooks/stripe",
                            webhook_secret="whsec_test").start()
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.url})

Covered: PaymentIntents, Checkout Sessions, Charges (read), Refunds, Connect Accounts,
Account Links, Transfers (+ reversals), Balance, Events; Stripe's Idempotency-Key rules;
signed webhooks sent from a background thread; and test controls under ``/_standin/…``
(also available as methods on :class:`StripeStandIn`). Run standalone with
``python -m stripe_standin --port 12111``.
"""

from stripe_standin.events import sign_payload
from stripe_standin.protocol import StripeError, parse_form
from stripe_standin.server import StripeStandIn

__all__ = ["StripeError", "StripeStandIn", "parse_form", "sign_payload"]
