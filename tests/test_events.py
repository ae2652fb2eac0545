"""Events: written by each change's owner in the change's transaction, listed to their brand only,
newest first with a cursor, in the shape webhooks deliver them."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.factories import reviews as fr


def events(client, key: str, **params):
    return client.get("/v1/events", query_string=params, headers=f.auth(key))


@pytest.fixture
def setup(client, standin):
    key, brief = fr.review_brief(client, standin)
    people = fr.workers(client, 2)
    return {"key": key, "brief": brief, "tokens": [t for _, t in people]}


def test_a_briefs_moves_are_its_brands_events_and_nobody_elses(client, setup):
    key, brief = setup["key"], setup["brief"]
    assert client.post(f"/v1/briefs/{brief['id']}/pause", headers=f.auth(key)).status_code == 200
    assert client.post(f"/v1/briefs/{brief['id']}/cancel", headers=f.auth(key)).status_code == 200
    body = events(client, key).get_json()
    # Cancelling refunds the unspent escrow through Stripe: refund.succeeded, once Stripe made it.
    [refund] = [e for e in body["data"] if e["type"] == "refund.succeeded"]
    assert refund["data"]["object"]["brief_id"] == brief["id"] and refund["data"]["object"]["amount_cents"] > 0
    assert refund["data"]["object"]["id"].startswith("rfd_")
    body["data"].remove(refund)
    assert [e["type"] for e in body["data"]] == ["brief.cancelled", "brief.paused", "brief.live", "brief.funded"]
    for event in body["data"]:
        assert event["id"].startswith("evt_") and event["created_at"]
        assert event["data"]["object"]["id"] == brief["id"] and event["data"]["object"]["object"] == "brief"
    assert body["data"][0]["data"]["object"]["status"] == "cancelled"
    _, other = f.sign_up_brand(client, "Someone Else")
    assert events(client, other).get_json()["data"] == []


def test_a_bulk_decision_writes_its_events_in_one_statement(client, db_session, setup, sql_statements):
    ids = fr.submissions(client, db_session, setup["brief"], 4, setup["tokens"])
    with sql_statements as sent:
        response = client.post("/v1/review/decisions", headers=f.auth(setup["key"]), json={
            "submission_ids": ids[:3], "decision": "approve"})
    assert response.status_code == 200 and response.get_json()["approved"] == 3
    # One statement writes the events, and it is the one that moves the submissions (their RETURNING).
    [writing] = [s.upper() for s in sent if "INSERT INTO EVENTS" in s.upper()]
    assert "UPDATE SUBMISSIONS" in writing and "UPDATE TASKS" in writing
    client.post("/v1/review/decisions", headers=f.auth(setup["key"]), json={
        "submission_ids": ids[3:], "decision": "reject", "reason_code": "off_brief", "reason": "Not the product."})
    approved = events(client, setup["key"], type="submission.approved").get_json()["data"]
    assert sorted(e["data"]["object"]["id"] for e in approved) == sorted(ids[:3])
    assert {e["data"]["object"]["status"] for e in approved} == {"approved"}
    assert {e["data"]["object"]["brief_id"] for e in approved} == {setup["brief"]["id"]}
    [rejected] = events(client, setup["key"], type="submission.rejected").get_json()["data"]
    assert rejected["data"]["object"]["id"] == ids[3]
    assert rejected["data"]["object"]["reason_code"] == "off_brief"


def test_events_page_with_a_cursor_newest_first(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 5, setup["tokens"])
    client.post("/v1/review/decisions", headers=f.auth(setup["key"]), json={"submission_ids": ids, "decision": "approve"})
    everything = [e["id"] for e in events(client, setup["key"], limit=500).get_json()["data"]]
    assert len(everything) == 7  # funded, live, five approvals
    seen, cursor = [], None
    while True:
        page = events(client, setup["key"], limit=2, **({"cursor": cursor} if cursor else {})).get_json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == everything


def test_an_unknown_type_or_cursor_is_422_and_only_brands_list_events(client, setup):
    response = events(client, setup["key"], type="brief.exploded")
    assert response.status_code == 422 and response.content_type.startswith("application/problem+json")
    assert events(client, setup["key"], cursor="nonsense").status_code == 422
    assert client.get("/v1/events").status_code == 401
    assert events(client, setup["tokens"][0]).status_code == 403


def test_a_change_rolled_back_writes_no_event(client, app, setup):
    from marketplace.briefs import lifecycle
    from marketplace.briefs.models import Brief
    from marketplace.extensions import db

    with app.app_context():
        brief = db.session.get(Brief, setup["brief"]["id"], with_for_update=True)
        lifecycle.transition(brief, "pause")
        db.session.flush()  # the event row is written, in this transaction only
        db.session.rollback()
    assert [e["type"] for e in events(client, setup["key"]).get_json()["data"]] == ["brief.live", "brief.funded"]
    assert client.get(f"/v1/briefs/{setup['brief']['id']}", headers=f.auth(setup["key"])).get_json()["status"] == "live"
