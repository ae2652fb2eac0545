"""Device sightings, the raw material of fraud signals: a keyed digest of the client's address and
user agent, recorded at sign-up, login and submission, never the values themselves."""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa

from tests.factories import auth, claim, live_brief, make_admin, sign_up_brand, unique_email

PASSWORD = "correct horse battery"
PHONE = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "Mozilla/5.0 (Linux; Android 14) Phone/1"}
LAPTOP = {"REMOTE_ADDR": "198.51.100.20", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Laptop/2"}


def from_device(client, device: dict, method: str, url: str, **kwargs):
    return client.open(url, method=method, environ_base=device, **kwargs)


def sign_up_and_log_in(client, device: dict) -> tuple[str, str]:
    email = unique_email("worker")
    made = from_device(client, device, "POST", "/v1/workers", json={
        "email": email, "password": PASSWORD, "display_name": "Sam", "country": "GB"})
    assert made.status_code == 201, made.get_json()
    token = from_device(client, device, "POST", "/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert token.status_code == 200, token.get_json()
    return made.get_json()["id"], token.get_json()["token"]


def sightings(app) -> list[dict]:
    from marketplace.extensions import db
    from marketplace.workforce.models import DeviceSighting

    with app.app_context():
        try:
            return [dict(row._mapping) for row in db.session.execute(
                sa.select(DeviceSighting.__table__).order_by(DeviceSighting.worker_id, DeviceSighting.device))]
        finally:
            db.session.remove()


def expected_digest(app, device: dict) -> str:
    """Computed here from the definition, not by the code under test."""
    text = f"{device['REMOTE_ADDR']}\x00{device['HTTP_USER_AGENT']}"
    return hmac.new(app.config["SECRET_KEY"].encode(), text.encode(), hashlib.sha256).hexdigest()


def test_sign_up_login_and_submission_each_count_one_sighting_of_a_keyed_device(app, client, standin):
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[
        {"kind": "caption", "quantity": 5, "unit_price_cents": 60, "instructions": "Write a caption",
         "proof": {"text": {"min_length": 20, "max_length": 300}}}])
    worker_id, token = sign_up_and_log_in(client, PHONE)
    rows = sightings(app)
    assert [(r["worker_id"], r["device"], r["seen_count"], r["last_event"]) for r in rows] == [
        (worker_id, expected_digest(app, PHONE), 2, "login")]

    held = claim(client, token, brief["task_groups"][0]["id"])
    proof = from_device(client, PHONE, "POST", f"/v1/tasks/{held['task']['id']}/submissions",
                        json={"text": "a caption long enough for the rules"}, headers=auth(token))
    assert proof.status_code == 202, proof.get_json()
    # The same device again: the row counts up (an upsert), no second row.
    (row,) = sightings(app)
    assert (row["seen_count"], row["last_event"]) == (3, "submission")
    assert row["first_seen_at"] <= row["last_seen_at"]

    # Neither the address nor the agent is stored anywhere in the row.
    stored = " ".join(str(v) for v in row.values())
    assert PHONE["REMOTE_ADDR"] not in stored and "Android" not in stored


def test_two_accounts_on_one_device_share_a_digest_and_another_device_does_not(app, client):
    first, _ = sign_up_and_log_in(client, PHONE)
    second, _ = sign_up_and_log_in(client, PHONE)
    third, _ = sign_up_and_log_in(client, LAPTOP)
    by_worker = {r["worker_id"]: r["device"] for r in sightings(app)}
    assert by_worker[first] == by_worker[second] == expected_digest(app, PHONE)
    assert by_worker[third] == expected_digest(app, LAPTOP) != by_worker[first]


def test_a_forwarded_for_header_from_the_client_does_not_change_its_device(app, client):
    """With no trusted proxy (TRUSTED_PROXY_COUNT unset, as in tests) the address is the peer's:
    a client naming another address in X-Forwarded-For is still seen as itself."""
    assert not app.config.get("TRUSTED_PROXY_COUNT")
    worker_id, _ = sign_up_and_log_in(client, {**PHONE, "HTTP_X_FORWARDED_FOR": "192.0.2.99"})
    assert [r["device"] for r in sightings(app) if r["worker_id"] == worker_id] == [expected_digest(app, PHONE)]


def test_a_failed_login_records_no_sighting(app, client):
    worker_id, _ = sign_up_and_log_in(client, PHONE)
    wrong = from_device(client, LAPTOP, "POST", "/v1/auth/token",
                        json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == 401
    assert [(r["worker_id"], r["seen_count"]) for r in sightings(app)] == [(worker_id, 2)]


def admin_get(client, admin: str, url: str):
    response = client.get(url, headers=auth(admin))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def flag_duplicate(app, submission_ids: list[str]) -> None:
    """The duplicate check's failing verdict on these submissions, as the validation job writes it."""
    from marketplace.extensions import db
    from marketplace.proofs.models import SubmissionCheck

    with app.app_context():
        for sid in submission_ids:
            db.session.add(SubmissionCheck(submission_id=sid, name="duplicate", outcome="fail",
                                           detail="Matches an earlier screenshot", data={}))
        db.session.commit()
        db.session.remove()


def test_admins_list_workers_by_text_and_status_page_by_page(app, client, runner):
    admin = make_admin(runner)
    ids = [sign_up_and_log_in(client, PHONE)[0] for _ in range(3)]
    target = client.post(f"/v1/workers/{ids[1]}/suspend", json={"reason": "Shared device"}, headers=auth(admin))
    assert target.status_code == 200
    email = target.get_json()["email"]

    suspended = admin_get(client, admin, "/v1/workers?status=suspended")["data"]
    assert [w["id"] for w in suspended] == [ids[1]] and suspended[0]["status"] == "suspended"
    active = [w["id"] for w in admin_get(client, admin, "/v1/workers?status=active&limit=500")["data"]]
    assert ids[0] in active and ids[2] in active and ids[1] not in active
    assert [w["id"] for w in admin_get(client, admin, f"/v1/workers?q={email[3:15].upper()}")["data"]] == [ids[1]]
    assert admin_get(client, admin, "/v1/workers?q=%25")["data"] == []  # a LIKE wildcard is text

    seen, cursor = [], None
    while True:
        body = admin_get(client, admin, "/v1/workers?limit=1" + (f"&cursor={cursor}" if cursor else ""))
        seen += [w["id"] for w in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen[:3] == ids[::-1] and len(seen) == len(set(seen))

    for bad in ("status=banned", "limit=0", "cursor=zzz", "q="):
        response = client.get(f"/v1/workers?{bad}", headers=auth(admin))
        assert response.status_code == 422, bad
    _, token = sign_up_and_log_in(client, LAPTOP)
    assert client.get("/v1/workers", headers=auth(token)).status_code == 403
    assert client.get(f"/v1/workers/{ids[0]}", headers=auth(token)).status_code == 403
    assert client.get("/v1/workers/wrk_nope", headers=auth(admin)).status_code == 404


def test_worker_detail_shows_balances_held_suspension_history_and_fraud_signals(app, client, runner, standin):
    from tests.factories.payouts import approved_work

    admin = make_admin(runner)
    worker_id, token = sign_up_and_log_in(client, PHONE)
    twin, _ = sign_up_and_log_in(client, PHONE)
    stranger, stranger_token = sign_up_and_log_in(client, LAPTOP)
    approved_work(app, client, standin, [(worker_id, token)], 300)
    flagged = approved_work(app, client, standin, [(worker_id, token)], 100, status="needs_review")
    approved_work(app, client, standin, [(stranger, stranger_token)], 100, status="needs_review")
    from marketplace.extensions import db
    from marketplace.proofs.models import Submission

    with app.app_context():
        flag_duplicate(app, list(db.session.scalars(sa.select(Submission.id).where(Submission.brief_id == flagged))))
        db.session.remove()

    assert client.post(f"/v1/workers/{worker_id}/suspend", json={"reason": "Twin accounts"},
                       headers=auth(admin)).status_code == 200
    body = admin_get(client, admin, f"/v1/workers/{worker_id}")
    assert body["status"] == "suspended" and body["reputation"]["approved"] == 1
    assert body["balances"] == [{"currency": "usd", "available_cents": 0, "held_cents": 300,
                                 "in_transit_cents": 0, "paid_cents": 0}]
    assert [(s["reason"], s["reinstated_at"]) for s in body["suspensions"]] == [("Twin accounts", None)]
    assert body["signals"] == {"shared_device_workers": [twin], "duplicate_proof_caught": 1,
                               "submissions_last_hour": 2, "median_submissions_last_hour": 1.5}

    assert client.post(f"/v1/workers/{worker_id}/reinstate", json={"reason": "Siblings, checked"},
                       headers=auth(admin)).status_code == 200
    body = admin_get(client, admin, f"/v1/workers/{worker_id}")
    assert body["status"] == "active" and body["balances"][0]["available_cents"] == 300
    assert body["balances"][0]["held_cents"] == 0
    (record,) = body["suspensions"]
    assert record["reinstate_reason"] == "Siblings, checked" and record["reinstated_by"].startswith("admin:")
    other = admin_get(client, admin, f"/v1/workers/{stranger}")["signals"]
    assert other["shared_device_workers"] == [] and other["duplicate_proof_caught"] == 0


def test_the_worker_list_counts_each_workers_signals_in_the_same_statements_however_long_the_page(
        app, client, runner, standin, sql_statements):
    from tests.factories.payouts import approved_work

    admin = make_admin(runner)
    worker_id, token = sign_up_and_log_in(client, PHONE)
    twin, _ = sign_up_and_log_in(client, PHONE)
    stranger, _ = sign_up_and_log_in(client, LAPTOP)
    flagged = approved_work(app, client, standin, [(worker_id, token)], 100, status="needs_review")
    from marketplace.extensions import db
    from marketplace.proofs.models import Submission

    with app.app_context():
        flag_duplicate(app, list(db.session.scalars(sa.select(Submission.id).where(Submission.brief_id == flagged))))
        db.session.remove()

    rows = {w["id"]: w for w in admin_get(client, admin, "/v1/workers?limit=500")["data"]}
    # The worker: one twin on their phone and one recycled screenshot; the twin: the worker.
    assert (rows[worker_id]["signal_count"], rows[twin]["signal_count"], rows[stranger]["signal_count"]) == (2, 1, 0)
    with sql_statements as one_row:
        admin_get(client, admin, "/v1/workers?limit=1")
    with sql_statements as every_row:
        admin_get(client, admin, "/v1/workers?limit=500")
    assert len(every_row) == len(one_row)
