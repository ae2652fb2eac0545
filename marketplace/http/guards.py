"""Request guards that run before any view: body size limits, media types, and text in the path,
query string and Idempotency-Key that the database could not store (see marketplace.http.inputs).
A path with such text names nothing (404); a query string or key with it is a 422."""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from marketplace.errors import NotFound
from marketplace.http import route_facts
from marketplace.http.inputs import refuse_unstorable, storable


def _answer_routing_errors():
    """A request routed nowhere is answered as such (404, 405, a redirect) before any guard looks at
    its body or headers: a PUT on /v1/briefs is 405 whatever its media type."""
    if request.routing_exception is not None:
        current_app.raise_routing_exception(request)


def _guard():
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    upload = route_facts.ACCEPTS_UPLOAD in route_facts.of_request()
    limit = current_app.config["MAX_UPLOAD_BYTES"] + 256 * 1024 if upload else current_app.config["MAX_JSON_BYTES"]
    # Applies to chunked bodies too: werkzeug stops reading past the limit.
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding") == "chunked"
    if not has_body:
        return
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return
    if upload and mimetype == "multipart/form-data":
        return
    raise UnsupportedMediaType()


def _refuse_unstorable_text():
    if not storable(request.path):
        raise NotFound("Nothing is found at a path with such characters.")
    refuse_unstorable(request.args.items(multi=True), "The query string", "query")
    if "Idempotency-Key" in request.headers:
        refuse_unstorable([("Idempotency-Key", request.headers["Idempotency-Key"])], "The header", "Idempotency-Key")


def register(app: Flask) -> None:
    app.before_request(_answer_routing_errors)
    app.before_request(_guard)
    app.before_request(_refuse_unstorable_text)
