"""The origin the service's own links are written with: PUBLIC_BASE_URL when set (behind a proxy or
a CDN the request's Host is not what the world uses), else the request's own."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, request


def public_origin() -> str:
    """Scheme, host and any path prefix, without a trailing slash."""
    return (current_app.config.get("PUBLIC_BASE_URL") or request.host_url).rstrip("/")


def check_public_base_url(value: str | None) -> None:
    """Refuse at start-up a PUBLIC_BASE_URL links could not be written with."""
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"PUBLIC_BASE_URL={value!r}: must be an http(s) origin, with an optional path "
                         "prefix and no query or fragment (e.g. https://tasks.example.com).")
