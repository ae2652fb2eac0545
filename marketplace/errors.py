"""The domain's refusals: services raise these, and marketplace.http.problems answers each as a problem document."""

from __future__ import annotations


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
