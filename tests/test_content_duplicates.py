"""Duplicates that survive edits (issue 14 §2, issue 15 §4), end to end: screenshots drawn by
tests/factories/screenshots.py go through the submission route, a real RQ SimpleWorker burst runs
the validation jobs on PostgreSQL, and an edited copy of an earlier submission's screenshot comes
back auto-rejected naming that submission, while another post of the same app layout does not."""

from __future__ import annotations

import json
import random

import psycopg
import pytest
import sqlalchemy as sa
from PIL import Image, ImageEnhance

from tests.factories import screenshots
from tests.factories.proofs import (
    checks_by_name,
    claimed_task,
    proof_brief,
    run_validation_jobs,
    submission,
    submit,
)


@pytest.fixture(autouse=True)
def _storage(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "storage"))


def crop_5_percent(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * 0.05), round(h * 0.05), w - round(w * 0.05), h - round(h * 0.05)))


def scaled(factor: float):
    return lambda img: img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.BILINEAR)


def toned(brightness: float, contrast: float):
    return lambda img: ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(brightness)).enhance(contrast)


# The issue's edits, each at its bound.
EDITS = {
    "crop 5%": crop_5_percent,
    "jpeg q30": lambda img: screenshots.jpeg(img, random.Random(0)),
    "resize 0.5x": scaled(0.5),
    "resize 2x": scaled(2.0),
    "brightness +15% contrast -15%": toned(1.15, 0.85),
    "brightness -15% contrast +15%": toned(0.85, 1.15),
    "sticker": lambda img: screenshots.sticker(img, random.Random(5)),
}
GROUP = {"kind": "clip", "quantity": 2 * len(EDITS) + 2, "unit_price_cents": 100, "proof": {"screenshot": "required"}}
SEED = 5000  # post SEED + i is edit i's original; SEED + 99 is the other post


def post(client, brief, img: Image.Image, fmt: str = "PNG") -> tuple[str, str]:
    token, held = claimed_task(client, brief)
    data = screenshots.encode(img, fmt)
    response = submit(client, token, held["task"]["id"], screenshot=data, filename="shot." + fmt.lower(),
                      content_type="image/" + fmt.lower())
    assert response.status_code == 202, response.get_json()
    return token, response.get_json()["id"]


def duplicate_row(db_session, submission_id: str):
    db_session.rollback()
    return db_session.execute(sa.text(
        "SELECT outcome, detail, data FROM submission_checks WHERE submission_id = :id AND name = 'duplicate'"),
        {"id": submission_id}).one()


def test_edited_copies_are_flagged_naming_the_original_and_another_post_is_not(
        client, standin, app, db_session, monkeypatch):
    # The whole-screen check only calls identical hashes duplicates here, so what flags a copy is the
    # content band (the resized copies' whole-screen hashes are identical: those two it flags itself).
    monkeypatch.setitem(app.config, "DUPLICATE_HAMMING_THRESHOLD", 0)
    brand_key, brief = proof_brief(client, standin, [GROUP])
    originals = {name: post(client, brief, screenshots.screenshot(SEED + i)) for i, name in enumerate(EDITS)}
    run_validation_jobs(app)
    copies = {name: post(client, brief, edit(screenshots.screenshot(SEED + i)), "JPEG" if name == "jpeg q30" else "PNG")
              for i, (name, edit) in enumerate(EDITS.items())}
    _, other = post(client, brief, screenshots.screenshot(SEED + 99))
    run_validation_jobs(app)

    for name, (token, copy_id) in copies.items():
        original_id = originals[name][1]
        body = submission(client, brand_key, copy_id)  # the brand sees both: the original is named
        duplicate = checks_by_name(body)["duplicate"]
        assert body["status"] == "auto_rejected" and duplicate["outcome"] == "fail", (name, body)
        assert duplicate["detail"].startswith(f"near-duplicate of {original_id} ("), (name, duplicate)
        assert body["reasons"] == [{"check": "duplicate", "detail": duplicate["detail"], "reason_code": "duplicate"}]
        outcome, detail, data = duplicate_row(db_session, copy_id)
        data = data if isinstance(data, dict) else json.loads(data)
        assert data["matched_submission_id"] == original_id and f"distance {data['distance']})" in detail
        if data.get("method") == "content":
            assert "content distance" in detail and data["distance"] <= data["verify_threshold"]
        else:  # the whole screen matched first: only the resized copies hash to the very same bits
            assert name.startswith("resize") and data["distance"] == 0, (name, data)
        # The copier is told it matched another submission, not which one.
        assert original_id not in checks_by_name(submission(client, token, copy_id))["duplicate"]["detail"]
    methods = {name: duplicate_row(db_session, copy_id).data.get("method") for name, (_, copy_id) in copies.items()}
    assert [name for name, method in methods.items() if method != "content"] in ([], ["resize 0.5x", "resize 2x"],
                                                                                 ["resize 0.5x"], ["resize 2x"])
    for _, original_id in originals.values():
        assert submission(client, brand_key, original_id)["status"] == "needs_review"

    distinct = submission(client, brand_key, other)
    assert distinct["status"] == "needs_review", distinct
    assert checks_by_name(distinct)["duplicate"]["outcome"] == "pass"
    # Every validated screenshot stored its band, its halves and their 20 index keys.
    db_session.rollback()
    stored = db_session.execute(sa.text(
        "SELECT s.id, s.content_phash IS NOT NULL AND s.content_right IS NOT NULL AS hashed, count(k.key) AS keys "
        "FROM submissions s LEFT JOIN submission_content_keys k ON k.submission_id = s.id GROUP BY s.id")).all()
    assert len(stored) == 2 * len(EDITS) + 1 and all(row.hashed and row.keys == 20 for row in stored), stored


def test_an_edited_copy_on_another_brief_is_flagged_and_a_rerun_adds_no_keys(client, standin, app, db_session):
    """Cross-brief, as the whole-screen check: a copy on another brand's brief is a duplicate too, and
    running its job again writes the same keys once."""
    from workers.validation import validate_submission

    _, first = proof_brief(client, standin)
    second_key, second = proof_brief(client, standin)
    _, original_id = post(client, first, screenshots.screenshot(SEED + 1))
    run_validation_jobs(app)
    token, copy_id = post(client, second, crop_5_percent(screenshots.screenshot(SEED + 1)))
    run_validation_jobs(app)

    body = submission(client, second_key, copy_id)
    duplicate = checks_by_name(body)["duplicate"]
    assert body["status"] == "auto_rejected" and duplicate["outcome"] == "fail"
    assert original_id not in duplicate["detail"] and "content distance" in duplicate["detail"]  # not their brief
    assert duplicate_row(db_session, copy_id).data["matched_submission_id"] == original_id

    db_session.execute(sa.text("UPDATE submissions SET status = 'validating' WHERE id = :id"), {"id": copy_id})
    db_session.commit()
    with app.app_context():
        assert validate_submission(copy_id) == "auto_rejected"
    db_session.rollback()
    keys = db_session.execute(sa.text("SELECT count(*) FROM submission_content_keys WHERE submission_id = :id"),
                              {"id": copy_id}).scalar_one()
    assert keys == 20


def test_the_candidate_query_uses_the_content_key_index(client, standin, app, db_session, monkeypatch):
    """The statement the job sends to find content candidates, explained: the primary key of
    submission_content_keys answers it (index scan), never a sequential scan of the table."""
    from marketplace.extensions import db

    _, brief = proof_brief(client, standin)
    post(client, brief, screenshots.screenshot(SEED + 2))
    run_validation_jobs(app)
    post(client, brief, screenshots.screenshot(SEED + 3))
    sent = []
    execute = psycopg.Cursor.execute

    def record(cursor, query, params=None, **kwargs):
        # At the driver: the job's lookups go there past SQLAlchemy (marketplace.db.direct).
        sent.append((query, params))
        return execute(cursor, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", record)
    run_validation_jobs(app)
    monkeypatch.undo()
    lookups = [(sql, params) for sql, params in sent if "FROM submission_content_keys" in sql]
    assert len(lookups) == 1, [sql[:200] for sql, _ in lookups]
    sql, params = lookups[0]
    with app.app_context(), db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))
    scans = [line for line in plan.splitlines() if " on submission_content_keys" in line]
    # An index scan, or a bitmap heap scan fed by a bitmap index scan of the primary key.
    assert scans and all("Index" in line or "Bitmap Heap Scan" in line for line in scans), plan[:2000]
    assert "Index Scan on pk_submission_content_keys" in plan or "Index Only Scan using pk_submission_content_keys" \
        in plan or "Index Scan using pk_submission_content_keys" in plan, plan[:2000]
