"""API keys, worker tokens, roles, and the decorator routes use to require them."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import g, request
from werkzeug.exceptions import BadRequest, UnprocessableEntity

from marketplace.auth.service import Principal, authenticate
from marketplace.errors import Forbidden, InvalidInput, Unauthorized

BEARER = [{"bearerAuth": []}]


def current_principal() -> Principal:
    return g.principal


def bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized()
    return secret.strip()


def authenticated_principal() -> Principal:
    """The caller behind the bearer secret, looked up once per request."""
    if "principal" not in g:
        g.principal = authenticate(bearer_secret())
    return g.principal


def require_role(principal: Principal, roles: tuple[str, ...]) -> Principal:
    if principal.role not in roles:
        raise Forbidden(f"This action is for {' or '.join(roles)} credentials.")
    return principal


def role_required(*roles: str):
    """Let a request in only with a valid bearer secret of one of these roles (else 401/403)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            require_role(authenticated_principal(), roles)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def authenticated_before_refusal(allowed: Callable[[Principal], Principal]):
    """For a view that authenticates inside its own one statement: when the request is refused for
    its body first (422, 400), the caller is checked then, with the same `allowed` rule the view
    applies, so a bad key still hears 401 and the wrong role 403 before anything about the body,
    as from every other route."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except (InvalidInput, UnprocessableEntity, BadRequest):
                allowed(authenticated_principal())
                raise

        return wrapper

    return decorator


def forget_principal() -> None:
    """Per-request state must not outlive the request, even where an app context does."""
    g.pop("principal", None)
