"""Stripe stand-in: a stateful, in-memory double of the Stripe v1 API subset the marketplace uses.

A test and offline tool, not part of the application: the real ``stripe`` library talks to it
over HTTP. Run standalone with ``python -m stripe_standin --port 12111``.
"""

from stripe_standin.server import StripeError, StripeStandIn, parse_form, sign_payload

__all__ = ["StripeError", "StripeStandIn", "parse_form", "sign_payload"]
