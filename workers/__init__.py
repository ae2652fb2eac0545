"""RQ entry points: small functions that take ids, load fresh state and call services.

Each job runs inside an app context: the caller's when it runs in-process, otherwise one
app per worker process, built from the environment (DATABASE_URL, REDIS_URL, …).
"""

from __future__ import annotations

import functools

from flask import Flask, has_app_context
from rq import Worker

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


class PreloadedWorker(Worker):
    """rq's forking worker, with the app built once in the worker process before any work horse is
    forked (the Procfile's `rq worker --worker-class workers.PreloadedWorker`).

    A plain `rq worker` never builds the app itself, so every horse, a fresh fork of it, imported the
    app and built it (create_app, ~1.1 s) for its one job: ~1.9 s a validation job against ~40 ms of
    work. Each horse still runs one job in its own process (a crash or a timeout ends the horse only);
    what it inherits is the built app, never a database connection: its pool is dropped on fork (a
    connection shared by two processes would interleave their statements on one socket).
    """

    # Imported once here too, rather than by every horse on its first call: the job modules, and what
    # their functions import lazily that costs (the validation's PIL, imagehash, scipy: ~0.7 s).
    PRELOADED = ("marketplace.proofs.validation",)

    def work(self, *args, **kwargs):
        import importlib
        import pkgutil

        import sqlalchemy as sa

        from marketplace.extensions import db

        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        for name in self.PRELOADED:
            importlib.import_module(name)
        with worker_app().app_context():
            sa.orm.configure_mappers()
            for engine in db.engines.values():
                # One connection, so the dialect learns the server once here, not in every horse;
                # then closed, so that no horse inherits it.
                with engine.connect():
                    pass
                engine.dispose()
        return super().work(*args, **kwargs)

    def main_work_horse(self, job, queue):
        from marketplace.extensions import db

        with worker_app().app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)  # the parent's connections stay the parent's
        return super().main_work_horse(job, queue)
