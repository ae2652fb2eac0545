"""What a newcomer meets first: the home page, links written with the public origin, and the way
back from Stripe's onboarding."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlsplit

import pytest

from tests.factories import auth, claim, live_brief, sign_up_brand, sign_up_worker
from tests.factories.payouts import payout_account
from tests.factories.tracking import approve

PUBLIC = "https://tasks.example.com"
CAPTION = {"kind": "caption", "quantity": 3, "unit_price_cents": 100,
           "proof": {"text": {"min_length": 5, "max_length": 300}}}


def test_the_home_page_links_the_worker_app_the_console_and_the_docs(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    links = set(re.findall(r'href="([^"]+)"', response.get_data(as_text=True)))
    assert {"/app/", "/console/", "/docs", "/openapi.json"} <= links
    for link in ("/app/", "/console/", "/docs"):
        assert client.get(link).status_code == 200


@pytest.fixture
def public_base_url(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    return PUBLIC


def test_tracked_links_and_the_csv_use_the_public_origin_not_the_request_host(app, client, standin, public_base_url):
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, task_groups=[CAPTION])
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    assert held["tracked_link"] == f"{PUBLIC}/t/{held['tracked_code']}"
    listed = client.get("/v1/me/claims", headers={**auth(token), "Host": "internal:8000"}).get_json()["data"]
    assert listed[0]["tracked_link"] == f"{PUBLIC}/t/{held['tracked_code']}"

    approve(app, [held])
    exported = client.get(f"/v1/briefs/{brief['id']}/assets?format=csv", headers=auth(brand_key))
    (row,) = csv.DictReader(io.StringIO(exported.get_data(as_text=True)))
    assert row["tracked_code"] == held["tracked_code"]
    assert row["tracked_link"] == f"{PUBLIC}/t/{held['tracked_code']}"


def test_the_csv_screenshot_link_opens_without_a_key_until_it_expires(app, client, standin, db_session):
    """A brand clicks the link in its spreadsheet, which sends no bearer token."""
    from tests.factories.proofs import png, proof_brief, run_validation_jobs, submitted

    brand_key, brief = proof_brief(client, standin)
    _, sub_id = submitted(client, brief, screenshot=png(seed=3))
    run_validation_jobs(app)
    decided = client.post("/v1/review/decisions", json={"submission_ids": [sub_id], "decision": "approve"},
                          headers=auth(brand_key))
    assert decided.get_json()["approved"] == 1, decided.get_json()
    exported = client.get(f"/v1/briefs/{brief['id']}/assets?format=csv", headers=auth(brand_key))
    (row,) = csv.DictReader(io.StringIO(exported.get_data(as_text=True)))
    link = urlsplit(row["screenshot_url"])
    assert link.path == f"/v1/shared/screenshots/{sub_id}"
    opened = client.get(f"{link.path}?{link.query}")  # no Authorization header
    assert opened.status_code == 200 and opened.mimetype == "image/png" and opened.data == png(seed=3)

    expires = dict(p.split("=") for p in link.query.split("&"))
    forged = f"{link.path}?expires={int(expires['expires']) + 86400}&signature={expires['signature']}"
    assert client.get(forged).status_code == 404  # a later expiry needs another signature
    other = client.get(f"/v1/shared/screenshots/sub_{'0' * 32}?{link.query}")
    assert other.status_code == 404  # nor does it open another submission
    odd = client.get(f"{link.path}?expires={expires['expires']}&signature={'é' * 64}")
    assert odd.status_code == 422  # not a signature at all (was a 500 from compare_digest)
    stale = client.get(f"{link.path}?expires=1000&signature={expires['signature']}")
    assert stale.status_code == 404 and stale.content_type == "application/problem+json"
    # The JSON keeps the API URL, which takes the brand's key.
    listed = client.get(f"/v1/briefs/{brief['id']}/assets", headers=auth(brand_key)).get_json()["data"][0]
    assert listed["screenshot_url"].endswith(f"/v1/submissions/{sub_id}/screenshot")


def test_finishing_stripe_onboarding_returns_to_the_worker_apps_earnings(client, standin, public_base_url):
    import http.client

    _, token = sign_up_worker(client)
    account = payout_account(client, token)
    parts = urlsplit(account["onboarding_url"])
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    conn.request("GET", f"{parts.path}?{parts.query}")
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 303
    assert response.getheader("Location") == f"{PUBLIC}/app/?payout_account=ready#earnings"


@pytest.mark.parametrize("value", ["tasks.example.com", "ftp://tasks.example.com", "https://x.example/?a=1",
                                   "https:///nohost"])
def test_a_public_base_url_links_cannot_be_written_with_is_refused_at_start_up(value):
    from marketplace.config import check

    with pytest.raises(ValueError, match="PUBLIC_BASE_URL"):
        check({"DUPLICATE_HAMMING_THRESHOLD": 6, "PUBLIC_BASE_URL": value})


def test_my_claims_include_a_task_sent_back_for_revision_with_what_was_asked(app, client, standin, runner):
    from tests.factories import make_admin
    from tests.factories.proofs import run_validation_jobs, submit

    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, task_groups=[CAPTION])
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    waiting = claim(client, token, brief["task_groups"][0]["id"])
    sub_id = submit(client, token, held["task"]["id"], text="Lighter shoe #ad").get_json()["id"]
    run_validation_jobs(app)
    decided = client.post("/v1/review/decisions", headers=auth(make_admin(runner)), json={
        "submission_ids": [sub_id], "decision": "request_revision", "reason_code": "off_brief",
        "reason": "Mention the grip, please."})
    assert decided.get_json()["revision_requested"] == 1, decided.get_json()

    listed = {c["task"]["id"]: c for c in client.get("/v1/me/claims", headers=auth(token)).get_json()["data"]}
    assert set(listed) == {held["task"]["id"], waiting["task"]["id"]}
    assert listed[waiting["task"]["id"]]["revision"] is None
    revision = listed[held["task"]["id"]]["revision"]
    assert revision["submission_id"] == sub_id and revision["reason_code"] == "off_brief"
    assert revision["reason"] == "Mention the grip, please."
    assert listed[held["task"]["id"]]["claim_expires_at"] == revision["deadline"]
    assert listed[held["task"]["id"]]["expires_in_seconds"] > 47 * 3600

    # Submitted again, it waits for review, not for the worker.
    assert submit(client, token, held["task"]["id"], text="Lighter shoe, same grip #ad").status_code == 202
    listed = client.get("/v1/me/claims", headers=auth(token)).get_json()["data"]
    assert [c["task"]["id"] for c in listed] == [waiting["task"]["id"]]


def _flask(tmp_path, *args: str, stdin: str | None = None, **env: str):
    """`flask --app wsgi …` as a newcomer runs it: its own instance folder (SQLite), no services."""
    import subprocess
    import sys
    from pathlib import Path

    from marketplace import REPO_ROOT

    flask = str(Path(sys.executable).parent / "flask")
    base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
            "MARKETPLACE_INSTANCE_PATH": str(tmp_path / "instance"), "LOG_LEVEL": "WARNING"}
    return subprocess.run([flask, "--app", "wsgi", *args], cwd=REPO_ROOT, env={**base, **env}, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _exports(output: str) -> dict[str, str]:
    import shlex

    (line,) = [line for line in output.splitlines() if line.startswith("export ")]
    return dict(word.split("=", 1) for word in shlex.split(line)[1:])


def test_the_demo_says_what_to_do_before_the_schema_and_when_run_twice_and_resets(tmp_path):
    import subprocess

    early = _flask(tmp_path, "demo")
    assert early.returncode != 0 and "Traceback" not in early.stderr
    assert "no schema yet" in early.stderr and "db upgrade" in early.stderr
    assert _flask(tmp_path, "db", "upgrade").returncode == 0

    # Everything it prints is shell: comments for people, then one export line.
    first = _flask(tmp_path, "demo")
    assert first.returncode == 0, first.stderr[-2000:]
    assert all(line.startswith(("#", "export ")) for line in first.stdout.splitlines())
    logins = _exports(first.stdout)
    assert {"BRAND_KEY", "ADMIN_KEY", "WORKER_TOKEN", "BRIEF_ID"} <= set(logins)
    assert "payouts run" in first.stdout
    shell = subprocess.run(["bash", "-c", 'eval "$(cat)"; echo "$BRAND_KEY $WORKER_TOKEN"'], input=first.stdout,
                           capture_output=True, text=True, timeout=30)
    assert shell.stdout.split() == [logins["BRAND_KEY"], logins["WORKER_TOKEN"]]

    again = _flask(tmp_path, "demo")
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert "already has data" in again.stderr and "--reset" in again.stderr
    declined = _flask(tmp_path, "demo", "--reset", stdin="n\n")
    assert declined.returncode != 0 and "Traceback" not in declined.stderr
    reset = _flask(tmp_path, "demo", "--reset", stdin="y\n")
    assert reset.returncode == 0, reset.stderr[-2000:]
    assert _exports(reset.stdout)["BRAND_KEY"] != logins["BRAND_KEY"]


def test_the_demo_worker_has_work_in_every_state(runner, client):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    logins = _exports(result.output)
    worker = auth(logins["WORKER_TOKEN"])
    mine = client.get("/v1/me/submissions", headers=worker).get_json()["data"]
    assert sorted(s["status"] for s in mine) == sorted(
        ["validating", "needs_review", "approved", "rejected", "revision_requested", "auto_rejected"])
    held = client.get("/v1/me/claims", headers=worker).get_json()["data"]
    assert sorted(bool(c["revision"]) for c in held) == [False, True]  # one claimed, one sent back
    briefs = client.get("/v1/briefs", headers=auth(logins["BRAND_KEY"])).get_json()["data"]
    assert [b["id"] for b in briefs] == [logins["BRIEF_ID"]]
    queue = client.get("/v1/review/submissions?status=needs_review", headers=auth(logins["ADMIN_KEY"]))
    assert queue.status_code == 200 and len(queue.get_json()["data"]) == 1


def _cli_without_stripe(app, monkeypatch, tmp_path):
    """The CLI in a shell of its own: no STRIPE_API_KEY, an instance folder `make run` may write to."""
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", None)
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", None)
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    return tmp_path


def _money_and_batches(db_session) -> tuple:
    import sqlalchemy as sa

    db_session.expire_all()
    return (db_session.execute(sa.text("SELECT count(*) FROM payout_batches")).scalar_one(),
            db_session.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one())


@pytest.mark.parametrize("standin_file", [None, "dead"])
def test_payouts_run_with_no_stripe_refuses_before_reserving_anything(
        app, client, runner, standin, db_session, monkeypatch, tmp_path, standin_file):
    import json
    import socket

    from tests.factories.payouts import approved_work, earnings, ready_worker

    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 500)
    cli_without_stripe = _cli_without_stripe(app, monkeypatch, tmp_path)
    if standin_file == "dead":  # `make run` stopped without cleaning up: nothing listens there
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        (cli_without_stripe / "stripe-standin.json").write_text(json.dumps(
            {"STRIPE_API_KEY": "sk_test_standin", "STRIPE_API_BASE": f"http://127.0.0.1:{dead}"}))
    before = _money_and_batches(db_session)
    result = runner.invoke(args=["payouts", "run"])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    assert "Nothing was reserved" in result.output
    assert ("STRIPE_API_KEY is unset" if standin_file is None else "does not answer") in result.output
    assert _money_and_batches(db_session) == before
    mine = earnings(client, token)
    assert (mine["available_cents"], mine["in_transit_cents"]) == (500, 0)


def test_payouts_run_beside_make_run_pays_through_the_servers_stand_in(
        app, client, runner, standin, monkeypatch, tmp_path):
    from marketplace.cli import write_standin_file
    from tests.factories.payouts import approved_work, earnings, ready_worker

    worker, token, _ = ready_worker(client, standin)
    approved_work(app, client, standin, [(worker["id"], token)], 500)
    _cli_without_stripe(app, monkeypatch, tmp_path)
    # What `flask serve` writes once its stand-in is up (here: the test run's stand-in).
    with app.app_context():
        serving = app.config.copy()
        app.config.update(STRIPE_API_KEY="sk_test_standin", STRIPE_API_BASE=standin.url)
        write_standin_file(app)
        app.config.update(STRIPE_API_KEY=serving["STRIPE_API_KEY"], STRIPE_API_BASE=serving["STRIPE_API_BASE"])
    result = runner.invoke(args=["payouts", "run"])
    assert result.exit_code == 0, result.output
    assert "completed" in result.output
    assert earnings(client, token)["available_cents"] == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("option", ["--port", "--stripe-port"])
def test_serve_on_a_busy_port_says_so_and_which_option_to_pass(tmp_path, option):
    import socket

    ports = {"--port": _free_port(), "--stripe-port": _free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[option]))
        taken.listen()
        result = _flask(tmp_path, "serve", "--port", str(ports["--port"]), "--stripe-port", str(ports["--stripe-port"]))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"port {ports[option]} is in use; pass {option}" in result.stderr


def test_payouts_run_in_another_shell_finds_the_stand_in_make_run_started(tmp_path):
    import json
    import subprocess
    import sys
    import time
    import urllib.request

    from marketplace import REPO_ROOT

    port, stripe_port = _free_port(), _free_port()
    assert _flask(tmp_path, "db", "upgrade").returncode == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve", "--port", str(port), "--stripe-port", str(stripe_port)],
        cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LOG_LEVEL": "WARNING",
                            "MARKETPLACE_INSTANCE_PATH": str(tmp_path / "instance")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    written = tmp_path / "instance" / "stripe-standin.json"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        assert json.loads(written.read_text())["STRIPE_API_BASE"] == f"http://127.0.0.1:{stripe_port}"
        paid = _flask(tmp_path, "payouts", "run")
        assert paid.returncode == 0, paid.stderr[-2000:]
        assert "Batch" in paid.stdout and "completed" in paid.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert not written.exists()  # a stopped server leaves no settings behind
    refused = _flask(tmp_path, "payouts", "run")
    assert refused.returncode != 0 and "Nothing was reserved" in refused.stderr


def test_a_screenshot_thumbnail_is_a_small_fresh_png_and_an_undecodable_upload_says_no_preview(
        app, client, standin, runner):
    from PIL import Image

    from tests.factories import make_admin
    from tests.factories.proofs import (
        NOT_AN_IMAGE,
        png,
        polyglot,
        proof_brief,
        submitted,
        truncated_png,
    )

    _, brief = proof_brief(client, standin)
    admin = auth(make_admin(runner))
    token, good = submitted(client, brief, screenshot=png(seed=7, size=(1280, 960)))
    thumb = client.get(f"/v1/submissions/{good}/screenshot?size=thumbnail", headers=auth(token))
    assert thumb.status_code == 200 and thumb.mimetype == "image/png"
    assert max(Image.open(io.BytesIO(thumb.data)).size) == 320
    full = client.get(f"/v1/submissions/{good}/screenshot", headers=auth(token))
    assert full.data == png(seed=7, size=(1280, 960))  # without ?size, the file as uploaded

    for upload in (NOT_AN_IMAGE, truncated_png(seed=8), polyglot(seed=9)):
        _, bad = submitted(client, brief, screenshot=upload)
        answer = client.get(f"/v1/submissions/{bad}/screenshot?size=thumbnail", headers=admin)
        assert answer.status_code == 422, answer.data[:200]
        assert answer.content_type == "application/problem+json"
        assert answer.get_json()["type"].endswith("/no-preview") and "No preview" in answer.get_json()["detail"]
    assert client.get(f"/v1/submissions/{good}/screenshot?size=huge", headers=admin).status_code == 422


def test_a_declined_card_shows_on_the_brief_once_in_order_until_a_payment_succeeds(client, standin):
    import time
    import uuid

    from tests.factories import create_brief
    from tests.test_funding import post_webhook, signed

    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    assert brief["funding"] == {"status": "unpaid", "failure_code": None, "failure_reason": None, "failed_at": None}
    intent = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key)).get_json()
    shown = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["funding"]
    assert shown["status"] == "requires_payment"

    standin.fail_payment_intent(intent["payment_intent_id"])
    assert standin.wait_for_webhooks(10)
    one = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert one["status"] == "draft"
    assert one["funding"]["status"] == "failed" and one["funding"]["failure_code"] == "generic_decline"
    assert one["funding"]["failure_reason"] == "Your card was declined." and one["funding"]["failed_at"].endswith("Z")
    listed = client.get("/v1/briefs", headers=auth(key)).get_json()["data"]
    assert listed[0]["funding"] == one["funding"]  # the list says the same as the one-statement read

    def failure(created: int, code: str) -> dict:
        return {"id": "evt_" + uuid.uuid4().hex, "type": "payment_intent.payment_failed", "created": created,
                "data": {"object": {"id": intent["payment_intent_id"], "object": "payment_intent", "currency": "usd",
                                    "last_payment_error": {"code": "card_declined", "decline_code": code,
                                                           "message": f"Declined: {code}."},
                                    "metadata": {"payment_id": intent["payment_id"]}}}}

    now = int(time.time())
    newer = failure(now + 60, "insufficient_funds")
    assert post_webhook(client, *signed(newer)).status_code == 200
    assert post_webhook(client, *signed(failure(now - 3600, "expired_card"))).status_code == 200  # late, older
    assert post_webhook(client, *signed(newer)).status_code == 200  # delivered twice
    shown = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()["funding"]
    assert (shown["status"], shown["failure_code"], shown["failure_reason"]) == (
        "failed", "insufficient_funds", "Declined: insufficient_funds.")

    standin.succeed_payment_intent(intent["payment_intent_id"])
    assert standin.wait_for_webhooks(10)
    assert post_webhook(client, *signed(failure(now + 120, "late_after_success"))).status_code == 200
    funded = client.get(f"/v1/briefs/{brief['id']}", headers=auth(key)).get_json()
    assert funded["status"] == "funded"
    assert funded["funding"] == {"status": "succeeded", "failure_code": None, "failure_reason": None, "failed_at": None}


def test_the_spec_describes_the_briefs_funding(client):
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    funding = schemas["FundingOut"]["properties"]
    assert {"status", "failure_code", "failure_reason", "failed_at"} <= set(funding)
    assert "funding" in schemas["BriefOut"]["properties"]
