"""Request guards that run before any view: the size of the request line and headers, body size
limits, media types, and text in the path, query string and Idempotency-Key that the database
could not store (see marketplace.http.inputs). A path with such text names nothing (404); a query
string or key with it is a 422."""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import (
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
    UnsupportedMediaType,
)

from marketplace.errors import NotFound
from marketplace.http import route_facts
from marketplace.http.inputs import refuse_unstorable, storable

# The app answers oversized request heads itself, as problem documents: gunicorn's own limits
# (gunicorn.conf.py) sit above these, so only a head past both meets the server's answer.
MAX_URI_BYTES = 4096
MAX_HEADER_FIELD_BYTES = 8192
MAX_HEADER_BYTES = 32768


def _limit_request_head():
    environ = request.environ
    # As sent: gunicorn keeps the raw target, werkzeug's server the request URI; else rebuild it.
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (
        environ.get("PATH_INFO", "") + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""))
    if len(uri) > MAX_URI_BYTES:
        raise RequestURITooLarge(f"The request's URL is {len(uri)} bytes; at most {MAX_URI_BYTES} are read "
                                 "(a cursor or filter this long is not one of ours).")
    total = 0
    for name, value in request.headers.items():
        size = len(name) + 2 + len(value)
        total += size
        if size > MAX_HEADER_FIELD_BYTES:
            raise RequestHeaderFieldsTooLarge(f"The {name} header is {size} bytes; at most "
                                              f"{MAX_HEADER_FIELD_BYTES} are read per header.")
    if total > MAX_HEADER_BYTES:
        raise RequestHeaderFieldsTooLarge(f"The request's headers are {total} bytes together; at most "
                                          f"{MAX_HEADER_BYTES} are read.")


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
    app.before_request(_limit_request_head)
    app.before_request(_answer_routing_errors)
    app.before_request(_guard)
    app.before_request(_refuse_unstorable_text)
