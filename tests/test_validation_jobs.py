"""Validation jobs: safe to repeat, safe to run at once, resumed after a worker dies, never stuck silently."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from marketplace import REPO_ROOT
from tests.factories import row_locked, wait_for
from tests.factories.proofs import (
    NOT_AN_IMAGE,
    checks_by_name,
    claimed_task,
    png,
    proof_brief,
    run_validation_jobs,
    submission,
    submit,
)

LINK_GROUP = {"kind": "clip", "quantity": 10, "unit_price_cents": 100,
              "proof": {"screenshot": "optional", "link": {"allowed_domains": ["tiktok.com"]}}}


@pytest.fixture(autouse=True)
def _storage(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "storage"))


def check_rows(db_session, submission_id: str) -> list[tuple]:
    db_session.rollback()
    return db_session.execute(sa.text(
        "SELECT name, outcome, detail FROM submission_checks WHERE submission_id = :id ORDER BY name"
    ), {"id": submission_id}).all()


def row(db_session, submission_id: str):
    db_session.rollback()
    return db_session.execute(sa.text(
        "SELECT status, validation_attempts, phash FROM submissions WHERE id = :id"), {"id": submission_id}).one()


def validation_queue_length(app) -> int:
    from rq import Queue

    from marketplace.jobs import queue_name, redis_connection

    with app.app_context():
        return Queue(queue_name("validation", app), connection=redis_connection(app)).count


def test_the_request_does_no_image_work(client, standin, app, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], screenshot=NOT_AN_IMAGE, filename="cat.png")

    assert response.status_code == 202
    body = submission(client, token, response.get_json()["id"])
    assert body["status"] == "validating" and body["checks"] == []
    assert row(db_session, body["id"]).phash is None
    run_validation_jobs(app)
    assert checks_by_name(submission(client, token, body["id"]))["screenshot"]["outcome"] == "fail"


def test_running_the_job_twice_gives_the_same_check_rows(client, standin, app, db_session):
    from workers.validation import validate_submission

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=40)).get_json()["id"]
    run_validation_jobs(app)
    first = check_rows(db_session, sub_id)

    with app.app_context():
        assert validate_submission(sub_id) == "needs_review"
    # Even a forced re-run over the same submission overwrites rather than adds rows.
    db_session.execute(sa.text("UPDATE submissions SET status = 'validating' WHERE id = :id"), {"id": sub_id})
    db_session.commit()
    with app.app_context():
        assert validate_submission(sub_id) == "needs_review"

    assert check_rows(db_session, sub_id) == first
    assert [name for name, *_ in first] == ["duplicate", "screenshot", "timestamp"]
    assert row(db_session, sub_id).validation_attempts == 2


def test_concurrent_runs_leave_one_decision_and_one_set_of_rows(client, standin, app, db_session):
    from workers.validation import validate_submission

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=NOT_AN_IMAGE).get_json()["id"]
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def run() -> None:
        with app.app_context():
            from marketplace.extensions import db

            barrier.wait()
            try:
                outcomes.append(validate_submission(sub_id))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == ["auto_rejected"] * 4
    assert [name for name, *_ in check_rows(db_session, sub_id)] == ["screenshot", "timestamp"]
    assert db_session.execute(sa.text("SELECT status FROM claims WHERE id = :id"),
                              {"id": held["claim_id"]}).scalar_one() == "rejected"


def test_enqueueing_twice_makes_one_job(client, standin, app):
    from workers.validation import enqueue_validation

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=41)).get_json()["id"]

    with app.test_request_context():
        assert enqueue_validation(sub_id) is False

    assert validation_queue_length(app) == 1


def test_a_check_that_cannot_run_becomes_a_warn_not_a_crash(client, standin, app, db_session, tmp_path):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=42)).get_json()["id"]
    for stored in (tmp_path / "storage").rglob("*"):
        if stored.is_file():
            stored.unlink()  # the file vanished from storage before the job ran

    run_validation_jobs(app)

    body = submission(client, token, sub_id)
    assert body["status"] == "needs_review"
    assert checks_by_name(body)["screenshot"]["outcome"] == "warn"


def test_hostile_dns_is_refused_even_with_private_addresses_allowed(client, standin, app):
    """Unit level: the job's link check with a stub resolver answering with metadata/mapped addresses."""
    from marketplace.proofs.validation import validate_submission

    for answer in ("169.254.169.254", "fe80::1"):
        _, brief = proof_brief(client, standin, groups=[LINK_GROUP])
        token, held = claimed_task(client, brief)
        sub_id = submit(client, token, held["task"]["id"],
                        link=f"https://shop.tiktok.com/v?ref={held['tracked_code']}").get_json()["id"]

        with app.app_context():
            status = validate_submission(sub_id, resolver=lambda host, port, answer=answer: [answer])

        link = checks_by_name(submission(client, token, sub_id))["link"]
        assert status == "auto_rejected" and link["outcome"] == "fail"
        assert "forbidden address" in link["detail"], link


def test_lost_enqueue_is_picked_up_by_the_sweep(client, standin, app, db_session, monkeypatch):
    from workers.validation import sweep_stuck_validations

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=43)).get_json()["id"]
    with app.app_context():
        from marketplace.jobs import redis_connection

        redis_connection(app).flushdb()  # Redis lost the job

    with app.app_context():
        assert sweep_stuck_validations()["enqueued"] == 0  # not stuck long enough yet
        monkeypatch.setitem(app.config, "VALIDATION_STUCK_AFTER_SECONDS", 0)
        assert sweep_stuck_validations() == {"enqueued": 1, "stuck": 1, "given_up": 0}
        assert sweep_stuck_validations()["enqueued"] == 0  # the same attempt is one job
    run_validation_jobs(app)

    assert submission(client, token, sub_id)["status"] == "needs_review"


def test_sweep_hands_a_submission_to_a_person_after_the_attempt_cap(client, standin, app, db_session, monkeypatch):
    from workers.validation import sweep_stuck_validations

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=44)).get_json()["id"]
    db_session.execute(sa.text(
        "UPDATE submissions SET validation_attempts = 3, validation_started_at = now() - interval '1 hour' "
        "WHERE id = :id"), {"id": sub_id})
    db_session.commit()

    with app.app_context():
        assert sweep_stuck_validations()["given_up"] == 1

    body = submission(client, token, sub_id)
    assert body["status"] == "needs_review"
    assert checks_by_name(body)["validation"] == {
        **checks_by_name(body)["validation"], "outcome": "warn",
        "detail": "validation did not complete; review by hand"}


# --- a worker process killed mid-validation ----------------------------------------------------------------


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        self.server.release.wait(60)  # hold the link check until the test lets go
        try:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass

    do_HEAD = do_GET


def test_worker_killed_mid_validation_is_finished_by_the_sweep(client, standin, app, db_session, monkeypatch):
    from workers.validation import sweep_stuck_validations

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    httpd.hits, httpd.release = [], threading.Event()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setitem(app.config, "LINK_CHECK_STATIC_HOSTS", {"shop.tiktok.com": "127.0.0.1"})
    try:
        _, brief = proof_brief(client, standin, groups=[LINK_GROUP])
        token, held = claimed_task(client, brief)
        link = f"http://shop.tiktok.com:{httpd.server_port}/slow?ref={held['tracked_code']}"
        sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=45), link=link).get_json()["id"]

        env = {**os.environ, "STORAGE_DIR": app.config["STORAGE_DIR"],
               "LINK_CHECK_STATIC_HOSTS": "shop.tiktok.com=127.0.0.1", "LINK_CHECK_ALLOW_PRIVATE": "1"}
        from marketplace.jobs import queue_name

        worker = subprocess.Popen(
            # SimpleWorker: the job runs in this very process (a forking worker's work horse calls
            # setsid and would outlive a kill of the worker's process group).
            [os.path.join(os.path.dirname(sys.executable), "rq"), "worker", "--burst", "-w", "rq.worker.SimpleWorker",
             "--url", app.config["REDIS_URL"], queue_name("validation", app)],
            cwd=REPO_ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: httpd.hits, timeout=60)  # the job is inside the link check now
            os.killpg(worker.pid, signal.SIGKILL)  # the worker process, mid-job
            worker.wait(10)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)

        stuck = row(db_session, sub_id)
        assert (stuck.status, stuck.validation_attempts) == ("validating", 1)
        assert stuck.phash is not None  # facts were committed before the link check
        assert check_rows(db_session, sub_id) == []  # nothing half-decided

        httpd.release.set()
        monkeypatch.setitem(app.config, "VALIDATION_STUCK_AFTER_SECONDS", 0)
        with app.app_context():
            swept = sweep_stuck_validations()
            assert swept["enqueued"] == 1, swept
        run_validation_jobs(app)

        done = row(db_session, sub_id)
        assert (done.status, done.validation_attempts) == ("needs_review", 2)
        assert [name for name, *_ in check_rows(db_session, sub_id)] == ["duplicate", "link", "screenshot", "timestamp"]
        assert checks_by_name(submission(client, token, sub_id))["link"]["outcome"] == "pass"
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()


def test_an_optional_link_left_out_is_not_a_failed_check(client, standin, app, db_session):
    """The group takes a link but does not require one: proof without it is judged on the rest."""
    group = {"kind": "caption", "quantity": 5, "unit_price_cents": 100,
             "proof": {"link": {"required": False, "allowed_domains": ["tiktok.com"]},
                       "text": {"min_length": 5, "max_length": 300}}}
    _, brief = proof_brief(client, standin, groups=[group], disclosure_required=False)
    token, held = claimed_task(client, brief)
    response = submit(client, token, held["task"]["id"], text="Lighter shoe, same grip")
    assert response.status_code == 202, response.get_json()
    run_validation_jobs(app)
    body = submission(client, token, response.get_json()["id"])
    assert "link" not in checks_by_name(body)
    assert body["status"] not in ("auto_rejected", "validating"), body


def test_a_check_whose_query_fails_is_a_warn_and_the_rest_still_runs(client, standin, app, db_session, monkeypatch):
    """A non-transient database error inside one check (here: a bad statement in the duplicate
    lookup) leaves a warn for a person; the transaction it broke is rolled back, so the later
    checks and the decision still go through instead of the job failing on every retry."""
    from marketplace.extensions import db
    from marketplace.proofs import validation

    def broken_lookup(snap):
        db.session.execute(sa.text("SELECT * FROM no_such_table"))

    monkeypatch.setattr(validation, "_duplicate_result", broken_lookup)
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=43)).get_json()["id"]

    run_validation_jobs(app)

    body = submission(client, token, sub_id)
    assert body["status"] == "needs_review"
    outcomes = {name: check["outcome"] for name, check in checks_by_name(body).items()}
    assert outcomes["duplicate"] == "warn" and outcomes["screenshot"] == "pass"


def test_the_sweep_reruns_a_job_that_failed_before_it_could_start(client, standin, app, db_session, monkeypatch):
    """The job failed for good (the database down through every retry) before it counted an
    attempt: RQ keeps the failed job for days under the same id. The sweep must still run it
    again, not be refused as a duplicate on every pass while the submission stays validating."""
    from rq import Queue
    from rq.job import Job, JobStatus

    from marketplace.jobs import queue_name, redis_connection
    from workers.validation import sweep_stuck_validations, validation_job_id

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    sub_id = submit(client, token, held["task"]["id"], screenshot=png(seed=44)).get_json()["id"]
    with app.app_context():
        redis = redis_connection(app)
        job = Job.fetch(validation_job_id(sub_id, 0), connection=redis)
        Queue(queue_name("validation", app), connection=redis).remove(job)
        job.set_status(JobStatus.FAILED)
        monkeypatch.setitem(app.config, "VALIDATION_STUCK_AFTER_SECONDS", 0)
        assert row(db_session, sub_id).validation_attempts == 0
        assert sweep_stuck_validations() == {"enqueued": 1, "stuck": 1, "given_up": 0}
        assert sweep_stuck_validations()["enqueued"] == 0  # queued now: one job, not two
    run_validation_jobs(app)

    assert submission(client, token, sub_id)["status"] == "needs_review"


def test_the_sweep_gives_up_on_twelve_thousand_at_once(client, standin, app, db_session):
    """Past 10,922 rows one INSERT of check results would need more than the driver's 65,535
    parameters: the give-up stays set-based but goes in chunks."""
    from tests.factories import live_brief, sign_up_brand, sign_up_worker
    from workers.validation import sweep_stuck_validations

    n = 12_000
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, budget_cents=n * 11, task_groups=[
        {"kind": "caption", "quantity": n, "unit_price_cents": 10}])
    worker, _ = sign_up_worker(client)
    db_session.execute(sa.text("""
        INSERT INTO claims (id, task_id, group_id, brief_id, worker_id, tracked_code, status, claimed_at, expires_at)
        SELECT 'clm_' || md5(t.id), t.id, t.group_id, t.brief_id, :worker, substr(md5(t.id), 1, 12), 'submitted',
               now() - interval '2 hours', now() + interval '1 hour'
        FROM tasks t WHERE t.brief_id = :brief"""), {"worker": worker["id"], "brief": brief["id"]})
    db_session.execute(sa.text("""
        INSERT INTO submissions (id, task_id, claim_id, group_id, brief_id, worker_id, status, text, submitted_at,
                                 auto_approve_at, validation_attempts, validation_started_at, created_at)
        SELECT 'sub_' || md5(c.id), c.task_id, c.id, c.group_id, c.brief_id, c.worker_id, 'validating', 'x #ad',
               now() - interval '2 hours', now() + interval '72 hours', 3, now() - interval '1 hour', now()
        FROM claims c WHERE c.brief_id = :brief"""), {"brief": brief["id"]})
    db_session.commit()

    with app.app_context():
        assert sweep_stuck_validations()["given_up"] == n
    db_session.rollback()
    assert db_session.execute(sa.text(
        "SELECT count(*) FROM submissions WHERE status = 'needs_review'")).scalar_one() == n
    assert db_session.execute(sa.text(
        "SELECT count(*) FROM submission_checks WHERE name = 'validation' AND outcome = 'warn'")).scalar_one() == n


def test_a_submission_row_held_by_someone_else_does_not_hold_up_other_validations(client, standin, app, db_session):
    """A's facts wait for A's row (a review decision holds it); B's validation must not wait with
    them behind the platform-wide lock that numbers facts."""
    from marketplace.extensions import db
    from marketplace.proofs import validation
    from workers.validation import validate_submission

    _, brief = proof_brief(client, standin)
    token_a, held_a = claimed_task(client, brief)
    a = submit(client, token_a, held_a["task"]["id"], screenshot=png(seed=81)).get_json()["id"]
    token_b, held_b = claimed_task(client, brief)
    b = submit(client, token_b, held_b["task"]["id"], screenshot=png(seed=82)).get_json()["id"]
    with app.app_context():
        snap_a = validation._start(a)
        validation._screenshot_facts(snap_a)
        db.session.remove()

    done = {}

    def store_a():
        with app.app_context():
            validation._store_facts(snap_a)
            done["a"] = True
            db.session.remove()

    def validate_b():
        with app.app_context():
            done["b"] = validate_submission(b)
            db.session.remove()

    with row_locked(app, "submissions", a):  # a review decision holds A's row
        waiting_a = threading.Thread(target=store_a)
        waiting_a.start()
        wait_for(lambda: db_session.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )).scalar_one() >= 1)
        running_b = threading.Thread(target=validate_b)
        running_b.start()
        running_b.join(timeout=15)
        finished_while_a_waits = not running_b.is_alive() and "a" not in done
    waiting_a.join(timeout=15)
    running_b.join(timeout=15)
    assert finished_while_a_waits and done == {"a": True, "b": "needs_review"}
