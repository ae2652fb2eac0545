"""API keys, worker tokens, roles, and the decorators routes use to require them.

A brand's API key carries scopes (marketplace.auth.service.BRAND_SCOPES). Every brand route
declares the one it needs, under its role check:

    @blp.route("/v1/webhook-endpoints", methods=["POST"])
    @role_required("brand", "admin")
    @scope_required("webhooks:write")
    def create_endpoint(data): ...

A key without that scope is answered 403 naming it; callers with full rights (worker tokens, admin
keys, the brand's sign-up key) pass. The declaration is also read by the OpenAPI spec, which
states each operation's scope (`x-required-scope` and its description). A view that authenticates
inside its own statement calls `service.require_scope(principal, scope)` itself and declares the
scope with `declares_scope(scope)`, which only marks the view.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import g, request
from werkzeug.exceptions import BadRequest, UnprocessableEntity

from marketplace.auth.service import Principal, authenticate, require_scope
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


SCOPE_ATTR = "_required_scope"


def declares_scope(scope: str):
    """Mark a view as needing `scope` (for the spec) without checking it: for views that check it
    themselves, inside their one statement."""

    def decorator(view):
        setattr(view, SCOPE_ATTR, scope)
        return view

    return decorator


def scope_required(scope: str):
    """Let a request in only if its key has `scope` (else 403 naming it); goes under role_required."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            require_scope(authenticated_principal(), scope)
            return view(*args, **kwargs)

        return declares_scope(scope)(wrapper)

    return decorator


def required_scope(view, method: str) -> str | None:
    """The scope a view as registered in app.view_functions declared for `method` (a MethodView's
    methods are marked one by one), if any."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return getattr(getattr(view_class, method.lower(), None), SCOPE_ATTR, None)
    return getattr(view, SCOPE_ATTR, None)


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
