"""Validation bench: proof validation jobs per second on one RQ worker, against computing the perceptual
hash alone on the same screenshots, with a line saying where a job's time goes (image work and the
content band's share of it, database and the rest of the job with its SQL statements, their time,
commits and pool checkouts, RQ between jobs) and the most the ratio could be with no database work
at all; and the same jobs for a brief asking for the disclosure on the image (OCR with Tesseract),
against those without it."""

from __future__ import annotations

import io
import os
import tempfile
import time

import imagehash
from PIL import Image

from bench import harness

N = int(os.environ.get("BENCH_VALIDATION_JOBS", "60"))
# OCR takes about a second a screenshot: fewer of them give as steady a figure.
N_OCR = int(os.environ.get("BENCH_VALIDATION_OCR_JOBS", "12"))
SIZE = (1280, 720)  # a phone screenshot, landscape

BRIEF = {
    "title": "Validation bench", "objective": "content", "landing_url": "https://shop.example.com/bench",
    "budget_cents": 10 * (N + N_OCR) * 110, "currency": "usd",
    "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-12-08T00:00:00Z", "auto_approve_after_hours": 72,
    "disclosure_required": False,
    "task_groups": [{"kind": "clip", "name": "A", "quantity": N, "unit_price_cents": 100,
                     "proof": {"screenshot": "required"}}],
}


def _screenshots(seeds: range) -> list[bytes]:
    """Pictures with a post's text on them (handle, disclosure label, caption), as OCR would meet."""
    from PIL import ImageDraw, ImageFont

    from tests.factories.proofs import encode, picture

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 28)
    shots = []
    for seed in seeds:
        img = picture(seed, SIZE)
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, 0, SIZE[0], 120), fill="white")
        draw.text((20, 10), f"@bench.worker{seed}", fill="black", font=font)
        draw.text((20, 60), "Paid partnership  Lighter shoe, same grip #ad", fill="black", font=font)
        shots.append(encode(img))
    return shots


def _live_group(app, *, on_media: bool) -> str:
    """A funded, published brief with one screenshot group of N tasks (booked as the webhook would)."""
    from marketplace.auth.models import Brand
    from marketplace.briefs.schemas import BriefIn
    from marketplace.extensions import db

    with app.app_context():
        brand = Brand(name="Bench Shoes", email=f"bench-validation-{on_media}@example.com")
        db.session.add(brand)
        db.session.commit()
        brief = harness.live_brief(brand.id, BriefIn().load({**BRIEF, "disclosure_on_media": on_media}))
        group_id = brief.task_groups[0].id
        db.session.remove()
        return group_id


def _submit_all(app, group_id: str, screenshots: list[bytes], prefix: str) -> None:
    """N workers each claim a task and submit a screenshot (untimed): N validation jobs in the queue."""
    from marketplace.auth.models import Worker
    from marketplace.extensions import db
    from marketplace.proofs import service as proofs
    from marketplace.tasks import service as tasks
    from workers.validation import enqueue_validation

    with app.app_context():
        for i, data in enumerate(screenshots):
            worker = Worker(email=f"bench-{prefix}{i}@example.com", password_hash="x", display_name="Bench", country="GB")
            db.session.add(worker)
            db.session.commit()
            claim = tasks.claim(worker.id, group_id)
            submission = proofs.submit(worker.id, claim.task_id, {}, proofs.Upload(data))
            enqueue_validation(submission.id)  # as the submission route does after the commit
        db.session.remove()


def _timed_worker_class():
    from rq import SimpleWorker

    class TimedWorker(SimpleWorker):
        """Keeps each job's span (RQ's own started/ended stamps) as it succeeds: a validation job
        leaves nothing behind in Redis to read them from afterwards (result_ttl=0)."""

        spans: dict[str, float] = {}

        def handle_job_success(self, job, queue, started_job_registry):
            TimedWorker.spans[job.id] = (job.ended_at - job.started_at).total_seconds()
            return super().handle_job_success(job, queue, started_job_registry)

    return TimedWorker


def _burst(app, count: int, stats: dict | None = None) -> float:
    """Run the `count` queued validation jobs on one SimpleWorker: jobs per second. With `stats`,
    also fill in the mean time inside a job (RQ's own started/ended stamps) and SQL statements per job."""
    import sqlalchemy as sa
    from rq import Queue

    from marketplace.db import direct
    from marketplace.extensions import db
    from marketplace.jobs import queue_name, redis_connection

    with app.app_context():
        redis = redis_connection(app)
        queue = Queue(queue_name("validation", app), connection=redis)
        assert queue.count == count, queue.count
        job_ids = queue.job_ids
        timed = _timed_worker_class()
        # Round trips the SQL counter does not see: each commit, and each pool checkout's pre-ping.
        seen = {"statements": 0, "commits": 0, "checkouts": 0, "pipelined": 0}

        def counter(what):
            def count(*_):
                seen[what] += 1
            return count

        clock = {"sql": 0.0, "at": 0.0}

        def sql_started(*_):
            seen["statements"] += 1
            clock["at"] = time.perf_counter()

        def sql_ended(*_):
            clock["sql"] += time.perf_counter() - clock["at"]

        listeners = [(db.engine, "before_cursor_execute", sql_started), (db.engine, "after_cursor_execute", sql_ended),
                     (db.engine, "commit", counter("commits")), (db.engine.pool, "checkout", counter("checkouts"))]
        for target, name, fn in listeners:
            sa.event.listen(target, name, fn)
        # A statement on the direct (autocommit) engine goes to the driver itself, past SQLAlchemy's
        # events: counted here, as a statement and its commit.
        run_directly = direct._run

        def counted_direct(*args, **kwargs):
            sql_started()
            try:
                return run_directly(*args, **kwargs)
            finally:
                sql_ended()
                seen["commits"] += 1

        # A pipelined transaction (direct.Transaction) sends its statements, BEGIN and COMMIT in one
        # round trip: its steps counted as statements, the batch as one commit and one round trip.
        send = direct.Transaction._send

        def counted_send(tx, steps, *, commit):
            sql_started()
            try:
                return send(tx, steps, commit=commit)
            finally:
                sql_ended()
                seen["statements"] += len(steps) - 1
                seen["pipelined"] += 1
                seen["commits"] += commit

        direct._run = counted_direct
        direct.Transaction._send = counted_send
        try:
            started = time.perf_counter()
            timed([queue], connection=redis).work(burst=True, logging_level="WARNING")
            rate = count / (time.perf_counter() - started)
        finally:
            direct._run = run_directly
            direct.Transaction._send = send
            for target, name, fn in listeners:
                sa.event.remove(target, name, fn)
        if stats is not None:
            spans = [timed.spans.pop(job_id) for job_id in job_ids if job_id in timed.spans]
            stats["job_ms"] = 1000 * sum(spans) / len(spans)
            stats.update({what: n / count for what, n in seen.items()})
            stats["sql_ms"] = 1000 * clock["sql"] / count
        return rate


def _image_ms(screenshots: list[bytes], *, content: bool) -> float:
    """Mean ms of the job's image work alone: inspect_image (container walk, decode, whole-screen
    phash, EXIF) with or without the content band's 22 hashes."""
    from marketplace.proofs.checks.screenshot import inspect_image

    started = time.perf_counter()
    for data in screenshots:
        inspect_image(data, content=content)
    return 1000 * (time.perf_counter() - started) / len(screenshots)


def main() -> None:
    from marketplace.extensions import db

    screenshots = _screenshots(range(N))
    ocr_screenshots = _screenshots(range(N, N + N_OCR))
    # The baseline: decoding each screenshot and computing its perceptual hash, nothing else.
    started = time.perf_counter()
    for data in screenshots:
        imagehash.phash(Image.open(io.BytesIO(data)))
    hash_rate = N / (time.perf_counter() - started)

    with harness.scratch_database() as url, harness.spare_redis() as redis_url, \
            tempfile.TemporaryDirectory() as storage_dir:
        app = harness.migrated_app(url, REDIS_URL=redis_url, STORAGE_DIR=storage_dir,
                                   SUBMISSION_RATE_LIMIT="off", CLAIM_RATE_LIMIT="off")
        _submit_all(app, _live_group(app, on_media=False), screenshots, "plain-")
        stats: dict = {}
        job_rate = _burst(app, N, stats)
        _submit_all(app, _live_group(app, on_media=True), ocr_screenshots, "ocr-")
        ocr_rate = _burst(app, N_OCR)
        with app.app_context():
            outcomes = sorted(tuple(row) for row in db.session.execute(db.text(
                "SELECT b.disclosure_on_media, s.status || '/' || c.outcome, count(*) FROM submissions s "
                "JOIN briefs b ON b.id = s.brief_id JOIN submission_checks c ON c.submission_id = s.id "
                "AND c.name = 'screenshot' GROUP BY 1, 2")))
            db.session.remove()
        with app.app_context():
            db.engine.dispose()

    image_ms, whole_ms = _image_ms(screenshots, content=True), _image_ms(screenshots, content=False)
    harness.report("validation", f"jobs/s, 1 worker, {N} shots", job_rate, hash_rate, unit="jobs/s",
                   baseline_name="phash alone")
    wall_ms, job_ms = 1000 / job_rate, stats["job_ms"]
    harness.note(f"where a job's {wall_ms:.1f} ms go: image {image_ms:.1f} ms (of which content-band hashes "
                 f"{image_ms - whole_ms:.1f}, phash alone {1000 / hash_rate:.1f}), database and the rest of the job "
                 f"{job_ms - image_ms:.1f} ms ({stats['statements']:.1f} SQL statements, {stats['pipelined']:.1f} "
                 f"batches of them pipelined in one round trip each, taking {stats['sql_ms']:.1f} ms from send to reply, "
                 f"{stats['commits']:.1f} commits, {stats['checkouts']:.1f} pool checkouts with a pre-ping; the remainder is "
                 "commits, SQLAlchemy and the job's own Python), RQ between jobs "
                 f"{wall_ms - job_ms:.1f} ms")
    # What the ratio could reach with no database work at all: the image work and RQ are its floor.
    floor_ms = image_ms + wall_ms - job_ms
    harness.note(f"with no database work at all a job would take {floor_ms:.1f} ms (image and RQ): ratio at most "
                 f"{1000 / hash_rate / floor_ms:.2f}; 0.6 needs the whole job within {1000 / hash_rate / 0.6:.1f} ms")
    harness.report("validation.ocr", f"jobs/s with OCR, {N_OCR} shots", ocr_rate, job_rate, unit="jobs/s",
                   baseline_name="without OCR")
    harness.note(f"{SIZE[0]}x{SIZE[1]} PNG screenshots; each job: decode + container walk + phash + content-band hashes, "
                 "whole-screen and content duplicate lookups, timestamp check, "
                 f"{stats['commits']:.0f} transactions; with OCR (disclosure_on_media) also Tesseract "
                 f"(eng+fra+deu+spa, psm 11) and the disclosure match; outcomes {outcomes}")


if __name__ == "__main__":
    main()
