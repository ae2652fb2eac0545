"""RQ entry points: small functions that take ids, load fresh state and call services.

Each job runs inside an app context: the caller's when it runs in-process, otherwise one
app per worker process, built from the environment (DATABASE_URL, REDIS_URL, …).
"""

from __future__ import annotations

import functools

from flask import Flask, has_app_context

_app: Flask | None = None


def worker_app() -> Flask:
    global _app
    if _app is None:
        from marketplace import create_app

        _app = create_app()
    return _app


def job(fn):
    """Run fn inside an app context and leave the database session clean after it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return fn(*args, **kwargs)
        with worker_app().app_context():
            from marketplace.extensions import db

            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper
