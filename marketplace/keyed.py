"""Keyed digests: HMAC-SHA256 with the app's SECRET_KEY, for values we must recognise again but
never reveal (a visitor's address) and for links only we can sign (a shared screenshot)."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app


def keyed_digest(text: str) -> str:
    """The hex HMAC-SHA256 of `text` (any str: lone surrogates from a header are kept, not refused)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
