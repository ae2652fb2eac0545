"""One place that turns every exception into an RFC 9457 problem document."""

from __future__ import annotations

import logging
from http import HTTPStatus

import psycopg
import sqlalchemy as sa
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://docs.marketplace.example/problems/"


class DomainError(Exception):
    """A rule of the domain said no. Services raise these; routes never catch them."""

    status = 400
    slug = "bad-request"

    def __init__(self, detail: str, *, errors: dict | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class InvalidInput(DomainError):
    status = 422
    slug = "invalid-input"

    @classmethod
    def field(cls, name: str, message: str) -> InvalidInput:
        return cls(f"{name}: {message}", errors={name: [message]})


class NotFound(DomainError):
    status = 404
    slug = "not-found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"

    def __init__(self, detail: str = "Valid credentials are required.", **kw):
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="marketplace"'})
        super().__init__(detail, **kw)


class RateLimited(DomainError):
    status = 429
    slug = "rate-limited"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after)))})


class ServiceUnavailable(DomainError):
    status = 503
    slug = "service-unavailable"


class BadGateway(DomainError):
    status = 502
    slug = "upstream-error"


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    slug: str | None = None,
    errors: dict | None = None,
    headers: dict | None = None,
) -> Response:
    phrase = HTTPStatus(status).phrase
    body: dict = {
        "type": PROBLEM_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
    }
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs_messages(messages) -> dict:
    """webargs nests errors by location ({"json": {...}}); clients want fields."""
    if isinstance(messages, dict):
        merged: dict = {}
        locations = {"json", "form", "query", "querystring", "files", "headers", "view_args"}
        if messages and set(messages) <= locations:
            for inner in messages.values():
                merged.update(_normalise_field_errors(inner))
            return merged
        return _normalise_field_errors(messages)
    return {"_schema": [str(messages)]}


def _normalise_field_errors(errors, prefix: str = "") -> dict:
    """{"task_groups": {0: {"kind": ["…"]}}} → {"task_groups[0].kind": ["…"]}."""
    flat: dict = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
            if isinstance(value, dict):
                flat.update(_normalise_field_errors(value, name))
            else:
                flat[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
    elif isinstance(errors, list):
        flat[prefix or "_schema"] = [str(v) for v in errors]
    return flat


def _describe(errors: dict) -> str:
    first = next(iter(errors.items()), None)
    if not first:
        return "The request has invalid fields."
    name, messages = first
    more = len(errors) - 1
    suffix = f" (and {more} more field{'s' if more > 1 else ''})" if more else ""
    return f"{name}: {messages[0]}{suffix}"


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if status == 422 and "messages" in data:
        errors = _flatten_webargs_messages(data["messages"])
        return problem(422, _describe(errors), slug="invalid-input", errors=errors)
    if status == 400 and "messages" in data:
        errors = _flatten_webargs_messages(data["messages"])
        return problem(400, _describe(errors), slug="malformed-request", errors=errors)
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    detail = {
        404: f"No resource at {request.path}.",
        405: f"{request.method} is not allowed on {request.path}.",
        413: "The request body is too large.",
        415: "Unsupported media type: send application/json (or multipart/form-data for uploads).",
    }.get(status, error.description)
    return problem(status, detail, headers=headers)


def handle_domain_error(error: DomainError) -> Response:
    return problem(error.status, error.detail, slug=error.slug, errors=error.errors, headers=error.headers)


# SQLSTATE classes that say "not now" rather than "wrong": connection exceptions, transaction
# rollbacks (deadlock, serialization), insufficient resources, operator intervention (cancelled,
# shutting down).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def database_unavailable(error: Exception) -> bool:
    """A lost or refused connection, a deadlock, a statement timeout, a locked SQLite file: nothing
    the client did wrong, and a retry may well succeed. Anything else an OperationalError can be
    (a missing table, bad SQL on SQLite) is a bug of ours and stays a logged 500."""
    if getattr(error, "connection_invalidated", False):
        return True
    driver_error = getattr(error, "orig", error)
    if isinstance(driver_error, psycopg.OperationalError):
        state = driver_error.sqlstate
        return state is None or state[:2] in _TRANSIENT_SQLSTATE_CLASSES  # None: failed client-side
    return "database is locked" in str(driver_error)


def handle_database_error(error: Exception) -> Response:
    if not database_unavailable(error):
        return handle_unexpected(error)
    log.warning("database unavailable on %s %s: %s", request.method, request.path, type(error).__name__)
    return problem(503, "The database is unavailable just now; retry shortly.", slug="service-unavailable",
                   headers={"Retry-After": "1"})


def handle_unexpected(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "Something went wrong on our side; it has been logged.")


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(sa.exc.OperationalError, handle_database_error)
    app.register_error_handler(psycopg.OperationalError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
