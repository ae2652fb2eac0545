"""Submitting proof over HTTP: who may submit, what must be in it, and what the validation job decides."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from marketplace.proofs.service import ANOTHER_SUBMISSION
from tests.factories import auth, claim, database_refuses, make_admin, sign_up_brand, sign_up_worker
from tests.factories.proofs import (
    NOT_AN_IMAGE,
    SCREENSHOT_GROUP,
    checks_by_name,
    claimed_task,
    decompression_bomb,
    jpeg_with_exif,
    png,
    polyglot,
    proof_brief,
    reencoded_copy,
    run_validation_jobs,
    submission,
    submit,
    submitted,
    truncated_png,
)

CAPTION_GROUP = {"kind": "caption", "quantity": 10, "unit_price_cents": 60,
                 "proof": {"text": {"min_length": 20, "max_length": 120}}}
LINK_GROUP = {"kind": "clip", "quantity": 10, "unit_price_cents": 100,
              "proof": {"screenshot": "optional", "link": {"allowed_domains": ["tiktok.com"]}}}


@pytest.fixture(autouse=True)
def _storage(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "storage"))


def counts(db_session) -> dict:
    db_session.rollback()
    return {t: db_session.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("submissions", "submission_checks")}


def statuses(db_session, claim: dict) -> tuple[str, str]:
    db_session.rollback()
    return db_session.execute(sa.text(
        "SELECT c.status, t.status FROM claims c JOIN tasks t ON t.id = c.task_id WHERE c.id = :id"
    ), {"id": claim["claim_id"]}).one()


def queued_validation_jobs(app) -> int:
    from rq import Queue

    from marketplace.jobs import queue_name, redis_connection

    with app.app_context():
        return Queue(queue_name("validation", app), connection=redis_connection(app)).count


# --- the Done-when flows -----------------------------------------------------------------------------


def test_screenshot_flow_ends_in_needs_review(client, standin, app, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], screenshot=png(seed=1))

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "validating" and body["checks"] == []
    assert body["screenshot_url"] == f"/v1/submissions/{body['id']}/screenshot"
    submitted = datetime.fromisoformat(body["submitted_at"])
    assert datetime.fromisoformat(body["auto_approve_at"]) == submitted + timedelta(hours=72)
    assert statuses(db_session, held) == ("submitted", "submitted")
    assert queued_validation_jobs(app) == 1

    run_validation_jobs(app)

    done = submission(client, token, body["id"])
    assert done["status"] == "needs_review", done
    checks = checks_by_name(done)
    assert checks["screenshot"]["outcome"] == "pass"
    assert checks["duplicate"]["outcome"] == "pass"
    assert checks["timestamp"]["outcome"] == "warn"  # no captured_at and no EXIF: a person looks
    assert done["reasons"] == []
    row = db_session.execute(sa.text(
        "SELECT phash, phash_c0, validation_attempts FROM submissions WHERE id = :id"), {"id": body["id"]}).one()
    assert row.phash is not None and row.phash_c0 is not None and row.validation_attempts == 1


@pytest.mark.parametrize("copy", ["same bytes", "resized jpeg"])
def test_second_worker_with_the_same_screenshot_is_auto_rejected_naming_the_original(
        client, standin, app, db_session, copy):
    _, brief = proof_brief(client, standin)
    first_token, first_claim = claimed_task(client, brief)
    original = submit(client, first_token, first_claim["task"]["id"], screenshot=png(seed=7)).get_json()
    run_validation_jobs(app)
    other_token, other_claim = claimed_task(client, brief)
    data = png(seed=7) if copy == "same bytes" else reencoded_copy(seed=7)

    response = submit(client, other_token, other_claim["task"]["id"], screenshot=data, filename="mine.jpg")
    assert response.status_code == 202
    run_validation_jobs(app)

    done = submission(client, other_token, response.get_json()["id"])
    assert done["status"] == "auto_rejected"
    duplicate = checks_by_name(done)["duplicate"]
    # The worker cannot open the original, so it is not named to them (the brand and admins see it).
    assert duplicate["outcome"] == "fail" and ANOTHER_SUBMISSION in duplicate["detail"]
    assert original["id"] not in duplicate["detail"]
    assert done["reasons"] == [{"check": "duplicate", "detail": duplicate["detail"], "reason_code": "duplicate"}]
    assert done["reason_code"] == "duplicate" and original["id"] not in done["reason"]
    # The claim ends as rejected and the task is open again for someone else.
    assert statuses(db_session, other_claim) == ("rejected", "open")
    assert submission(client, first_token, original["id"])["status"] == "needs_review"


def test_a_different_screenshot_is_not_a_duplicate(client, standin, app):
    _, brief = proof_brief(client, standin)
    for seed in (11, 12):
        token, held = claimed_task(client, brief)
        sub = submit(client, token, held["task"]["id"], screenshot=png(seed=seed)).get_json()
        run_validation_jobs(app)
        assert submission(client, token, sub["id"])["status"] == "needs_review"


# --- who may submit, and when ----------------------------------------------------------------------


def test_someone_elses_task_is_404_and_changes_nothing(client, standin, db_session):
    _, brief = proof_brief(client, standin)
    _, held = claimed_task(client, brief)
    _, stranger = sign_up_worker(client)

    response = submit(client, stranger, held["task"]["id"], screenshot=png())

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert counts(db_session) == {"submissions": 0, "submission_checks": 0}
    assert submit(client, stranger, "task_nope", screenshot=png()).status_code == 404


def test_unclaimed_task_is_409(client, standin, db_session):
    _, brief = proof_brief(client, standin)
    _, token = sign_up_worker(client)
    task_id = db_session.execute(sa.text("SELECT id FROM tasks WHERE status = 'open' LIMIT 1")).scalar_one()

    assert submit(client, token, task_id, screenshot=png()).status_code == 409
    assert counts(db_session)["submissions"] == 0


def test_expired_claim_is_409_and_changes_nothing(client, standin, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '1 second' WHERE id = :id"),
                       {"id": held["claim_id"]})
    db_session.commit()

    response = submit(client, token, held["task"]["id"], screenshot=png())

    assert response.status_code == 409 and "expired" in response.get_json()["detail"]
    assert counts(db_session)["submissions"] == 0
    assert statuses(db_session, held) == ("active", "claimed")


def test_proof_whose_upload_began_before_the_expiry_is_on_time(client, standin, db_session, app):
    """A 10 MB screenshot over a slow phone connection: the request began a minute before the claim
    expired and finished 30 s after. The expiry job, run meanwhile, left the claim alone."""
    from marketplace.db.clock import utcnow
    from marketplace.proofs import service
    from marketplace.tasks.service import expire_due_claims

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() - interval '30 seconds' WHERE id = :id"),
                       {"id": held["claim_id"]})
    db_session.commit()
    with app.test_request_context():
        assert expire_due_claims() == 0
        worker_id = db_session.execute(sa.text("SELECT worker_id FROM claims WHERE id = :id"),
                                       {"id": held["claim_id"]}).scalar_one()
        made = service.submit(worker_id, held["task"]["id"], {}, service.Upload(png(seed=90)),
                              received_at=utcnow() - timedelta(seconds=90))
        assert made.status == "validating"
    assert statuses(db_session, held) == ("submitted", "submitted")


def test_released_claim_is_409(client, standin, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    assert client.post(f"/v1/tasks/{held['task']['id']}/release", headers=auth(token)).status_code == 200

    assert submit(client, token, held["task"]["id"], screenshot=png()).status_code == 409
    assert counts(db_session)["submissions"] == 0


def test_second_submission_on_one_claim_is_409(client, standin, app, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    assert submit(client, token, held["task"]["id"], screenshot=png(seed=1)).status_code == 202

    again = submit(client, token, held["task"]["id"], screenshot=png(seed=2))

    assert again.status_code == 409 and "already" in again.get_json()["detail"]
    assert counts(db_session)["submissions"] == 1
    assert queued_validation_jobs(app) == 1


def test_concurrent_submissions_on_one_claim_make_one_submission(client, standin, app, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    results: list[int] = []
    barrier = threading.Barrier(6)

    def attempt(seed: int) -> None:
        with app.test_client() as own_client:
            barrier.wait()
            results.append(submit(own_client, token, held["task"]["id"], screenshot=png(seed=seed)).status_code)

    threads = [threading.Thread(target=attempt, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [202] + [409] * 5
    assert counts(db_session)["submissions"] == 1


def test_revision_requested_lets_the_worker_submit_again_before_the_deadline(client, standin, app, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    first = submit(client, token, held["task"]["id"], screenshot=png(seed=3)).get_json()
    run_validation_jobs(app)
    # The reviewer's side (another module) asks for a revision; set the state it leaves behind.
    db_session.execute(sa.text(
        "UPDATE submissions SET status = 'revision_requested', reason_code = 'low_quality', "
        "reason = 'crop it', revision_deadline = now() + interval '1 day' WHERE id = :id"), {"id": first["id"]})
    db_session.commit()
    assert submission(client, token, first["id"])["revision"]["reason"] == "crop it"

    second = submit(client, token, held["task"]["id"], screenshot=reencoded_copy(seed=3))
    assert second.status_code == 202, second.get_json()
    run_validation_jobs(app)

    # A revision of one's own earlier attempt is not a duplicate of it.
    assert submission(client, token, second.get_json()["id"])["status"] == "needs_review"
    assert statuses(db_session, held) == ("submitted", "submitted")
    assert submit(client, token, held["task"]["id"], screenshot=png(seed=4)).status_code == 409


def test_revision_after_the_deadline_is_409(client, standin, app, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    first = submit(client, token, held["task"]["id"], screenshot=png(seed=3)).get_json()
    db_session.execute(sa.text(
        "UPDATE submissions SET status = 'revision_requested', revision_deadline = now() - interval '1 minute' "
        "WHERE id = :id"), {"id": first["id"]})
    db_session.commit()

    response = submit(client, token, held["task"]["id"], screenshot=png(seed=5))

    assert response.status_code == 409 and "deadline" in response.get_json()["detail"]
    assert counts(db_session)["submissions"] == 1


# --- what the request refuses before storing anything ---------------------------------------------------


def test_missing_required_screenshot_is_422_with_field_errors(client, standin, db_session):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], text="hello")

    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert "screenshot" in errors and "text" in errors  # required, and not asked for
    assert counts(db_session)["submissions"] == 0
    assert statuses(db_session, held) == ("active", "claimed")


def test_missing_required_text_and_link_are_422(client, standin, db_session):
    _, brief = proof_brief(client, standin, groups=[CAPTION_GROUP, LINK_GROUP])
    caption_token, caption = claimed_task(client, brief, 0)
    link_token, link = claimed_task(client, brief, 1)

    assert submit(client, caption_token, caption["task"]["id"]).get_json()["errors"].keys() == {"text"}
    assert submit(client, link_token, link["task"]["id"], screenshot=png()).get_json()["errors"].keys() == {"link"}
    assert counts(db_session)["submissions"] == 0


@pytest.mark.parametrize("body", [
    {"text": "x" * 20_001},
    {"text": 12345},
    {"text": "a fine caption text here", "captured_at": "yesterday"},
    {"text": "a fine caption text here", "captured_at": "2026-01-01T00:00:00"},  # no offset
    {"text": "a fine caption text here", "colour": "red"},
])
def test_malformed_fields_are_422(client, standin, db_session, body):
    _, brief = proof_brief(client, standin, groups=[CAPTION_GROUP])
    token, held = claimed_task(client, brief)

    response = client.post(f"/v1/tasks/{held['task']['id']}/submissions", json=body, headers=auth(token))

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]
    assert counts(db_session)["submissions"] == 0


def test_oversized_upload_is_413_and_stores_nothing(client, standin, app, db_session, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 50_000)
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    big = png(seed=1) + b"\x00" * 60_000

    response = submit(client, token, held["task"]["id"], screenshot=big)

    assert response.status_code == 413
    assert counts(db_session)["submissions"] == 0
    assert not any(p.is_file() for p in (tmp_path / "storage").rglob("*"))
    # Well past the allowance, the request guard refuses it before the view runs.
    assert submit(client, token, held["task"]["id"], screenshot=b"\x00" * 400_000).status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png"])
def test_wrong_content_type_is_415(client, standin, db_session, content_type):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)

    response = client.post(f"/v1/tasks/{held['task']['id']}/submissions", data=png(),
                           content_type=content_type, headers=auth(token))

    assert response.status_code == 415
    assert counts(db_session)["submissions"] == 0


def test_screenshot_as_a_text_field_or_two_files_is_422(client, standin, db_session):
    import io

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    url = f"/v1/tasks/{held['task']['id']}/submissions"

    as_text = client.post(url, data={"screenshot": "iVBORw0KGgo="}, headers=auth(token),
                          content_type="multipart/form-data")
    two = client.post(url, data={"screenshot": [(io.BytesIO(png(1)), "a.png"), (io.BytesIO(png(2)), "b.png")]},
                      headers=auth(token), content_type="multipart/form-data")

    assert as_text.status_code == 422 and two.status_code == 422
    assert counts(db_session)["submissions"] == 0


def test_workers_only(client, standin):
    _, brief = proof_brief(client, standin)
    _, held = claimed_task(client, brief)
    _, brand_key = sign_up_brand(client)
    url = f"/v1/tasks/{held['task']['id']}/submissions"
    assert client.post(url, json={}).status_code == 401
    assert client.post(url, json={}, headers=auth(brand_key)).status_code == 403


# --- what the job refuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "needle"), [
    (NOT_AN_IMAGE, "not a PNG, JPEG, WEBP or GIF"),
    (decompression_bomb(), "pixels"),
    (truncated_png(), "truncated"),
    (polyglot(), "unexpected data after the end of the image"),
])
def test_hostile_screenshots_are_accepted_then_auto_rejected_with_a_clear_detail(
        client, standin, app, db_session, data, needle):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], screenshot=data, filename="cat.png")
    assert response.status_code == 202  # the request never decodes: sniffing happens in the job
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    screenshot = checks_by_name(done)["screenshot"]
    assert done["status"] == "auto_rejected"
    assert screenshot["outcome"] == "fail" and needle in screenshot["detail"], screenshot
    assert "duplicate" not in checks_by_name(done)
    assert statuses(db_session, held) == ("rejected", "open")


@pytest.mark.parametrize(("text", "check", "needle"), [
    ("too short #ad", "text", "too short"),
    ("this is far too long " * 10 + "#ad", "text", "too long"),
    ("Better than CÓMPETITOR shoes, honestly #ad", "prohibited", "competitor"),
    ("lighter shoe, same grip, love these ones", "disclosure", "#ad or #sponsored"),
])
def test_text_rules_auto_reject(client, standin, app, text, check, needle):
    _, brief = proof_brief(client, standin, groups=[CAPTION_GROUP], prohibitions=["competitor"])
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], text=text)
    assert response.status_code == 202
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    assert done["status"] == "auto_rejected"
    result = checks_by_name(done)[check]
    assert result["outcome"] == "fail" and needle in result["detail"].lower(), result


def test_good_caption_passes_and_a_near_copy_in_the_same_brief_is_rejected(client, standin, app):
    brand_key, brief = proof_brief(client, standin, groups=[CAPTION_GROUP])
    caption = "Lighter shoe, same grip: my morning run felt easy today #ad"
    token, held = claimed_task(client, brief)
    original = submit(client, token, held["task"]["id"], text=caption).get_json()
    run_validation_jobs(app)
    assert submission(client, token, original["id"])["status"] == "needs_review"

    copier, copied = claimed_task(client, brief)
    copy = submit(client, copier, copied["task"]["id"], text=caption.upper().replace(":", " -")).get_json()
    run_validation_jobs(app)

    done = submission(client, copier, copy["id"])
    assert done["status"] == "auto_rejected"
    near = checks_by_name(done)["near_copy"]
    assert near["outcome"] == "fail" and ANOTHER_SUBMISSION in near["detail"]  # the copier may not open it
    assert original["id"] in checks_by_name(submission(client, brand_key, copy["id"]))["near_copy"]["detail"]


def _validate_all_at_once(app, submission_ids: list[str]) -> None:
    """Run each submission's validation job in a thread of its own, all started together."""
    from workers.validation import validate_submission

    barrier, errors = threading.Barrier(len(submission_ids)), []

    def run(sub_id: str) -> None:
        from marketplace.extensions import db

        with app.app_context():
            try:
                barrier.wait()
                validate_submission(sub_id)
            except Exception as exc:  # surfaced below: a thread's exception would vanish
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(sub_id,)) for sub_id in submission_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []


@pytest.mark.parametrize("proof", ["text", "screenshot"])
def test_two_copies_validated_at_once_exactly_one_is_caught(client, standin, app, proof):
    """Pairs of workers send the same caption (or picture); every job runs at the same moment.
    Whatever the interleaving, exactly one of each pair is the copy, and it is the one submitted
    second. (Before, each job could miss the other and both were paid.)"""
    group = CAPTION_GROUP if proof == "text" else SCREENSHOT_GROUP
    brand_key, brief = proof_brief(client, standin, groups=[{**group, "quantity": 10}])
    pairs = []
    for n in range(4):
        fields = ({"text": f"Lighter shoe number {n}, same grip: my morning run felt easy today #ad"}
                  if proof == "text" else {"screenshot": png(seed=60 + n)})
        pairs.append([submitted(client, brief, **fields) for _ in range(2)])

    _validate_all_at_once(app, [sub_id for pair in pairs for _, sub_id in pair])

    check = "near_copy" if proof == "text" else "duplicate"
    for (token_a, a), (token_b, b) in pairs:
        original, copy = submission(client, token_a, a), submission(client, token_b, b)
        assert (original["status"], copy["status"]) == ("needs_review", "auto_rejected"), (original, copy)
        caught = checks_by_name(submission(client, brand_key, b))[check]  # the brand may open both
        assert caught["outcome"] == "fail" and a in caught["detail"]
        assert checks_by_name(original)[check]["outcome"] == "pass"


@pytest.mark.parametrize("proof", ["text", "screenshot"])
def test_the_first_submitted_is_the_original_though_its_job_runs_last(client, standin, app, proof):
    """B copies A, and B's job runs first (A's was slow, or retried): B passes for the moment.
    When A's job runs, it finds B submitted after it: B is the copy, and is rejected then."""
    from workers.validation import validate_submission

    group = CAPTION_GROUP if proof == "text" else SCREENSHOT_GROUP
    brand_key, brief = proof_brief(client, standin, groups=[group])
    fields = ({"text": "Lighter shoe, same grip: my morning run felt easy today #ad"}
              if proof == "text" else {"screenshot": png(seed=77)})
    token_a, a = submitted(client, brief, **fields)
    token_b, b = submitted(client, brief, **fields)
    with app.app_context():
        assert validate_submission(b) == "needs_review"
        assert validate_submission(a) == "needs_review"
    check = "near_copy" if proof == "text" else "duplicate"
    copy = submission(client, brand_key, b)
    assert copy["status"] == "auto_rejected" and a in checks_by_name(copy)[check]["detail"]
    assert checks_by_name(submission(client, token_a, a))[check]["outcome"] == "pass"
    reopened = client.get("/v1/me/claims", headers=auth(token_b)).get_json()["data"]
    assert reopened == []  # B's claim ended with its rejection


def test_proof_resubmitted_after_its_rejection_is_no_copy_of_itself(client, standin, app, db_session):
    """A worker whose submission was rejected (here for its caption) sends the same picture with a
    better caption on a new claim: their own rejected work is not an original it copies."""
    group = {"kind": "clip", "quantity": 10, "unit_price_cents": 100,
             "proof": {"screenshot": "required", "text": {"min_length": 5, "max_length": 200}}}
    _, brief = proof_brief(client, standin, groups=[group])
    token, held = claimed_task(client, brief)
    first = submit(client, token, held["task"]["id"], screenshot=png(seed=70), text="no disclosure here").get_json()
    run_validation_jobs(app)
    assert submission(client, token, first["id"])["status"] == "auto_rejected"
    again = claim(client, token, brief["task_groups"][0]["id"])
    second = submit(client, token, again["task"]["id"], screenshot=png(seed=70), text="now with it #ad").get_json()
    run_validation_jobs(app)
    done = submission(client, token, second["id"])
    assert checks_by_name(done)["duplicate"]["outcome"] == "pass" and done["status"] == "needs_review", done


def test_captured_at_in_the_future_fails_the_timestamp_check(client, standin, app):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], screenshot=png(seed=21),
                      captured_at=datetime.now(UTC) + timedelta(hours=3))
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    assert done["status"] == "auto_rejected"
    assert "in the future" in checks_by_name(done)["timestamp"]["detail"]


def test_exif_time_between_claim_and_submission_passes(client, standin, app):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], screenshot=jpeg_with_exif(datetime.now(UTC), seed=22))
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    assert checks_by_name(done)["timestamp"]["outcome"] == "pass", done["checks"]
    assert done["status"] == "needs_review"


@pytest.mark.parametrize("hours", [3, -5, 14])
def test_a_phone_photo_in_local_time_without_a_zone_is_not_rejected(client, standin, app, hours):
    """Taken just now at UTC+3 (or -5, +14), EXIF in local time with no offset tag: it may not be
    judged as UTC (hours in the future or before the claim); a person looks instead."""
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    local_now = datetime.now(UTC).astimezone(timezone(timedelta(hours=hours)))
    response = submit(client, token, held["task"]["id"], screenshot=jpeg_with_exif(local_now, seed=23, zone=False))
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    assert done["status"] == "needs_review", done["checks"]
    assert checks_by_name(done)["timestamp"]["outcome"] == "warn"
    assert "no time zone" in checks_by_name(done)["timestamp"]["detail"]


def test_a_zoneless_photo_days_old_is_still_rejected(client, standin, app):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    old = datetime.now(UTC) - timedelta(days=2)
    response = submit(client, token, held["task"]["id"], screenshot=jpeg_with_exif(old, seed=24, zone=False))
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    assert done["status"] == "auto_rejected"
    assert "(any zone) is before the task was claimed" in checks_by_name(done)["timestamp"]["detail"]


# --- links against a local server ------------------------------------------------------------------------


class _LinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        """A platform's post pages: what tests put in server.posts, else a page with no tracked link."""
        self.server.hits.append(self.path)
        status = 404 if self.path.startswith("/missing") else 403 if self.path.startswith("/walled") else 200
        body = self.server.posts.get(self.path, "<html><body><p>Lighter shoe, same grip #ad</p></body></html>")
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    do_HEAD = do_GET


@pytest.fixture
def link_server(app, monkeypatch):
    """A local site; the link check's resolver maps shop.tiktok.com to it (an explicit test allowance)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _LinkHandler)
    httpd.daemon_threads = True
    httpd.hits = []
    httpd.posts = {}
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setitem(app.config, "LINK_CHECK_STATIC_HOSTS", {"shop.tiktok.com": "127.0.0.1"})
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_link_with_the_tracked_code_on_an_allowed_domain_passes(client, standin, app, link_server):
    _, brief = proof_brief(client, standin, groups=[LINK_GROUP])
    token, held = claimed_task(client, brief)
    link = f"http://shop.tiktok.com:{link_server.server_port}/video?ref={held['tracked_code']}"

    response = submit(client, token, held["task"]["id"], link=link)
    assert response.status_code == 202, response.get_json()
    assert link_server.hits == []  # no network work in the request
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    assert checks_by_name(done)["link"]["outcome"] == "pass", done["checks"]
    assert done["status"] == "needs_review" and len(link_server.hits) == 1


def _validated_link(client, standin, app, make_link) -> tuple[str, dict, dict]:
    """A worker claims a link task, submits make_link(claim) and the validation job runs: the
    worker's token, the 202 answer, and the submission as the worker then reads it."""
    _, brief = proof_brief(client, standin, groups=[LINK_GROUP])
    token, held = claimed_task(client, brief)
    response = submit(client, token, held["task"]["id"], link=make_link(held))
    assert response.status_code == 202, response.get_json()
    run_validation_jobs(app)
    return token, response.get_json(), submission(client, token, response.get_json()["id"])


def test_a_real_post_whose_page_carries_the_tracked_link_passes(client, standin, app, link_server):
    """What the instructions ask: the tracked link goes in the post, and the post's own URL (which never
    carries our code) is submitted. The check opens the post and finds the link there."""
    def post_carrying_the_link(held: dict) -> str:
        assert "in the post itself" in held["task"]["proof"]["link"]["where"]  # the worker is told where
        link_server.posts["/p/CzTrail123/"] = (
            f'<html><body><p>My morning run #ad <a href="{held["tracked_link"]}">get yours</a></p></body></html>')
        return f"http://shop.tiktok.com:{link_server.server_port}/p/CzTrail123/"

    token, _, done = _validated_link(client, standin, app, post_carrying_the_link)
    link = checks_by_name(done)["link"]
    assert (link["outcome"], done["status"]) == ("pass", "needs_review"), done["checks"]
    assert done["waits_for"] == "auto_approval" and done["auto_approve_at"]
    assert "the post carries the tracked link" in link["detail"]
    listed = client.get("/v1/tasks", headers=auth(token)).get_json()["data"][0]
    assert "in the post itself" in listed["proof"]["link"]["where"]  # the listing says it too


def test_a_post_behind_a_login_wall_waits_for_a_person(client, standin, app, link_server):
    _, answered, done = _validated_link(
        client, standin, app, lambda held: f"http://shop.tiktok.com:{link_server.server_port}/walled/p/1/")
    assert (checks_by_name(done)["link"]["outcome"], done["status"]) == ("warn", "needs_review")
    # Warned work is never approved automatically: the worker is not told it will be.
    assert (done["waits_for"], done["auto_approve_at"]) == ("review", None)
    assert answered["waits_for"] == "validation" and answered["auto_approve_at"]


@pytest.mark.parametrize(("make_link", "needle"), [
    (lambda port, code: f"http://tiktok.com.evil.io/v?ref={code}", "not one of the allowed domains"),
    (lambda port, code: f"http://shop.tiktok.com:{port}/v", "does not carry the tracked link"),
    (lambda port, code: f"http://shop.tiktok.com:{port}/missing?ref={code}", "answered 404"),
    (lambda port, code: f"ftp://shop.tiktok.com/v?ref={code}", "only http and https"),
    (lambda port, code: f"http://127.0.0.1:{port}/v?ref={code}", "domain name, not an IP"),
])
def test_bad_links_auto_reject(client, standin, app, link_server, make_link, needle):
    _, _, done = _validated_link(client, standin, app,
                                 lambda held: make_link(link_server.server_port, held["tracked_code"]))
    assert done["status"] == "auto_rejected"
    assert needle in checks_by_name(done)["link"]["detail"], done["checks"]


def test_link_resolving_to_loopback_is_refused_when_private_addresses_are_not_allowed(
        client, standin, app, link_server, monkeypatch):
    monkeypatch.setitem(app.config, "LINK_CHECK_ALLOW_PRIVATE", False)
    _, _, done = _validated_link(
        client, standin, app,
        lambda held: f"http://shop.tiktok.com:{link_server.server_port}/v?ref={held['tracked_code']}")
    link = checks_by_name(done)["link"]
    assert done["status"] == "auto_rejected"
    assert "forbidden address 127.0.0.1 (loopback)" in link["detail"]
    assert link_server.hits == []  # refused before connecting


def test_unreachable_link_only_warns(client, standin, app, link_server):
    _, brief = proof_brief(client, standin, groups=[LINK_GROUP])
    token, held = claimed_task(client, brief)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _LinkHandler)
    port = closed.server_port
    closed.server_close()  # nothing listens there now

    response = submit(client, token, held["task"]["id"], link=f"http://shop.tiktok.com:{port}/v?ref={held['tracked_code']}")
    run_validation_jobs(app)

    done = submission(client, token, response.get_json()["id"])
    assert checks_by_name(done)["link"]["outcome"] == "warn"
    assert done["status"] == "needs_review"


# --- reading submissions back ------------------------------------------------------------------------------


def test_who_may_read_a_submission_and_its_screenshot(client, standin, app, runner):
    brand_key, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    shot = jpeg_with_exif(datetime.now(UTC), seed=30)
    sub = submit(client, token, held["task"]["id"], screenshot=shot, filename="../../etc/passwd.gif",
                 content_type="image/gif").get_json()
    _, stranger = sign_up_worker(client)
    _, other_brand = sign_up_brand(client)
    admin = make_admin(runner)

    for secret in (token, brand_key, admin):
        assert client.get(f"/v1/submissions/{sub['id']}", headers=auth(secret)).status_code == 200
        image = client.get(f"/v1/submissions/{sub['id']}/screenshot", headers=auth(secret))
        assert image.status_code == 200 and image.data == shot
        assert image.mimetype == "image/jpeg"  # sniffed, not the claimed image/gif
        assert image.headers["X-Content-Type-Options"] == "nosniff"
    for secret in (stranger, other_brand):
        assert client.get(f"/v1/submissions/{sub['id']}", headers=auth(secret)).status_code == 404
        assert client.get(f"/v1/submissions/{sub['id']}/screenshot", headers=auth(secret)).status_code == 404
    assert client.get("/v1/submissions/sub_nope", headers=auth(admin)).status_code == 404


def test_stored_file_key_is_random_not_the_client_file_name(client, standin, db_session, tmp_path):
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    submit(client, token, held["task"]["id"], screenshot=png(), filename="../../../evil.png")

    key = db_session.execute(sa.text("SELECT screenshot_key FROM submissions")).scalar_one()
    assert "evil" not in key and ".." not in key
    stored = [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].read_bytes() == png()


def test_my_submissions_newest_first_with_cursor(client, standin, app):
    _, brief = proof_brief(client, standin, groups=[{**CAPTION_GROUP, "max_per_worker": 5}])
    _, token = sign_up_worker(client)
    ids = []
    for i in range(3):
        from tests.factories import claim

        held = claim(client, token, brief["task_groups"][0]["id"])
        ids.append(submit(client, token, held["task"]["id"], text=f"caption number {i} is long enough #ad")
                   .get_json()["id"])
        time.sleep(0.01)
    _, other = sign_up_worker(client)

    first = client.get("/v1/me/submissions?limit=2", headers=auth(token)).get_json()
    rest = client.get(f"/v1/me/submissions?limit=2&cursor={first['next_cursor']}", headers=auth(token)).get_json()

    assert [s["id"] for s in first["data"] + rest["data"]] == ids[::-1]
    assert rest["next_cursor"] is None
    assert client.get("/v1/me/submissions", headers=auth(other)).get_json()["data"] == []
    assert client.get("/v1/me/submissions?cursor=junk", headers=auth(token)).status_code == 422
    assert client.get("/v1/me/submissions?limit=0", headers=auth(token)).status_code == 422


def test_a_retried_multipart_submission_with_the_same_idempotency_key_is_one_submission(
        client, standin, app, db_session):
    import io

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    shot = png(seed=50)

    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    def post(picture: bytes = shot):
        # Each retry draws a new multipart boundary, as clients such as requests do: the bytes differ.
        boundary, body = encode_multipart(
            {"screenshot": FileStorage(io.BytesIO(picture), "a.png", content_type="image/png"),
             "captured_at": "2026-06-01T00:00:00Z"}, boundary=f"----retry-{uuid.uuid4().hex}")
        return client.post(f"/v1/tasks/{held['task']['id']}/submissions", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}",
                           headers={**auth(token), "Idempotency-Key": "upload-1"})

    first, again = post(), post()

    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert counts(db_session)["submissions"] == 1
    assert queued_validation_jobs(app) == 1
    assert post(png(seed=51)).status_code == 409  # the same key with another picture


def test_a_submission_the_database_refuses_leaves_no_stored_screenshot(app, client, standin, tmp_path, monkeypatch):
    """The file is stored before the row; when the commit fails for any reason, the file goes too."""
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # answer the 500 as production would
    with database_refuses(app, "submissions", "INSERT"):
        response = submit(client, token, held["task"]["id"], screenshot=png(seed=5))
        assert response.status_code == 500  # a fault of ours, not of the request
    assert [p for p in (tmp_path / "storage").rglob("*") if p.is_file()] == []
    assert submit(client, token, held["task"]["id"], screenshot=png(seed=5)).status_code == 202


def test_a_later_copy_already_approved_is_left_to_a_person_and_the_original_warns(client, standin, app, runner):
    from workers.validation import validate_submission

    brand_key, brief = proof_brief(client, standin)
    token_a, a = submitted(client, brief, screenshot=png(seed=78))
    token_b, b = submitted(client, brief, screenshot=png(seed=78))
    with app.app_context():
        assert validate_submission(b) == "needs_review"
    admin = make_admin(runner)
    decided = client.post("/v1/review/decisions", json={"submission_ids": [b], "decision": "approve"},
                          headers=auth(admin))
    assert decided.get_json()["approved"] == 1
    with app.app_context():
        assert validate_submission(a) == "needs_review"
    warned = checks_by_name(submission(client, brand_key, a))["duplicate"]
    assert warned["outcome"] == "warn" and b in warned["detail"] and "already decided" in warned["detail"]
    told = checks_by_name(submission(client, token_a, a))["duplicate"]["detail"]  # the worker may not open b
    assert b not in told and ANOTHER_SUBMISSION in told
    assert submission(client, token_b, b)["status"] == "approved"  # a person's decision is not undone


class _SlowBody(io.RawIOBase):
    """A request body that arrives slowly, 64 bytes at a time, as an upload over a poor phone
    connection does."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # (the test client measures the body by seeking)
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()

    def readinto(self, buffer) -> int:
        time.sleep(0.05)
        chunk = self._data.read(min(len(buffer), 64))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_a_slow_upload_begun_before_the_expiry_is_on_time_with_an_idempotency_key(client, standin, db_session):
    """The idempotency hook reads the whole upload before the view runs: the request's arrival,
    not the end of that read, is what is compared with the claim's expiry."""
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    db_session.execute(sa.text("UPDATE claims SET expires_at = now() + interval '1 second' WHERE id = :id"),
                       {"id": held["claim_id"]})
    db_session.commit()
    boundary, body = encode_multipart({"screenshot": FileStorage(io.BytesIO(png(seed=91, size=(640, 480))), "a.png",
                                                                 content_type="image/png")})
    started = time.monotonic()
    response = client.post(f"/v1/tasks/{held['task']['id']}/submissions", input_stream=_SlowBody(body),
                           content_length=len(body), content_type=f"multipart/form-data; boundary={boundary}",
                           headers={**auth(token), "Idempotency-Key": "slow-1"})
    assert time.monotonic() - started > 1.5  # (the upload did outlast the claim)
    assert response.status_code == 202, response.get_json()


def test_a_chain_of_copies_validated_before_the_original_all_end_rejected(client, standin, app):
    from workers.validation import validate_submission

    brand_key, brief = proof_brief(client, standin)
    made = [submitted(client, brief, screenshot=png(seed=79)) for _ in range(3)]  # the original, two copies
    (token_a, a), *copies = made
    with app.app_context():
        assert [validate_submission(c) for _, c in copies] == ["needs_review", "auto_rejected"]  # the 2nd sees the 1st
        assert validate_submission(a) == "needs_review"
    (token_1, copy_1), (token_2, copy_2) = copies
    first, second = submission(client, brand_key, copy_1), submission(client, brand_key, copy_2)
    assert first["status"] == second["status"] == "auto_rejected"
    assert a in checks_by_name(first)["duplicate"]["detail"]  # found when the original's job ran
    assert copy_1 in checks_by_name(second)["duplicate"]["detail"]  # a copy of the copy before it
    for token in (token_1, token_2):
        assert client.get("/v1/me/claims", headers=auth(token)).get_json()["data"] == []
    assert checks_by_name(submission(client, token_a, a))["duplicate"]["outcome"] == "pass"


def _multipart(parts: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """A multipart body built by hand, so a part can lack the name= no client library would drop."""
    body = b""
    for disposition, content in parts:
        body += b"--XyZ\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n" + content + b"\r\n"
    return "multipart/form-data; boundary=XyZ", body + b"--XyZ--\r\n"


def test_a_part_without_a_name_is_refused_once_and_the_role_is_answered_first(client, standin, db_session):
    """A nameless text part, a nameless file next to an unknown one, and a lone nameless file were
    a 500 (or 'None: Unknown field.'), and with an Idempotency-Key a 500 for every role."""
    _, brief = proof_brief(client, standin)
    token, held = claimed_task(client, brief)
    _, brand_key = sign_up_brand(client)
    url = f"/v1/tasks/{held['task']['id']}/submissions"
    cases = {
        "text": [("form-data", b"hello")],
        "file beside an unknown one": [('form-data; filename="a.png"', png()),
                                       ('form-data; name="x"; filename="b.png"', png())],
        "lone file": [('form-data; filename="a.png"', png())],
    }
    for case, parts in cases.items():
        content_type, body = _multipart(parts)
        for keyed in ({}, {"Idempotency-Key": f"nameless-{case}"}):
            worker = client.post(url, data=body, content_type=content_type, headers={**auth(token), **keyed})
            assert worker.status_code == 422, (case, keyed, worker.get_json())
            assert worker.get_json()["errors"] == {"form": ["A part has no name."]}
            brand = client.post(url, data=body, content_type=content_type,
                                headers={**auth(brand_key), **{k: v + "-b" for k, v in keyed.items()}})
            assert brand.status_code == 403, (case, keyed, brand.get_json())
    assert db_session.execute(sa.text("SELECT count(*) FROM submissions")).scalar_one() == 0


def test_a_duplicate_names_the_original_only_to_those_who_may_open_it(client, standin, app, runner):
    """A copy on another brand's brief: its worker and its brand read "an earlier submission on the
    platform"; an admin reads the id; a brand whose own briefs hold both sees the id too."""
    first_key, first_brief = proof_brief(client, standin)
    second_key, second_brief = proof_brief(client, standin)
    first_token, first_claim = claimed_task(client, first_brief)
    original = submit(client, first_token, first_claim["task"]["id"], screenshot=png(seed=31)).get_json()
    run_validation_jobs(app)
    copier, copy_claim = claimed_task(client, second_brief)
    copy = submit(client, copier, copy_claim["task"]["id"], screenshot=png(seed=31)).get_json()
    run_validation_jobs(app)
    same_brief_token, same_brief_claim = claimed_task(client, first_brief)
    inside = submit(client, same_brief_token, same_brief_claim["task"]["id"], screenshot=png(seed=31)).get_json()
    run_validation_jobs(app)
    admin = make_admin(runner)

    def duplicate_detail(key: str, submission_id: str) -> str:
        body = submission(client, key, submission_id)
        detail = checks_by_name(body)["duplicate"]["detail"]
        assert [r["detail"] for r in body["reasons"] if r["check"] == "duplicate"] == [detail]
        return detail

    for reader in (copier, second_key):
        assert original["id"] not in duplicate_detail(reader, copy["id"])
        assert ANOTHER_SUBMISSION in duplicate_detail(reader, copy["id"])
    assert original["id"] in duplicate_detail(admin, copy["id"])
    assert original["id"] in duplicate_detail(first_key, inside["id"])  # both on its own brief
    queue = client.get(f"/v1/review/submissions?brief={second_brief['id']}&status=auto_rejected",
                       headers=auth(second_key)).get_json()["data"]
    assert [item["id"] for item in queue] == [copy["id"]]
    shown = [c["detail"] for c in queue[0]["checks"]] + [r["detail"] for r in queue[0]["rejection_reasons"]]
    assert shown and not any(original["id"] in text for text in shown)
    admin_queue = client.get(f"/v1/review/submissions?brief={second_brief['id']}&status=auto_rejected",
                             headers=auth(admin)).get_json()["data"]
    assert any(original["id"] in c["detail"] for c in admin_queue[0]["checks"])
