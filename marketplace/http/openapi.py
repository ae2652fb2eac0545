"""The OpenAPI spec's account of errors and of the Idempotency-Key header.

flask-smorest documents errors with a schema of its own (`code`, `status` as a string,
`message`) as application/json; every error here is an RFC 9457 problem document. So the Api
registers its shared error responses with `Problem` as application/problem+json, and a small
apispec plugin lists on each operation the errors it can answer: 401 and 403 where it needs
credentials, 404 where its path names an object, 400, 413, 415 and 422 where it takes a body, 409
on POSTs and the Idempotency-Key header on those that create something, 429 where a rate limit
applies, 502 where it calls Stripe, and 503 everywhere (the database unreachable).
"""

from __future__ import annotations

import http

from apispec import BasePlugin
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields

from marketplace.http.idempotency import EXEMPT_PATHS, HEADER, MAX_KEY_LENGTH
from marketplace.http.problems import PROBLEM_JSON

RATE_LIMITED = ("/v1/task-groups/{group_id}/claim", "/v1/tasks/{task_id}/submissions")
# Operations that call Stripe while the client waits: 502 when it refuses or does not answer,
# 503 when it is not configured here.
CALLS_STRIPE = ("/v1/briefs/{brief_id}/fund", "/v1/me/payout-account")


class Problem(Schema):
    """An RFC 9457 problem document."""

    type = fields.String(metadata={"description": "A URI naming the kind of problem."})
    title = fields.String(metadata={"description": "The HTTP status's phrase, or a short summary."})
    status = fields.Integer(metadata={"description": "The HTTP status code."})
    detail = fields.String(metadata={"description": "What went wrong this time, for a person."})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "Per field (dotted path for nested ones, e.g. task_groups.0.quantity): its messages."})


class MarketplaceApi(Api):
    """flask-smorest's Api, its shared error responses documented as problem documents."""

    ERROR_SCHEMA = Problem

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


class ErrorResponses(BasePlugin):
    """Lists on every /v1/ operation the errors it can answer (see the module's docstring)."""

    def init_spec(self, spec):
        super().init_spec(spec)
        spec.components.parameter(HEADER, "header", {
            "name": HEADER, "required": False, "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
            "description": ("Any unique string. The same key with the same body, from the same caller within 24 "
                            "hours, gets the first response back instead of creating again; with another body, "
                            "409. Not stored for sign-up and login, whose responses carry secrets.")})

    def operation_helper(self, path=None, operations=None, **kwargs):
        if not path or not path.startswith("/v1/") or not operations:
            return
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            wanted = []
            if operation.get("security"):
                wanted += [http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.FORBIDDEN]
            if "{" in path:
                wanted.append(http.HTTPStatus.NOT_FOUND)
            if method in ("post", "put", "patch"):
                wanted += [http.HTTPStatus.BAD_REQUEST, http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           http.HTTPStatus.UNSUPPORTED_MEDIA_TYPE]
            if method == "post" and not path.startswith(("/v1/webhooks/", "/v1/auth/")):
                wanted.append(http.HTTPStatus.CONFLICT)  # a state conflict, an email taken, a key reused
            creates = method == "post" and any(str(code) in ("201", "202") for code in responses)
            if creates and not path.startswith(EXEMPT_PATHS):
                operation.setdefault("parameters", []).append(HEADER)
            if path in RATE_LIMITED:
                wanted.append(http.HTTPStatus.TOO_MANY_REQUESTS)
            if method == "post":
                wanted.append(http.HTTPStatus.UNPROCESSABLE_ENTITY)  # (bodies some views read by hand)
            if method == "post" and path in CALLS_STRIPE:
                wanted.append(http.HTTPStatus.BAD_GATEWAY)
            wanted.append(http.HTTPStatus.SERVICE_UNAVAILABLE)  # the database (or Stripe) unreachable
            for status in wanted:
                responses.setdefault(str(status.value), status.name)
