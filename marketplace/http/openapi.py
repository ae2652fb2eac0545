"""The OpenAPI spec's account of errors and of the Idempotency-Key header.

flask-smorest documents errors with a schema of its own (`code`, `status` as a string,
`message`) as application/json; every error here is an RFC 9457 problem document. So the Api
registers its shared error responses with `Problem` as application/problem+json, and a small
apispec plugin lists on each operation the errors it can answer: 401 and 403 where it needs
credentials, 404 where its path names an object, 400, 413, 415 and 422 where it takes a body, 409
on POSTs that honour the Idempotency-Key (a key reused, a state conflict) or create something (an
email taken), the Idempotency-Key header on those that honour it and create something, 429 where
a rate limit applies, 502 where it calls Stripe, and 414, 431 and 503 everywhere (a URL or header
past the limits, the database unreachable). It also states the API-key scope an operation needs
(`x-required-scope`, and a line of its description), as its view declares it
(marketplace.auth.scope_required). An operation whose answer shows a secret once documents the
Cache-Control: no-store and Pragma: no-cache headers on its 2xx answers (marketplace.http.no_store).
What a route is comes from the marks on its view (marketplace.http.route_facts).
"""

from __future__ import annotations

import http
import json

from apispec import BasePlugin
from flask import Flask, current_app
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields

from marketplace.auth import required_scope
from marketplace.http import examples, no_store, route_facts
from marketplace.http.idempotency import HEADER, MAX_KEY_LENGTH
from marketplace.http.problems import PROBLEM_JSON


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

    def documented_spec(self) -> dict:
        """The spec as served: every JSON body with an example (marketplace.http.examples)."""
        # Imported here: marketplace.http is imported by the domains, so it cannot import one at the top.
        from marketplace.events import documents as event_documents

        return event_documents.document(examples.document(self.spec.to_dict()))

    def _openapi_json(self):
        return current_app.response_class(json.dumps(self.documented_spec(), indent=2), mimetype="application/json")

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


NO_STORE_HEADERS = {
    "Cache-Control": "no-store: the answer carries a secret shown this once; no browser, proxy or CDN may keep it.",
    "Pragma": "no-cache, for HTTP/1.0 caches: the answer carries a secret shown this once.",
}


def _header_component(name: str) -> str:
    return "NoStore" + name.replace("-", "")


class ErrorResponses(BasePlugin):
    """Lists on every /v1/ operation the errors it can answer (see the module's docstring)."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app  # whose view_functions hold each operation's view and its marks

    def init_spec(self, spec):
        super().init_spec(spec)
        spec.components.parameter(HEADER, "header", {
            "name": HEADER, "required": False, "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
            "description": ("Any unique string. The same key with the same body, from the same caller within 24 "
                            "hours, gets the first response back instead of creating again; with another body, "
                            "409. Not stored for sign-up and login, whose responses carry secrets.")})
        for name, description in NO_STORE_HEADERS.items():
            spec.components.header(_header_component(name), {
                "description": description, "schema": {"type": "string", "enum": [no_store.HEADERS[name]]},
                "example": no_store.HEADERS[name]})

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        if not path or not path.startswith("/v1/") or not operations:
            return
        view = self.app.view_functions.get(rule.endpoint) if rule is not None else None
        for method, operation in operations.items():
            facts = route_facts.facts_of(view, method)
            scope = required_scope(view, method) if view is not None else None
            if scope is not None:
                operation["x-required-scope"] = scope
                operation["description"] = (operation.get("description", "") + "\n\n" if operation.get("description")
                                            else "") + (f"A brand's API key needs the `{scope}` scope (else 403).")
            honours_key = method == "post" and route_facts.IGNORES_IDEMPOTENCY_KEY not in facts
            responses = operation.setdefault("responses", {})
            if route_facts.SHOWS_SECRET in facts:
                for code, response in responses.items():
                    if str(code).startswith("2") and isinstance(response, dict):
                        headers = response.setdefault("headers", {})
                        for name in NO_STORE_HEADERS:
                            headers[name] = _header_component(name)
            wanted = []
            if operation.get("security"):
                wanted += [http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.FORBIDDEN]
            if "{" in path:
                wanted.append(http.HTTPStatus.NOT_FOUND)
            if method in ("post", "put", "patch"):
                wanted += [http.HTTPStatus.BAD_REQUEST, http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           http.HTTPStatus.UNSUPPORTED_MEDIA_TYPE]
            creates = method == "post" and any(str(code) in ("201", "202") for code in responses)
            if honours_key or creates:
                wanted.append(http.HTTPStatus.CONFLICT)  # a key reused, a state conflict, an email taken
            if honours_key and creates:
                operation.setdefault("parameters", []).append(HEADER)
            if route_facts.RATE_LIMITED in facts:
                wanted.append(http.HTTPStatus.TOO_MANY_REQUESTS)
            if method == "post":
                wanted.append(http.HTTPStatus.UNPROCESSABLE_ENTITY)  # (bodies some views read by hand)
            if route_facts.CALLS_STRIPE in facts:
                wanted.append(http.HTTPStatus.BAD_GATEWAY)
            # Anyone can send a URL or header past the limits (marketplace.http.guards).
            wanted += [http.HTTPStatus.REQUEST_URI_TOO_LONG, http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE]
            wanted.append(http.HTTPStatus.SERVICE_UNAVAILABLE)  # the database (or Stripe) unreachable
            for status in wanted:
                responses.setdefault(str(status.value), status.name)
