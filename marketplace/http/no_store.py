"""Answers that carry a secret shown once are never cached: Cache-Control: no-store, and Pragma:
no-cache for HTTP/1.0 caches, on every answer of a view marked route_facts.shows_secret (its
errors too, and an Idempotency-Key replay, which carries the secret again)."""

from __future__ import annotations

from flask import Flask, Response

from marketplace.http import route_facts

HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def after_request(response: Response) -> Response:
    if route_facts.SHOWS_SECRET in route_facts.of_request():
        response.headers.update(HEADERS)
    return response


def register(app: Flask) -> None:
    app.after_request(after_request)
