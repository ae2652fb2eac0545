"""One place that turns every exception into an RFC 9457 problem document."""

from __future__ import annotations

import logging
from http import HTTPStatus

import psycopg
import sqlalchemy as sa
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from marketplace.db.failures import database_unavailable
from marketplace.errors import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://docs.marketplace.example/problems/"


def problem_body(status: int, detail: str | None = None, *, title: str | None = None,
                 slug: str | None = None) -> dict:
    """The members every problem document has (also what gunicorn.conf.py writes for gunicorn's own
    refusals, which never reach the app)."""
    phrase = HTTPStatus(status).phrase
    return {
        "type": PROBLEM_BASE + (slug or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
    }


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    slug: str | None = None,
    errors: dict | None = None,
    headers: dict | None = None,
    extra: dict | None = None,
) -> Response:
    body = problem_body(status, detail, title=title, slug=slug)
    if errors:
        body["errors"] = errors
    body.update(extra or {})  # extension members (RFC 9457 §3.2)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def field_errors(messages) -> dict:
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
        errors = field_errors(data["messages"])
        return problem(422, _describe(errors), slug="invalid-input", errors=errors)
    if status == 400 and "messages" in data:
        errors = field_errors(data["messages"])
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
