"""Proof storage on an S3-compatible store: a real S3 HTTP endpoint (moto's server mode, in this
process) reached through boto3, a web process and an RQ worker that share only the bucket, and
a store that is down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa

from marketplace import REPO_ROOT
from tests.factories import auth
from tests.factories.proofs import (
    checks_by_name,
    claimed_task,
    png,
    proof_brief,
    submission,
    submit,
)

SCREENSHOT_GROUP = {"kind": "review", "quantity": 5, "unit_price_cents": 100, "proof": {"screenshot": "required"}}
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a real port: every call below is an HTTP request, signed by boto3."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in AWS}
    os.environ.update(AWS)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def bucket(s3_endpoint) -> str:
    name = f"proofs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def _objects(s3_endpoint: str, bucket: str) -> list[str]:
    listed = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture
def s3_app(app, s3_endpoint, bucket, tmp_path, monkeypatch):
    """The test app (the web process) keeping proofs in the bucket, with a local directory of its
    own that must stay empty."""
    monkeypatch.setitem(app.config, "STORAGE_URL", f"s3://{bucket}/proofs")
    monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setitem(app.config, "STORAGE_DIR", str(tmp_path / "web-local"))
    return app


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_the_s3_backend_stores_streams_and_deletes_under_its_prefix(s3_endpoint, bucket):
    from marketplace.proofs.storage import S3Storage, StorageKeyError

    store = S3Storage(bucket, "proofs/eu", endpoint_url=s3_endpoint)
    data = png(seed=3, size=(900, 700))
    key = store.put(data)
    assert _objects(s3_endpoint, bucket) == [f"proofs/eu/{key}"]
    assert store.size(key) == len(data)
    body = store.open(key)
    assert body.read(8) == data[:8] and body.read() == data[8:]  # a stream, read in parts
    body.close()
    assert store.get(key) == data

    store.delete(key)
    assert _objects(s3_endpoint, bucket) == []
    with pytest.raises(StorageKeyError):
        store.get(key)
    for hostile in ("../../etc/passwd", "ab/../../x", "AB/" + "0" * 32, ""):
        with pytest.raises(StorageKeyError):
            store.open(hostile)


def test_a_store_that_is_down_is_storage_unavailable_not_a_crash(bucket):
    from marketplace.proofs.storage import S3Storage, StorageUnavailable

    dead = S3Storage(bucket, endpoint_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(StorageUnavailable):
        dead.put(b"x")
    with pytest.raises(StorageUnavailable):
        dead.open("ab/" + "0" * 32)
    with pytest.raises(StorageUnavailable):
        dead.ping()


def test_a_storage_url_that_is_not_s3_is_refused_at_start_up(test_environment):
    from marketplace import create_app

    for bad in ("s3:///no-bucket", "gs://bucket/x", "bucket/x", "s3://bucket/x?region=eu"):
        with pytest.raises(ValueError, match="STORAGE_URL"):
            create_app({"TESTING": True, "STORAGE_URL": bad})


def test_an_upload_while_the_store_is_down_is_a_503_and_records_nothing(client, standin, app, bucket,
                                                                         monkeypatch, db_session):
    monkeypatch.setitem(app.config, "STORAGE_URL", f"s3://{bucket}/proofs")
    monkeypatch.setitem(app.config, "S3_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nobody there
    _, brief = proof_brief(client, standin, groups=[SCREENSHOT_GROUP])
    token, held = claimed_task(client, brief)

    response = submit(client, token, held["task"]["id"], screenshot=png(seed=5))
    assert response.status_code == 503, response.get_json()
    assert response.content_type == "application/problem+json"
    assert "stored" in response.get_json()["detail"]
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM submissions")).scalar() == 0
    task_status = db_session.execute(sa.text("SELECT status FROM tasks WHERE id = :id"),
                                     {"id": held["task"]["id"]}).scalar()
    assert task_status == "claimed"  # still the worker's, to submit again

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["storage"].startswith("unreachable")


def test_screenshots_are_streamed_from_the_bucket_with_their_length(client, standin, s3_app, s3_endpoint, bucket,
                                                                    tmp_path):
    _, brief = proof_brief(client, standin, groups=[SCREENSHOT_GROUP])
    token, held = claimed_task(client, brief)
    data = png(seed=11, size=(1200, 900))
    sub_id = submit(client, token, held["task"]["id"], screenshot=data).get_json()["id"]
    assert len(_objects(s3_endpoint, bucket)) == 1
    assert client.get("/readyz").get_json()["checks"]["storage"] == f"ok (s3://{bucket}/proofs)"

    served = client.get(f"/v1/submissions/{sub_id}/screenshot", headers=auth(token), buffered=False)
    assert served.is_streamed
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.content_length == len(data)
    assert b"".join(served.response) == data
    served.close()
    assert _files_under(tmp_path / "web-local") == []


def test_a_web_process_and_a_worker_with_different_disks_share_proofs_through_the_bucket(
        client, standin, s3_app, s3_endpoint, bucket, tmp_path, db_session):
    """The upload lands in the bucket from this (web) process; a separate RQ worker process, whose
    STORAGE_DIR is another empty directory, validates it from the bucket; the web process serves it."""
    from marketplace.jobs import queue_name

    _, brief = proof_brief(client, standin, groups=[SCREENSHOT_GROUP])
    token, held = claimed_task(client, brief)
    data = png(seed=21)
    sub_id = submit(client, token, held["task"]["id"], screenshot=data).get_json()["id"]

    worker_disk = tmp_path / "worker-local"
    env = {**os.environ, **AWS, "STORAGE_DIR": str(worker_disk), "STORAGE_URL": f"s3://{bucket}/proofs",
           "S3_ENDPOINT_URL": s3_endpoint}
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "rq"), "worker", "--burst", "-w", "rq.worker.SimpleWorker",
         "--url", s3_app.config["REDIS_URL"], queue_name("validation", s3_app)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]

    db_session.rollback()
    status, phash = db_session.execute(sa.text("SELECT status, phash FROM submissions WHERE id = :id"),
                                       {"id": sub_id}).one()
    assert status == "needs_review" and phash is not None  # the worker read the image from the bucket
    checks = checks_by_name(submission(client, token, sub_id))
    assert checks["screenshot"]["outcome"] == "pass", checks["screenshot"]

    served = client.get(f"/v1/submissions/{sub_id}/screenshot", headers=auth(token))
    assert served.status_code == 200 and served.data == data
    assert _files_under(worker_disk) == [] and _files_under(tmp_path / "web-local") == []
    assert len(_objects(s3_endpoint, bucket)) == 1
