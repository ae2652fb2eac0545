"""Validation bench: proof validation jobs per second on one RQ worker, against computing the perceptual
hash alone on the same screenshots."""

from __future__ import annotations

import io
import os
import tempfile
import time

import imagehash
from PIL import Image

from bench import harness

N = int(os.environ.get("BENCH_VALIDATION_JOBS", "60"))
SIZE = (1280, 720)  # a phone screenshot, landscape

BRIEF = {
    "title": "Validation bench", "objective": "content", "landing_url": "https://shop.example.com/bench",
    "budget_cents": 10 * N * 110, "currency": "usd",
    "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-12-08T00:00:00Z", "auto_approve_after_hours": 72,
    "disclosure_required": False,
    "task_groups": [{"kind": "clip", "name": "A", "quantity": N, "unit_price_cents": 100,
                     "proof": {"screenshot": "required"}}],
}


def _screenshots() -> list[bytes]:
    from tests.factories.proofs import encode, picture

    return [encode(picture(seed, SIZE)) for seed in range(N)]


def _live_group(app) -> str:
    """A funded, published brief with one screenshot group of N tasks (booked as the webhook would)."""
    from marketplace.auth.models import Brand
    from marketplace.briefs.schemas import BriefIn
    from marketplace.extensions import db

    with app.app_context():
        brand = Brand(name="Bench Shoes", email="bench-validation@example.com")
        db.session.add(brand)
        db.session.commit()
        brief = harness.live_brief(brand.id, BriefIn().load(BRIEF))
        group_id = brief.task_groups[0].id
        db.session.remove()
        return group_id


def _submit_all(app, group_id: str, screenshots: list[bytes]) -> None:
    """N workers each claim a task and submit a screenshot (untimed): N validation jobs in the queue."""
    from marketplace.auth.models import Worker
    from marketplace.extensions import db
    from marketplace.proofs import service as proofs
    from marketplace.tasks import service as tasks
    from workers.validation import enqueue_validation

    with app.app_context():
        for i, data in enumerate(screenshots):
            worker = Worker(email=f"bench-{i}@example.com", password_hash="x", display_name="Bench", country="GB")
            db.session.add(worker)
            db.session.commit()
            claim = tasks.claim(worker.id, group_id)
            submission = proofs.submit(worker.id, claim.task_id, {}, proofs.Upload(data))
            enqueue_validation(submission.id)  # as the submission route does after the commit
        db.session.remove()


def main() -> None:
    from rq import Queue, SimpleWorker

    from marketplace.extensions import db
    from marketplace.jobs import queue_name, redis_connection

    screenshots = _screenshots()
    # The baseline: decoding each screenshot and computing its perceptual hash, nothing else.
    started = time.perf_counter()
    for data in screenshots:
        imagehash.phash(Image.open(io.BytesIO(data)))
    hash_rate = N / (time.perf_counter() - started)

    with harness.scratch_database() as url, harness.spare_redis() as redis_url, \
            tempfile.TemporaryDirectory() as storage_dir:
        app = harness.migrated_app(url, REDIS_URL=redis_url, STORAGE_DIR=storage_dir,
                                   SUBMISSION_RATE_LIMIT="off", CLAIM_RATE_LIMIT="off")
        group_id = _live_group(app)
        _submit_all(app, group_id, screenshots)
        with app.app_context():
            redis = redis_connection(app)
            queue = Queue(queue_name("validation", app), connection=redis)
            assert queue.count == N, queue.count
            started = time.perf_counter()
            SimpleWorker([queue], connection=redis).work(burst=True, logging_level="WARNING")
            job_rate = N / (time.perf_counter() - started)
            statuses = dict(db.session.execute(db.text(
                "SELECT status, count(*) FROM submissions GROUP BY status")).all())
            db.session.remove()
        with app.app_context():
            db.engine.dispose()

    harness.report("validation", f"jobs/s, 1 worker, {N} shots", job_rate, hash_rate, unit="jobs/s",
                   baseline_name="phash alone")
    harness.note(f"{SIZE[0]}x{SIZE[1]} PNG screenshots; each job: decode + container walk + phash, duplicate "
                 f"lookup, timestamp check, 4 transactions; outcome {statuses}")


if __name__ == "__main__":
    main()
