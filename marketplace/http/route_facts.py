"""What a route is, written on its view: it calls Stripe, it is rate-limited, it ignores the
Idempotency-Key, it accepts an upload, it shows a secret. The OpenAPI plugin, the idempotency hooks and the request
guards read these marks from the view; no module keeps a list of paths.

A mark goes on a view function (above or below flask-smorest's decorators: they copy it along),
on a MethodView's method, or on a MethodView class (then it holds for every method).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app, request

View = TypeVar("View", bound=Callable)

CALLS_STRIPE = "calls_stripe"
RATE_LIMITED = "rate_limited"
IGNORES_IDEMPOTENCY_KEY = "ignores_idempotency_key"
ACCEPTS_UPLOAD = "accepts_upload"
SHOWS_SECRET = "shows_secret"

_ATTR = "_route_facts"


def _mark(view: View, fact: str) -> View:
    setattr(view, _ATTR, getattr(view, _ATTR, frozenset()) | {fact})
    return view


def calls_stripe(view: View) -> View:
    """Calls Stripe while the client waits: 502 when Stripe refuses or does not answer."""
    return _mark(view, CALLS_STRIPE)


def rate_limited(view: View) -> View:
    """Limited per caller (marketplace.http.ratelimit): 429 with Retry-After."""
    return _mark(view, RATE_LIMITED)


def ignores_idempotency_key(view: View) -> View:
    """Its responses are never stored under an Idempotency-Key: sign-up and login hand out
    secrets, and Stripe's webhooks are made idempotent by their event ids."""
    return _mark(view, IGNORES_IDEMPOTENCY_KEY)


def accepts_upload(view: View) -> View:
    """Takes multipart/form-data bodies up to MAX_UPLOAD_BYTES (JSON bodies stay small)."""
    return _mark(view, ACCEPTS_UPLOAD)


def shows_secret(view: View) -> View:
    """Its answer carries a secret (an API key, a token, a signing secret shown this once; a
    PaymentIntent's client_secret, which Stripe says not to log or store): sent with
    Cache-Control: no-store and Pragma: no-cache (marketplace.http.no_store), as Stripe and GitHub
    do, so no browser, proxy or CDN keeps a copy."""
    return _mark(view, SHOWS_SECRET)


def facts_of(view: Callable | None, method: str) -> frozenset[str]:
    """The marks of a view as registered in app.view_functions (a MethodView's too), for one method."""
    if view is None:
        return frozenset()
    facts = getattr(view, _ATTR, frozenset())
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        facts = facts | getattr(view_class, _ATTR, frozenset())
        facts = facts | getattr(getattr(view_class, method.lower(), None), _ATTR, frozenset())
    return facts


def of_request() -> frozenset[str]:
    """The marks of the view this request is routed to; none when it is routed nowhere (404, 405)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return facts_of(view, request.method)
