"""Who the request came from, as the app trusts it."""

from __future__ import annotations

from flask import request


def client_device() -> tuple[str | None, str | None]:
    """The client's (address, user agent). The address is request.remote_addr, which ProxyFix
    rewrites from TRUSTED_PROXY_COUNT proxies' X-Forwarded-For (as the rate limiter uses it): a
    client cannot name any address it likes."""
    return request.remote_addr, request.headers.get("User-Agent")
