"""The audit log: every admin and brand action that moves money or changes standing, written in the
transaction of the change, listed to admins only, and append-only in the database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.factories import reviews as fr


def who(client, secret: str) -> str:
    me = client.get("/v1/me", headers=f.auth(secret)).get_json()
    return f"{me['role']}:{me[me['role']]['id']}"


def events(client, admin: str, **params):
    return client.get("/v1/audit-events", query_string=params, headers=f.auth(admin))


@pytest.fixture
def setup(client, runner, standin, db_session):
    admin = f.make_admin(runner)
    key, brief = fr.review_brief(client, standin)
    people = fr.workers(client, 2)
    return {"admin": admin, "key": key, "brief": brief, "tokens": [t for _, t in people]}


def test_a_bulk_decision_writes_one_audit_row_per_submission_in_one_statement(
        client, db_session, setup, sql_statements):
    ids = fr.submissions(client, db_session, setup["brief"], 3, setup["tokens"])
    with sql_statements as sent:
        response = client.post("/v1/review/decisions", headers=f.auth(setup["key"]), json={
            "submission_ids": ids, "decision": "reject", "reason_code": "off_brief", "reason": "Not the product."})
    assert response.status_code == 200 and response.get_json()["rejected"] == 3
    # One statement writes the audit rows: the one that moves the submissions (from its RETURNING).
    [writing] = [s.upper() for s in sent if "INSERT INTO AUDIT_EVENTS" in s.upper()]
    assert "UPDATE SUBMISSIONS" in writing and "INSERT INTO NOTIFICATIONS" in writing
    body = events(client, setup["admin"], action="submission.rejected").get_json()
    assert sorted(e["subject"] for e in body["data"]) == sorted(ids)
    brand = who(client, setup["key"])
    for event in body["data"]:
        assert event["actor"] == brand and event["reason"] == "Not the product."
        assert event["detail"]["reason_code"] == "off_brief" and event["detail"]["brief_id"] == setup["brief"]["id"]
    # Filters: by actor, by subject, and every submission action at once.
    assert len(events(client, setup["admin"], actor=brand).get_json()["data"]) == 3
    assert [e["subject"] for e in events(client, setup["admin"], subject=ids[0]).get_json()["data"]] == [ids[0]]
    assert len(events(client, setup["admin"], action="submission.*").get_json()["data"]) == 3
    assert events(client, setup["admin"], action="submission.approved").get_json()["data"] == []


def test_the_audit_log_pages_with_a_cursor_newest_first(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 5, setup["tokens"])
    client.post("/v1/review/decisions", headers=f.auth(setup["admin"]), json={
        "submission_ids": ids, "decision": "approve"})
    first = events(client, setup["admin"], limit=2).get_json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    seen = [e["id"] for e in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = events(client, setup["admin"], limit=2, cursor=cursor).get_json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert events(client, setup["admin"], cursor="nonsense").status_code == 422


def test_only_admins_read_the_audit_log(client, setup):
    assert client.get("/v1/audit-events", headers=f.auth(setup["key"])).status_code == 403
    assert client.get("/v1/audit-events", headers=f.auth(setup["tokens"][0])).status_code == 403
    assert client.get("/v1/audit-events").status_code == 401


def test_cancelling_a_brief_and_its_refund_are_audited_with_the_brand(client, standin, setup):
    response = client.post(f"/v1/briefs/{setup['brief']['id']}/cancel", headers=f.auth(setup["key"]))
    assert response.status_code == 200
    brand = who(client, setup["key"])
    actions = {e["action"]: e for e in events(client, setup["admin"], actor=brand).get_json()["data"]}
    assert actions["brief.cancelled"]["subject"] == setup["brief"]["id"]
    refund = actions["refund.reserved"]
    assert refund["subject"].startswith("rfd_") and refund["detail"]["amount_cents"] == response.get_json()["money"]["refunded_cents"]


def test_a_payout_batch_is_audited_with_its_admin_and_totals(client, setup):
    response = client.post("/v1/payout-batches", headers=f.auth(setup["admin"]),
                           json={"currency": "usd", "min_amount_cents": 100})
    assert response.status_code == 202
    (event,) = events(client, setup["admin"], action="payout_batch.created").get_json()["data"]
    assert event["subject"] == response.get_json()["id"] and event["actor"] == who(client, setup["admin"])
    assert event["detail"] == {"currency": "usd", "min_amount_cents": 100, "items": 0, "total_cents": 0}


def test_nobody_updates_or_deletes_an_audit_row(app, client, db_session, setup):
    from marketplace.audit import service as audit

    with app.app_context():
        from marketplace.extensions import db

        audit.record("admin:adm_x", "case.settle", "case_x", "settled by phone", {"outcome": None})
        db.session.commit()
    for statement in ("UPDATE audit_events SET reason = 'rewritten'", "DELETE FROM audit_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db_session.execute(sa.text(statement))
        db_session.rollback()
    assert db_session.execute(sa.text("SELECT reason FROM audit_events")).scalar_one() == "settled by phone"


def test_a_decision_that_fails_leaves_no_audit_row(app, client, db_session, setup):
    """Written in the change's transaction: a rejection the database refuses is not in the log either."""
    ids = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"])
    from tests.factories.database import database_refuses

    with database_refuses(app, "claims", "UPDATE"):
        response = client.post("/v1/review/decisions", headers=f.auth(setup["admin"]), json={
            "submission_ids": ids, "decision": "reject", "reason_code": "other", "reason": "x"})
    assert response.status_code == 500
    db_session.rollback()
    assert db_session.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one() == 0
    assert db_session.execute(sa.text("SELECT status FROM submissions")).scalar_one() == "needs_review"
