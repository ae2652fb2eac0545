"""Appeals of rejections: a worker appeals once within the window; an admin upholds or overturns,
and an overturn is approved (and paid) through the one approval path, once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.factories import reviews as fr
from tests.ledger_invariants import ledger_problems

COST = 110  # 100 cents and the platform's 10 percent


@pytest.fixture
def setup(client, runner, standin):
    admin = f.make_admin(runner)
    people = fr.workers(client, 3)
    return {"admin": admin, "workers": people}


def brief_with(client, standin, quantity: int = 20):
    return fr.review_brief(client, standin, quantity=quantity)


def reject(client, admin: str, ids, reason_code="off_brief", reason="The caption is about another product."):
    response = client.post("/v1/review/decisions", headers=f.auth(admin), json={
        "submission_ids": list(ids), "decision": "reject", "reason_code": reason_code, "reason": reason})
    assert response.status_code == 200 and response.get_json()["rejected"] == len(ids), response.get_json()


def appeal(client, token: str, submission_id: str, message="The caption names the right shoe."):
    return client.post(f"/v1/submissions/{submission_id}/appeal", json={"message": message}, headers=f.auth(token))


def decide(client, admin: str, appeal_id: str, decision: str, reason="Checked the post again."):
    return client.post(f"/v1/appeals/{appeal_id}/decision", json={"decision": decision, "reason": reason},
                       headers=f.auth(admin))


def rejected_one(client, db_session, setup, standin, quantity=20, worker=0):
    key, brief = brief_with(client, standin, quantity)
    token = setup["workers"][worker][1]
    [sub_id] = fr.submissions(client, db_session, brief, 1, [token])
    reject(client, setup["admin"], [sub_id])
    return key, brief, token, sub_id


def money(db_session, brief_id: str, worker_ids) -> dict:
    out = dict(db_session.execute(sa.text("""
        SELECT a.code, COALESCE(SUM(l.amount_cents), 0) * CASE a.normal WHEN 'credit' THEN -1 ELSE 1 END
        FROM ledger_accounts a LEFT JOIN ledger_lines l ON l.account_id = a.id GROUP BY a.code, a.normal
    """)).all())
    db_session.commit()
    escrow = next((v for k, v in out.items() if brief_id in k), 0)
    return {"escrow": escrow, **{w: sum(v for k, v in out.items() if w in k) for w in worker_ids}}


def approvals(db_session) -> int:
    n = db_session.execute(sa.text("SELECT count(*) FROM ledger_entries WHERE kind = 'approval'")).scalar_one()
    db_session.commit()
    return n


def row(db_session, sql: str, **params):
    found = db_session.execute(sa.text(sql), params).mappings().one()
    db_session.commit()
    return found


# Appealing ------------------------------------------------------------------------------------


def test_a_rejection_shows_its_reason_and_window_and_is_appealed_once(client, db_session, setup, standin):
    _, _, token, sub_id = rejected_one(client, db_session, setup, standin)
    shown = client.get(f"/v1/submissions/{sub_id}", headers=f.auth(token)).get_json()
    assert shown["status"] == "rejected"
    assert (shown["reason_code"], shown["reason"]) == ("off_brief", "The caption is about another product.")
    decided = datetime.fromisoformat(shown["decided_at"])
    assert datetime.fromisoformat(shown["appealable_until"]) == decided + timedelta(days=7)

    response = appeal(client, token, sub_id)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"].startswith("apl_") and body["status"] == "open" and body["submission_id"] == sub_id
    assert body["message"] == "The caption names the right shoe." and body["created_at"]

    again = appeal(client, token, sub_id, "Please look again")
    assert again.status_code == 409 and "appealed already" in again.get_json()["detail"]
    assert row(db_session, "SELECT count(*) AS n FROM appeals")["n"] == 1


def test_an_auto_rejection_carries_the_failing_check_and_can_be_appealed(app, client, db_session, setup, standin):
    from marketplace.extensions import db
    from marketplace.proofs import lifecycle
    from marketplace.proofs.models import Submission

    _, brief = brief_with(client, standin)
    token = setup["workers"][0][1]
    [sub_id] = fr.submissions(client, db_session, brief, 1, [token], status="validating")
    with app.app_context():
        lifecycle.auto_reject([db.session.get(Submission, sub_id, with_for_update=True)],
                              {sub_id: [{"check": "text", "detail": "The disclosure tag #ad is missing."}]})
        db.session.commit()
        db.session.remove()
    shown = client.get(f"/v1/submissions/{sub_id}", headers=f.auth(token)).get_json()
    assert shown["status"] == "auto_rejected"
    assert shown["reasons"] == [{"check": "text", "detail": "The disclosure tag #ad is missing."}]
    assert datetime.fromisoformat(shown["appealable_until"]) > datetime.fromisoformat(shown["validated_at"]) \
        + timedelta(days=6, hours=23)
    assert appeal(client, token, sub_id).status_code == 201


def test_appeals_that_may_not_be_made_are_refused_and_change_nothing(app, client, db_session, setup, standin,
                                                                     monkeypatch):
    key, brief, token, sub_id = rejected_one(client, db_session, setup, standin)
    other_token = setup["workers"][1][1]
    [waiting] = fr.submissions(client, db_session, brief, 1, [token])

    assert appeal(client, other_token, sub_id).status_code == 404  # not theirs: not found
    assert appeal(client, token, "sub_doesnotexist").status_code == 404
    assert appeal(client, key, sub_id).status_code == 403  # a brand does not appeal
    not_rejected = appeal(client, token, waiting)
    assert not_rejected.status_code == 409 and "needs_review" in not_rejected.get_json()["detail"]
    for message in ("", "   ", "x" * 2001):
        response = appeal(client, token, sub_id, message)
        assert response.status_code == 422, message
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert "message" in response.get_json()["errors"]
    missing = client.post(f"/v1/submissions/{sub_id}/appeal", json={}, headers=f.auth(token))
    assert missing.status_code == 422

    # A rejection made with a window of zero days can no longer be appealed.
    monkeypatch.setitem(app.config, "APPEAL_WINDOW_DAYS", 0)
    reject(client, setup["admin"], [waiting])
    late = appeal(client, token, waiting)
    assert late.status_code == 409 and "window" in late.get_json()["detail"]
    assert row(db_session, "SELECT count(*) AS n FROM appeals")["n"] == 0


# The queue and decisions ----------------------------------------------------------------------


def test_admins_list_appeals_oldest_first_with_their_age_a_page_at_a_time(client, db_session, setup, standin):
    _, brief = brief_with(client, standin)
    tokens = [t for _, t in setup["workers"]]
    ids = fr.submissions(client, db_session, brief, 3, tokens)
    reject(client, setup["admin"], ids)
    made = []
    for sub_id, token in zip(ids, tokens, strict=True):
        response = appeal(client, token, sub_id)
        assert response.status_code == 201
        made.append(response.get_json()["id"])

    first = client.get("/v1/appeals", query_string={"status": "open", "limit": 2}, headers=f.auth(setup["admin"]))
    assert first.status_code == 200
    page = first.get_json()
    assert [a["id"] for a in page["data"]] == made[:2] and page["next_cursor"]
    assert all(isinstance(a["age_seconds"], int) and a["age_seconds"] >= 0 for a in page["data"])
    rest = client.get("/v1/appeals", query_string={"status": "open", "cursor": page["next_cursor"]},
                      headers=f.auth(setup["admin"])).get_json()
    assert [a["id"] for a in rest["data"]] == made[2:] and rest["next_cursor"] is None

    assert client.get("/v1/appeals", headers=f.auth(tokens[0])).status_code == 403
    assert client.get("/v1/appeals", query_string={"status": "closed"},
                      headers=f.auth(setup["admin"])).status_code == 422
    assert client.get("/v1/appeals", query_string={"status": "upheld"},
                      headers=f.auth(setup["admin"])).get_json()["data"] == []


EVIDENCE = ("id", "status", "reason_code", "reason", "reasons", "checks", "decided_at", "appealable_until",
            "text", "link", "screenshot_url")


def test_the_queue_carries_each_appeals_evidence_brief_and_worker_in_the_same_statements_for_2_or_20(
        client, db_session, setup, standin, sql_statements):
    admin = setup["admin"]
    people = setup["workers"] + fr.workers(client, 2)
    names = {}
    for n, (worker, token) in enumerate(people):
        names[worker["id"]] = f"Worker {n}"
        assert client.patch("/v1/me/profile", json={"display_name": names[worker["id"]]},
                            headers=f.auth(token)).status_code == 200
    token_of = {worker["id"]: token for worker, token in people}
    briefs, made = [], []
    for _ in range(4):  # 4 briefs of 5 submissions each, by 5 workers: 20 appeals, each kind varies
        _, brief = brief_with(client, standin)
        briefs.append(brief)
        ids = fr.submissions(client, db_session, brief, 5, [t for _, t in people])
        reject(client, admin, ids)
        for sub_id in ids:
            worker_id = row(db_session, "SELECT worker_id FROM submissions WHERE id = :id", id=sub_id)["worker_id"]
            response = appeal(client, token_of[worker_id], sub_id)
            assert response.status_code == 201, response.get_json()
            made.append(response.get_json())
    titles = {b["id"]: b["title"] for b in briefs}

    def queue(limit: int) -> tuple[list[dict], int]:
        with sql_statements as sent:
            response = client.get("/v1/appeals", query_string={"status": "open", "limit": limit},
                                  headers=f.auth(admin))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"], len(sent)

    two, two_statements = queue(2)
    twenty, twenty_statements = queue(20)
    assert [a["id"] for a in two] == [a["id"] for a in made[:2]]
    assert [a["id"] for a in twenty] == [a["id"] for a in made]
    # The page, the submissions with their briefs' titles and workers' names, their checks; one per
    # row would be 5 against 41.
    assert two_statements == twenty_statements == 3, (two_statements, twenty_statements)

    for item, before in zip(twenty, made, strict=True):
        # The existing fields are as they were; the new ones are what the submission's own view says.
        assert {k: item[k] for k in before if k != "age_seconds"} == {k: v for k, v in before.items()
                                                                     if k != "age_seconds"}
        shown = client.get(f"/v1/submissions/{item['submission_id']}", headers=f.auth(admin)).get_json()
        assert item["submission"] == {k: shown[k] for k in EVIDENCE}
        assert item["submission"]["reason_code"] == "off_brief" and item["submission"]["status"] == "rejected"
        assert item["submission"]["reason"] == "The caption is about another product."
        assert item["brief"] == {"id": item["brief_id"], "title": titles[item["brief_id"]]}
        assert item["worker"] == {"id": item["worker_id"], "display_name": names[item["worker_id"]]}
    assert len({a["worker"]["id"] for a in twenty}) == 5 and len({a["brief"]["id"] for a in twenty}) == 4


def test_the_queue_shows_admins_the_submissions_the_evidence_names_and_workers_never_see_them(
        app, client, db_session, setup, standin):
    """An automatic rejection whose checks name the submission it copied: the queue shows admins
    what the admin's view of the submission shows (the id, in checks and reasons; the evidence
    sentence names none), the worker's own view hides it, and so does the same presenter for them."""
    from marketplace.appeals import service
    from marketplace.appeals.models import Appeal
    from marketplace.auth.service import Principal
    from marketplace.extensions import db
    from marketplace.proofs import lifecycle
    from marketplace.proofs.models import Submission

    admin = setup["admin"]
    (copier, token), (_, other_token) = setup["workers"][:2]
    _, brief = brief_with(client, standin)
    [original] = fr.submissions(client, db_session, brief, 1, [other_token])
    [copy] = fr.submissions(client, db_session, brief, 1, [token], status="validating")
    named = f"The same text as {original}."
    db_session.execute(sa.text("UPDATE submission_checks SET outcome = 'fail', detail = :detail "
                               "WHERE submission_id = :id AND name = 'text'"), {"detail": named, "id": copy})
    db_session.commit()
    with app.app_context():
        lifecycle.auto_reject([db.session.get(Submission, copy, with_for_update=True)],
                              {copy: [{"check": "duplicate", "detail": named}]})
        db.session.commit()
        db.session.remove()
    made = appeal(client, token, copy)
    assert made.status_code == 201, made.get_json()

    [item] = client.get("/v1/appeals", headers=f.auth(admin)).get_json()["data"]
    admin_view = client.get(f"/v1/submissions/{copy}", headers=f.auth(admin)).get_json()
    assert item["submission"] == {k: admin_view[k] for k in EVIDENCE}
    evidence = item["submission"]
    assert evidence["status"] == "auto_rejected" and evidence["reason_code"] == "duplicate"
    assert [r["detail"] for r in evidence["reasons"]] == [named]
    assert named in [c["detail"] for c in evidence["checks"]]
    assert original not in evidence["reason"] and "another submission" in evidence["reason"]
    assert item["worker"] == {"id": copier["id"], "display_name": "Sam"} and item["brief"]["title"] == brief["title"]

    worker_view = client.get(f"/v1/submissions/{copy}", headers=f.auth(token)).get_json()
    told = [r["detail"] for r in worker_view["reasons"]] + [c["detail"] for c in worker_view["checks"]]
    assert not any(original in d for d in told) and "The same text as another submission." in told
    for mine in (client.get(f"/v1/submissions/{copy}/appeal", headers=f.auth(token)).get_json(),
                 client.get("/v1/me/appeals", headers=f.auth(token)).get_json()["data"][0]):
        assert mine["id"] == made.get_json()["id"] and "submission" not in mine  # nothing embedded for workers
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Appeal)))
        [for_worker] = service.present_for_review(rows, Principal("worker", copier["id"]))
        db.session.remove()
    shown_to_worker = [r["detail"] for r in for_worker["submission"]["reasons"]]
    assert shown_to_worker == [r["detail"] for r in worker_view["reasons"]] == ["The same text as another submission."]

    # The decision answers the same shape, the submission as the decision left it.
    upheld = decide(client, admin, item["id"], "uphold")
    assert upheld.status_code == 200, upheld.get_json()
    body = upheld.get_json()
    assert body["status"] == "upheld" and body["submission"]["status"] == "auto_rejected"
    assert body["submission"]["reasons"] == evidence["reasons"] and body["worker"] == item["worker"]


def test_upholding_keeps_the_rejection_tells_the_worker_and_is_audited_once(client, db_session, setup, standin):
    key, brief, token, sub_id = rejected_one(client, db_session, setup, standin)
    appeal_id = appeal(client, token, sub_id).get_json()["id"]
    admin = setup["admin"]

    assert decide(client, admin, appeal_id, "dismiss").status_code == 422
    assert decide(client, admin, appeal_id, "uphold", reason="").status_code == 422
    assert decide(client, token, appeal_id, "uphold").status_code == 403
    assert decide(client, admin, "apl_doesnotexist", "uphold").status_code == 404

    response = decide(client, admin, appeal_id, "uphold", reason="The caption names another product.")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "upheld" and body["decision_reason"] == "The caption names another product."
    assert body["decided_at"] and body["decided_by"].startswith("admin:")
    assert client.get(f"/v1/submissions/{sub_id}", headers=f.auth(token)).get_json()["status"] == "rejected"

    again = decide(client, admin, appeal_id, "overturn")
    assert again.status_code == 409 and "decided already" in again.get_json()["detail"]
    kinds = [n["kind"] for n in client.get("/v1/me/notifications", headers=f.auth(token)).get_json()["data"]]
    assert kinds.count("appeal_decided") == 1
    events = client.get("/v1/audit-events", query_string={"subject": appeal_id},
                        headers=f.auth(admin)).get_json()["data"]
    assert [e["action"] for e in events] == ["appeal.upheld"]
    assert approvals(db_session) == 0
    assert client.get("/v1/me", headers=f.auth(token)).get_json()["worker"]["reputation"]["appeals_won"] == 0
    # The brand hears of the decision once, from the outbox, with its outcome.
    decided = client.get("/v1/events", query_string={"type": "appeal.decided"}, headers=f.auth(key)).get_json()["data"]
    assert [(e["data"]["object"]["id"], e["data"]["object"]["outcome"]) for e in decided] == [(appeal_id, "upheld")]


def test_an_overturn_takes_its_reopened_task_back_and_pays_it_once(client, db_session, setup, standin):
    _, brief, token, sub_id = rejected_one(client, db_session, setup, standin)
    worker_id = setup["workers"][0][0]["id"]
    task_id = row(db_session, "SELECT task_id FROM submissions WHERE id = :id", id=sub_id)["task_id"]
    assert row(db_session, "SELECT status FROM tasks WHERE id = :id", id=task_id)["status"] == "open"
    before = money(db_session, brief["id"], [worker_id])
    appeal_id = appeal(client, token, sub_id).get_json()["id"]

    response = decide(client, setup["admin"], appeal_id, "overturn", reason="The caption is on brief.")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "overturned"
    assert client.get(f"/v1/submissions/{sub_id}", headers=f.auth(token)).get_json()["status"] == "approved"
    task = row(db_session, "SELECT status, worker_id FROM tasks WHERE id = :id", id=task_id)
    assert (task["status"], task["worker_id"]) == ("approved", worker_id)
    after = money(db_session, brief["id"], [worker_id])
    assert after["escrow"] == before["escrow"] - COST and after[worker_id] == before[worker_id] + 100
    assert approvals(db_session) == 1

    assert decide(client, setup["admin"], appeal_id, "overturn").status_code == 409
    assert money(db_session, brief["id"], [worker_id]) == after and approvals(db_session) == 1
    kinds = [n["kind"] for n in client.get("/v1/me/notifications", headers=f.auth(token)).get_json()["data"]]
    assert kinds.count("appeal_decided") == 1
    events = client.get("/v1/audit-events", query_string={"subject": appeal_id},
                        headers=f.auth(setup["admin"])).get_json()["data"]
    assert [e["action"] for e in events] == ["appeal.overturned"]
    assert client.get("/v1/me", headers=f.auth(token)).get_json()["worker"]["reputation"]["appeals_won"] == 1


def test_an_overturn_whose_task_was_taken_is_paid_from_unspent_escrow(app, client, db_session, setup, standin):
    from marketplace.briefs.service import pause_group
    from marketplace.extensions import db

    key, brief, token, sub_id = rejected_one(client, db_session, setup, standin, quantity=3)
    worker_id = setup["workers"][0][0]["id"]
    task_id = row(db_session, "SELECT task_id FROM submissions WHERE id = :id", id=sub_id)["task_id"]
    taken = f.claim(client, setup["workers"][1][1], brief["task_groups"][0]["id"])
    assert taken["task"]["id"] == task_id  # the reopened task went to someone else
    with app.app_context():  # the stop rule pauses the group: its last open task is no longer promised
        pause_group(brief["task_groups"][0]["id"], "Stop rule: CPA over 3x the target.")
        db.session.commit()
        db.session.remove()
    unspent = client.get(f"/v1/briefs/{brief['id']}/unspent", headers=f.auth(key)).get_json()["unspent_cents"]
    assert unspent >= COST
    before = money(db_session, brief["id"], [worker_id])
    appeal_id = appeal(client, token, sub_id).get_json()["id"]

    response = decide(client, setup["admin"], appeal_id, "overturn")
    assert response.status_code == 200, response.get_json()
    after = money(db_session, brief["id"], [worker_id])
    assert after["escrow"] == before["escrow"] - COST and after[worker_id] == before[worker_id] + 100
    task = row(db_session, "SELECT status, worker_id FROM tasks WHERE id = :id", id=task_id)
    assert (task["status"], task["worker_id"]) == ("claimed", setup["workers"][1][0]["id"])
    assert client.get(f"/v1/briefs/{brief['id']}/unspent",
                      headers=f.auth(key)).get_json()["unspent_cents"] == unspent - COST

    # Paying the overturned submission later must not touch the task the other worker now holds, even
    # once their own work on it is approved.
    from marketplace.proofs import lifecycle as proofs

    db_session.execute(sa.text("UPDATE tasks SET status = 'approved' WHERE id = :id"), {"id": task_id})
    db_session.commit()
    with app.app_context():
        assert proofs.mark_paid([sub_id]) == 1
        db.session.commit()
        db.session.remove()
    assert row(db_session, "SELECT status FROM submissions WHERE id = :id", id=sub_id)["status"] == "paid"
    assert row(db_session, "SELECT status FROM tasks WHERE id = :id", id=task_id)["status"] == "approved"


def test_an_overturn_the_escrow_cannot_pay_is_409_and_the_appeal_stays_open(client, db_session, setup, standin):
    key, brief, token, sub_id = rejected_one(client, db_session, setup, standin, quantity=1)
    worker_id = setup["workers"][0][0]["id"]
    f.claim(client, setup["workers"][1][1], brief["task_groups"][0]["id"])  # the only task, taken again
    unspent = client.get(f"/v1/briefs/{brief['id']}/unspent", headers=f.auth(key)).get_json()["unspent_cents"]
    assert unspent < COST
    before = money(db_session, brief["id"], [worker_id])
    appeal_id = appeal(client, token, sub_id).get_json()["id"]

    response = decide(client, setup["admin"], appeal_id, "overturn")
    assert response.status_code == 409
    assert "escrow" in response.get_json()["detail"] and "stays open" in response.get_json()["detail"]
    assert money(db_session, brief["id"], [worker_id]) == before and approvals(db_session) == 0
    assert row(db_session, "SELECT status FROM appeals WHERE id = :id", id=appeal_id)["status"] == "open"
    assert client.get(f"/v1/submissions/{sub_id}", headers=f.auth(token)).get_json()["status"] == "rejected"
    assert row(db_session, "SELECT count(*) AS n FROM audit_events WHERE subject = :id", id=appeal_id)["n"] == 0
    assert row(db_session, "SELECT count(*) AS n FROM events WHERE type = 'appeal.decided'")["n"] == 0
    # It can still be upheld.
    assert decide(client, setup["admin"], appeal_id, "uphold").status_code == 200


def test_two_admins_overturning_at_once_pay_once(app, client, db_session, setup, standin):
    from marketplace.extensions import db

    _, brief, token, sub_id = rejected_one(client, db_session, setup, standin)
    worker_id = setup["workers"][0][0]["id"]
    appeal_id = appeal(client, token, sub_id).get_json()["id"]
    before = money(db_session, brief["id"], [worker_id])
    barrier = threading.Barrier(3)
    codes: list[int] = []

    def overturn():
        own = app.test_client()
        barrier.wait()
        codes.append(decide(own, setup["admin"], appeal_id, "overturn").status_code)

    threads = [threading.Thread(target=overturn) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [200, 409, 409]
    after = money(db_session, brief["id"], [worker_id])
    assert after[worker_id] == before[worker_id] + 100 and approvals(db_session) == 1
    assert ledger_problems(db.engine) == []


# What a closed brief keeps for appeals --------------------------------------------------------


def escrow_of(app, brief_id: str) -> int:
    from marketplace.extensions import db
    from marketplace.ledger import service as ledger

    with app.app_context():
        try:
            return ledger.balance(ledger.escrow(brief_id, "usd"))
        finally:
            db.session.remove()


def sweep(app, days: float = 0) -> int:
    """The scheduled refund sweep, run as if `days` from now."""
    from marketplace.briefs import lifecycle
    from marketplace.db.clock import utcnow
    from marketplace.extensions import db

    with app.app_context():
        try:
            return lifecycle.refund_released_escrow(now=utcnow() + timedelta(days=days))
        finally:
            db.session.remove()


def cancel(client, key: str, brief_id: str) -> None:
    response = client.post(f"/v1/briefs/{brief_id}/cancel", headers=f.auth(key))
    assert response.status_code == 200, response.get_json()


def test_a_closed_brief_keeps_its_appealable_rejections_in_escrow_until_the_window_ends(
        app, client, db_session, setup, standin):
    key, brief, token, sub_id = rejected_one(client, db_session, setup, standin)
    cancel(client, key, brief["id"])
    assert escrow_of(app, brief["id"]) == COST  # everything else went back; the rejection's value stays
    sweep(app)
    assert escrow_of(app, brief["id"]) == COST
    sweep(app, days=6.9)
    assert escrow_of(app, brief["id"]) == COST
    assert sweep(app, days=7.1) == 1
    assert escrow_of(app, brief["id"]) == 0

    # Refunded: an appeal made now can still be decided, but an overturn has nothing to be paid from.
    appeal_id = appeal(client, token, sub_id).get_json()["id"]
    refused = decide(client, setup["admin"], appeal_id, "overturn")
    assert refused.status_code == 409 and "escrow" in refused.get_json()["detail"]
    assert approvals(db_session) == 0


def test_an_overturn_on_a_closed_brief_is_paid_from_what_it_kept(app, client, db_session, setup, standin):
    key, brief, token, sub_id = rejected_one(client, db_session, setup, standin)
    [kept_too] = fr.submissions(client, db_session, brief, 1, [setup["workers"][1][1]])
    reject(client, setup["admin"], [kept_too])
    cancel(client, key, brief["id"])
    assert escrow_of(app, brief["id"]) == 2 * COST
    appeal_id = appeal(client, token, sub_id).get_json()["id"]

    response = decide(client, setup["admin"], appeal_id, "overturn")
    assert response.status_code == 200, response.get_json()
    assert escrow_of(app, brief["id"]) == COST  # the other rejection's value is still kept
    assert money(db_session, brief["id"], [setup["workers"][0][0]["id"]])[setup["workers"][0][0]["id"]] == 100
    assert sweep(app, days=8) == 1
    assert escrow_of(app, brief["id"]) == 0 and approvals(db_session) == 1


def test_an_overturn_racing_the_window_end_refund_pays_or_refunds_never_both(app, client, db_session, setup,
                                                                          standin):
    from marketplace.extensions import db

    key, brief, token, sub_id = rejected_one(client, db_session, setup, standin)
    worker_id = setup["workers"][0][0]["id"]
    cancel(client, key, brief["id"])
    appeal_id = appeal(client, token, sub_id).get_json()["id"]

    # Hold the brief's row lock so both racers reach it and wait at the same gate.
    gate = db.engine.connect()
    gate_tx = gate.begin()
    gate.execute(sa.text("SELECT id FROM briefs WHERE id = :id FOR UPDATE"), {"id": brief["id"]})
    results: dict[str, object] = {}

    def overturn():
        results["overturn"] = decide(app.test_client(), setup["admin"], appeal_id, "overturn").status_code

    def refund():
        results["refunded"] = sweep(app, days=8)

    threads = [threading.Thread(target=overturn), threading.Thread(target=refund)]
    for t in threads:
        t.start()
    try:
        waiting = 0
        for _ in range(200):
            gate.execute(sa.text("SELECT pg_stat_clear_snapshot()"))  # else the transaction's first view is kept
            waiting = gate.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
            if waiting >= 2:
                break
            threading.Event().wait(0.05)
        assert waiting >= 2
    finally:
        gate_tx.rollback()
        gate.close()
    for t in threads:
        t.join(30)

    paid = money(db_session, brief["id"], [worker_id])[worker_id]
    assert results["overturn"] in (200, 409)
    if results["overturn"] == 200:  # paid from the hold; nothing of it refunded
        assert (paid, approvals(db_session), results["refunded"]) == (100, 1, 0)
    else:  # refunded first; the overturn found nothing to pay from
        assert (paid, approvals(db_session), results["refunded"]) == (0, 0, 1)
    assert escrow_of(app, brief["id"]) == 0
    assert ledger_problems(db.engine) == []


def test_metrics_show_the_open_appeals_and_the_oldest_ones_age(client, db_session, setup, standin):
    def gauges() -> dict[str, float]:
        text = client.get("/metrics").get_data(as_text=True)
        return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                if line.startswith(("appeals_open ", "appeals_oldest_open_age_seconds "))}

    assert gauges() == {"appeals_open": 0.0, "appeals_oldest_open_age_seconds": 0.0}
    _, brief = brief_with(client, standin)
    tokens = [t for _, t in setup["workers"]]
    ids = fr.submissions(client, db_session, brief, 2, tokens)
    reject(client, setup["admin"], ids)
    made = [appeal(client, token, sub_id).get_json()["id"] for sub_id, token in zip(ids, tokens[:2], strict=True)]
    db_session.execute(sa.text("UPDATE appeals SET created_at = now() - interval '1 hour' WHERE id = :id"),
                       {"id": made[0]})  # as if made an hour ago
    db_session.commit()
    shown = gauges()
    assert shown["appeals_open"] == 2 and 3600 <= shown["appeals_oldest_open_age_seconds"] < 3700
    assert decide(client, setup["admin"], made[0], "uphold").status_code == 200
    shown = gauges()
    assert shown["appeals_open"] == 1 and shown["appeals_oldest_open_age_seconds"] < 600


def test_a_worker_appealing_twice_at_once_gets_one_appeal(app, client, db_session, setup, standin):
    """A double tap on the appeal button: two requests at once, one appeal, the other told why."""
    _, _, token, sub_id = rejected_one(client, db_session, setup, standin)
    barrier = threading.Barrier(2)
    answers: list = []

    def send():
        own = app.test_client()
        barrier.wait()
        response = appeal(own, token, sub_id)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(code for code, _ in answers) == [201, 409], answers
    assert "appealed already" in next(body for code, body in answers if code == 409)["detail"]
    assert row(db_session, "SELECT count(*) AS n FROM appeals WHERE submission_id = :id", id=sub_id)["n"] == 1
