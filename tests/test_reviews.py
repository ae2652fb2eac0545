"""The review queue, bulk decisions (money from escrow to workers and fees) and auto-approval."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.factories import reviews as fr

REPO = Path(__file__).resolve().parent.parent
PRICE = 100
FEE = 10  # fee_for(100, 1000 bps)


def decide(client, secret: str, **body):
    return client.post("/v1/review/decisions", json=body, headers=f.auth(secret))


def queue(client, secret: str, **params):
    return client.get("/v1/review/submissions", query_string=params, headers=f.auth(secret))


def balances(worker_ids=(), brief_id=None, currency="usd") -> dict:
    from marketplace.ledger import service as ledger

    out = {w: ledger.balance(ledger.worker_available(w, currency)) for w in worker_ids}
    out["fees"] = ledger.balance(ledger.platform_fees(currency))
    if brief_id:
        out["escrow"] = ledger.balance(ledger.escrow(brief_id, currency))
    return out


def approval_entries(db_session) -> int:
    return db_session.execute(sa.text("SELECT count(*) FROM ledger_entries WHERE kind = 'approval'")).scalar_one()


def statuses(db_session, ids) -> dict[str, str]:
    rows = db_session.execute(sa.text("SELECT id, status FROM submissions WHERE id = ANY(:ids)"), {"ids": list(ids)})
    return dict(rows.all())


def brief_money(client, key, brief_id) -> dict:
    return client.get(f"/v1/briefs/{brief_id}", headers=f.auth(key)).get_json()["money"]


@pytest.fixture
def setup(client, runner, standin, db_session):
    """An admin, a brand with a live brief (20 caption tasks at 100 cents) and three workers."""
    admin = f.make_admin(runner)
    key, brief = fr.review_brief(client, standin)
    people = fr.workers(client, 3)
    return {"admin": admin, "key": key, "brief": brief, "workers": people,
            "tokens": [t for _, t in people], "worker_ids": [w["id"] for w, _ in people]}


# The queue --------------------------------------------------------------------------------------


def test_queue_lists_newest_first_with_checks_worker_group_and_screenshot_link(client, db_session, setup):
    plain = fr.submissions(client, db_session, setup["brief"], 3, setup["tokens"])
    shot = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], screenshot=True,
                          checks=(("screenshot", "warn"), ("text", "pass")))
    response = queue(client, setup["admin"])
    assert response.status_code == 200
    items = response.get_json()["data"]
    assert [i["id"] for i in items] == list(reversed(plain + shot))
    newest = items[0]
    assert newest["screenshot_url"] == f"/v1/submissions/{shot[0]}/screenshot"
    assert {(c["name"], c["outcome"]) for c in newest["checks"]} == {("screenshot", "warn"), ("text", "pass")}
    assert newest["group"] == {"id": setup["brief"]["task_groups"][0]["id"], "kind": "caption", "name": "A"}
    assert newest["worker"]["display_name"] == "Sam" and newest["worker"]["id"] in setup["worker_ids"]
    assert newest["status"] == "needs_review" and newest["text"].startswith("Lighter shoe")
    # A warned one waits for a person, never for auto-approval; all-pass ones show when they will be.
    assert (newest["waits_for"], newest["auto_approve_at"]) == ("review", None)
    assert items[1]["waits_for"] == "auto_approval" and items[1]["auto_approve_at"].endswith("Z")
    assert newest["captured_at"].endswith("Z")
    assert items[1]["screenshot_url"] is None and len(items[1]["checks"]) == 2


def test_queue_pages_with_a_cursor_and_each_submission_appears_once(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 7, setup["tokens"])
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = queue(client, setup["admin"], **params).get_json()
        seen += [i["id"] for i in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert queue(client, setup["admin"], cursor="garbage!").status_code == 422


def test_queue_filters_by_brief_status_and_check_outcome(client, db_session, setup, standin):
    passed = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    warned = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"],
                            checks=(("text", "warn"), ("timestamp", "pass")))
    failed_link = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], status="auto_rejected",
                                 checks=(("link", "fail"), ("text", "pass")))
    validating = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], status="validating", checks=())
    _, other_brief = fr.review_brief(client, standin, setup["key"])
    elsewhere = fr.submissions(client, db_session, other_brief, 1, setup["tokens"])

    def ids(**params):
        response = queue(client, setup["admin"], **params)
        assert response.status_code == 200, response.get_json()
        return {i["id"] for i in response.get_json()["data"]}

    brief = setup["brief"]["id"]
    assert ids(brief=brief) == set(passed + warned + failed_link + validating)
    assert ids() == set(passed + warned + failed_link + validating + elsewhere)
    assert ids(brief=brief, all_checks="pass") == set(passed)
    assert ids(check="warn") == set(warned)
    assert ids(check="text:warn") == set(warned)
    assert ids(check="link:fail") == set(failed_link)
    assert ids(check="fail") == set(failed_link)
    assert ids(check="text:pass,link:fail") == set(failed_link)
    assert ids(check="timestamp:warn") == set()
    assert ids(status="validating") == set(validating)
    assert ids(status="needs_review", brief=brief) == set(passed + warned)


def test_queue_rejects_bad_filters_and_hides_other_brands_work(client, db_session, setup, standin):
    mine = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    other_key, other_brief = fr.review_brief(client, standin)
    theirs = fr.submissions(client, db_session, other_brief, 2, setup["tokens"])
    for bad in ({"check": "fail:text"}, {"check": "text:maybe"}, {"check": "Text;DROP"}, {"status": "lost"},
                {"check": "txt:fail"}, {"check": "text:pass,scren:pass"},
                {"all_checks": "fail"}, {"limit": 0}, {"limit": 501}, {"limit": "ten"}):
        response = queue(client, setup["admin"], **bad)
        assert response.status_code == 422, bad
        assert response.headers["Content-Type"].startswith("application/problem+json")
    assert {i["id"] for i in queue(client, setup["key"]).get_json()["data"]} == set(mine)
    assert {i["id"] for i in queue(client, other_key).get_json()["data"]} == set(theirs)
    assert queue(client, setup["key"], brief=other_brief["id"]).status_code == 404
    assert queue(client, setup["key"], brief="brief_nope").status_code == 404
    assert queue(client, setup["tokens"][0]).status_code == 403
    assert client.get("/v1/review/submissions").status_code == 401


def test_queue_reads_all_checks_of_a_page_in_one_query(client, db_session, setup, app, sql_statements):
    fr.submissions(client, db_session, setup["brief"], 12, setup["tokens"])

    def statements_for(limit: int) -> tuple[int, int]:
        with sql_statements as statements:
            assert len(queue(client, setup["admin"], limit=limit).get_json()["data"]) == limit
        return sum("submission_checks" in s for s in statements), len(statements)

    assert statements_for(2) == statements_for(12)
    assert statements_for(12)[0] == 1


# Decisions: money -------------------------------------------------------------------------------


def test_approving_by_ids_moves_price_and_fee_from_escrow_to_worker_and_platform(client, db_session, setup):
    brief, key = setup["brief"], setup["key"]
    ids = fr.submissions(client, db_session, brief, 4, setup["tokens"])
    before = balances(setup["worker_ids"], brief["id"])
    assert before["escrow"] == 20 * (PRICE + FEE)

    response = decide(client, setup["admin"], submission_ids=ids[:3], decision="approve", reason="great work")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"approved": 3, "rejected": 0, "revision_requested": 0, "skipped": [],
                                   "remaining": 0}

    after = balances(setup["worker_ids"], brief["id"])
    assert after["escrow"] == before["escrow"] - 3 * (PRICE + FEE)
    assert after["fees"] == before["fees"] + 3 * FEE
    owners = dict(db_session.execute(sa.text("SELECT id, worker_id FROM submissions")).all())
    for worker_id in setup["worker_ids"]:
        paid_for = sum(1 for s in ids[:3] if owners[s] == worker_id)
        assert after[worker_id] == before[worker_id] + paid_for * PRICE
    money = brief_money(client, key, brief["id"])
    assert money["spent_cents"] == 3 * (PRICE + FEE)
    assert money["remaining_cents"] == after["escrow"]
    assert brief_money(client, key, brief["id"])["funded_cents"] == before["escrow"]

    rows = db_session.execute(sa.text(
        "SELECT s.status, s.decided_by, s.decided_at, s.reason, t.status FROM submissions s "
        "JOIN tasks t ON t.id = s.task_id WHERE s.id = ANY(:ids) ORDER BY s.created_at"), {"ids": ids}).all()
    admin_id = client.get("/v1/me", headers=f.auth(setup["admin"])).get_json()["admin"]["id"]
    for status, decided_by, decided_at, reason, task_status in rows[:3]:
        assert (status, decided_by, reason, task_status) == ("approved", f"admin:{admin_id}", "great work", "approved")
        assert decided_at is not None
    assert rows[3][0] == "needs_review" and rows[3][4] == "submitted"
    group = client.get(f"/v1/briefs/{brief['id']}", headers=f.auth(key)).get_json()["task_groups"][0]
    assert group["counts"]["approved"] == 3 and group["counts"]["submitted"] == 1


def test_deciding_twice_is_a_no_op_and_never_a_second_payment(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 3, setup["tokens"])
    assert decide(client, setup["admin"], submission_ids=ids, decision="approve").get_json()["approved"] == 3
    before = balances(setup["worker_ids"], setup["brief"]["id"])

    again = decide(client, setup["key"], submission_ids=ids + [ids[0]], decision="approve").get_json()
    assert again["approved"] == 0
    assert again["skipped"] == [{"id": i, "reason": "already approved"} for i in ids]
    reject = decide(client, setup["admin"], submission_ids=ids, decision="reject", reason_code="other").get_json()
    assert reject["rejected"] == 0 and {s["reason"] for s in reject["skipped"]} == {"already approved"}
    assert balances(setup["worker_ids"], setup["brief"]["id"]) == before
    assert approval_entries(db_session) == 3
    assert set(statuses(db_session, ids).values()) == {"approved"}


def test_an_approval_the_escrow_cannot_cover_is_skipped_never_overdrawn(client, db_session, setup):
    brief = setup["brief"]
    ids = fr.submissions(client, db_session, brief, 5, setup["tokens"])
    fr.set_aside_escrow(db_session, brief["id"], leave_cents=2 * (PRICE + FEE) + 50)

    body = decide(client, setup["admin"], submission_ids=list(reversed(ids)), decision="approve").get_json()
    assert body["approved"] == 2
    # The oldest are paid first, whatever order the ids came in.
    assert statuses(db_session, ids) == {**dict.fromkeys(ids[:2], "approved"), **dict.fromkeys(ids[2:], "needs_review")}
    assert sorted(s["id"] for s in body["skipped"]) == sorted(ids[2:])
    assert {s["reason"] for s in body["skipped"]} == {"insufficient escrow"}
    assert balances((), brief["id"])["escrow"] == 50
    assert brief_money(client, setup["key"], brief["id"])["spent_cents"] == 2 * (PRICE + FEE)

    # By filter too: nothing more fits, nothing is overdrawn.
    by_filter = decide(client, setup["admin"], filter={"brief": brief["id"]}, decision="approve").get_json()
    assert by_filter["approved"] == 0 and len(by_filter["skipped"]) == 3
    assert balances((), brief["id"])["escrow"] == 50


# Decisions: reject and revision -----------------------------------------------------------------


def test_reject_needs_a_reason_code_ends_the_claim_and_reopens_the_task(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    missing = decide(client, setup["key"], submission_ids=ids, decision="reject", reason="no")
    assert missing.status_code == 422 and "reason_code" in missing.get_json()["errors"]
    unknown = decide(client, setup["key"], submission_ids=ids, decision="reject", reason_code="ugly")
    assert unknown.status_code == 422 and "reason_code" in unknown.get_json()["errors"]
    assert set(statuses(db_session, ids).values()) == {"needs_review"}

    body = decide(client, setup["key"], submission_ids=ids[:1], decision="reject", reason_code="missing_disclosure",
                  reason="Add #ad").get_json()
    assert body["rejected"] == 1 and body["skipped"] == []
    row = db_session.execute(sa.text(
        "SELECT s.status, s.reason_code, s.reason, s.decided_by, c.status, t.status, t.worker_id FROM submissions s "
        "JOIN claims c ON c.id = s.claim_id JOIN tasks t ON t.id = s.task_id WHERE s.id = :id"), {"id": ids[0]}).one()
    brand_id = client.get("/v1/me", headers=f.auth(setup["key"])).get_json()["brand"]["id"]
    assert tuple(row) == ("rejected", "missing_disclosure", "Add #ad", f"brand:{brand_id}", "rejected", "open", None)
    assert approval_entries(db_session) == 0
    assert balances((), setup["brief"]["id"])["escrow"] == 20 * (PRICE + FEE)
    group = client.get(f"/v1/briefs/{setup['brief']['id']}", headers=f.auth(setup["key"])).get_json()["task_groups"][0]
    assert group["counts"]["rejected"] == 1 and group["counts"]["open"] == 19


def test_request_revision_keeps_the_claim_with_a_deadline(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    started = datetime.now(UTC)
    body = decide(client, setup["admin"], submission_ids=ids[:1], decision="request_revision",
                  reason_code="low_quality", reason="Mention the grip", revision_deadline_hours=24).get_json()
    assert body["revision_requested"] == 1
    row = db_session.execute(sa.text(
        "SELECT s.status, s.reason_code, s.reason, s.revision_deadline, c.status, t.status FROM submissions s "
        "JOIN claims c ON c.id = s.claim_id JOIN tasks t ON t.id = s.task_id WHERE s.id = :id"), {"id": ids[0]}).one()
    assert row[:3] == ("revision_requested", "low_quality", "Mention the grip")
    assert timedelta(hours=23, minutes=59) < row[3] - started < timedelta(hours=24, minutes=1)
    assert row[4:] == ("submitted", "submitted")
    item = next(i for i in queue(client, setup["admin"]).get_json()["data"] if i["id"] == ids[0])
    assert item["reason_code"] == "low_quality" and item["revision_deadline"].endswith("Z")

    # The default deadline is 48 hours; asking again for the same submission is a no-op.
    default = decide(client, setup["admin"], submission_ids=ids, decision="request_revision",
                     reason_code="other").get_json()
    assert default["revision_requested"] == 1
    assert default["skipped"] == [{"id": ids[0], "reason": "revision requested: waiting for the worker's new submission"}]
    deadline = db_session.execute(sa.text("SELECT revision_deadline FROM submissions WHERE id = :id"), {"id": ids[1]}).scalar_one()
    assert timedelta(hours=47, minutes=59) < deadline - started < timedelta(hours=48, minutes=1)


def test_a_lapsed_revision_request_ends_the_claim_and_reopens_the_task(client, db_session, setup):
    from marketplace.reviews import service

    ids = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    decide(client, setup["admin"], submission_ids=ids, decision="request_revision", reason_code="other")
    db_session.execute(sa.text("UPDATE submissions SET revision_deadline = now() - interval '1 minute' WHERE id = :id"),
                       {"id": ids[0]})
    db_session.commit()
    assert service.close_lapsed_revisions() == 1
    rows = dict(db_session.execute(sa.text(
        "SELECT s.id, c.status || '/' || t.status FROM submissions s JOIN claims c ON c.id = s.claim_id "
        "JOIN tasks t ON t.id = s.task_id WHERE s.id = ANY(:ids)"), {"ids": ids}).all())
    assert rows == {ids[0]: "expired/open", ids[1]: "submitted/submitted"}
    assert service.close_lapsed_revisions() == 0


def test_lapsed_revisions_are_closed_even_when_auto_approval_fails(client, db_session, setup, app):
    """One scheduled job does both; the database refusing every approval must not keep the
    lapsed revisions' tasks from reopening."""
    from workers.reviews import auto_approve_due

    ids = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    decide(client, setup["admin"], submission_ids=[ids[0]], decision="request_revision", reason_code="other")
    db_session.execute(sa.text("UPDATE submissions SET revision_deadline = now() - interval '1 minute' WHERE id = :id"),
                       {"id": ids[0]})
    db_session.execute(sa.text("UPDATE submissions SET auto_approve_at = now() - interval '1 minute' WHERE id = :id"),
                       {"id": ids[1]})
    db_session.commit()
    with f.database_refuses(app, "submissions", "UPDATE", when="NEW.status = 'approved'"), app.app_context(), \
            pytest.raises(RuntimeError, match="auto-approval failed"):
        auto_approve_due()
    db_session.rollback()
    statuses = dict(db_session.execute(sa.text(
        "SELECT s.id, c.status FROM submissions s JOIN claims c ON c.id = s.claim_id WHERE s.id = ANY(:ids)"),
        {"ids": ids}).all())
    assert statuses == {ids[0]: "expired", ids[1]: "submitted"}


def test_a_lapsed_revision_being_resubmitted_right_now_is_left_alone(client, db_session, setup, app):
    """The worker's revised proof is going in (its claim locked, as submitting locks it) when the job
    runs: the job skips that claim instead of waiting and then ending it under the new proof."""
    import threading

    from marketplace.extensions import db
    from marketplace.reviews import service

    ids = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"])
    decide(client, setup["admin"], submission_ids=ids, decision="request_revision", reason_code="other")
    db_session.execute(sa.text("UPDATE submissions SET revision_deadline = now() - interval '1 minute'"))
    db_session.commit()
    claim_id = db_session.execute(sa.text("SELECT claim_id FROM submissions")).scalar_one()
    results = []

    def run_job():
        with app.app_context():
            results.append(service.close_lapsed_revisions())
            db.session.remove()

    with f.row_locked(app, "claims", claim_id):  # the revised proof going in
        job = threading.Thread(target=run_job)
        job.start()
        job.join(timeout=10)
        assert not job.is_alive() and results == [0]  # skipped, not waited on
    assert db_session.execute(sa.text("SELECT status FROM claims")).scalar_one() == "submitted"
    assert service.close_lapsed_revisions() == 1  # the next run, with no new proof after all


def test_submissions_not_waiting_for_review_are_skipped_with_reasons(client, db_session, setup):
    validating = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], status="validating", checks=())
    auto_rejected = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], status="auto_rejected",
                                   checks=(("text", "fail"),))
    body = decide(client, setup["admin"], submission_ids=validating + auto_rejected + ["sub_nope"],
                  decision="approve").get_json()
    assert body["approved"] == 0
    assert body["skipped"] == [
        {"id": validating[0], "reason": "still validating"},
        {"id": auto_rejected[0], "reason": "auto-rejected: a check failed and its task was reopened"},
        {"id": "sub_nope", "reason": "not found"},
    ]
    assert approval_entries(db_session) == 0


# Decisions: by filter ---------------------------------------------------------------------------


def test_decisions_by_filter_apply_to_every_match_not_a_page(client, db_session, setup, standin):
    passed = fr.submissions(client, db_session, setup["brief"], 6, setup["tokens"])
    warned = fr.submissions(client, db_session, setup["brief"], 3, setup["tokens"],
                            checks=(("text", "warn"), ("timestamp", "pass")))
    validating = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], status="validating", checks=())
    _, other_brief = fr.review_brief(client, standin, setup["key"])
    elsewhere = fr.submissions(client, db_session, other_brief, 2, setup["tokens"])

    approve = decide(client, setup["key"], filter={"brief": setup["brief"]["id"], "all_checks": "pass"},
                     decision="approve").get_json()
    assert approve == {"approved": 6, "rejected": 0, "revision_requested": 0, "skipped": [], "remaining": 0}
    reject = decide(client, setup["key"], filter={"brief": setup["brief"]["id"], "check": "text:warn"},
                    decision="reject", reason_code="off_brief").get_json()
    assert reject["rejected"] == 3
    assert statuses(db_session, passed + warned + validating + elsewhere) == {
        **dict.fromkeys(passed, "approved"), **dict.fromkeys(warned, "rejected"),
        **dict.fromkeys(validating, "validating"), **dict.fromkeys(elsewhere, "needs_review")}
    # The filter selects needs_review only, so a repeat finds nothing to do.
    assert decide(client, setup["key"], filter={"brief": setup["brief"]["id"]}, decision="approve").get_json() == {
        "approved": 0, "rejected": 0, "revision_requested": 0, "skipped": [], "remaining": 0}
    assert balances((), setup["brief"]["id"])["escrow"] == 20 * (PRICE + FEE) - 6 * (PRICE + FEE)


def test_a_brand_deciding_another_brands_submissions_skips_them_as_not_found(client, db_session, setup, standin):
    other_key, other_brief = fr.review_brief(client, standin)
    theirs = fr.submissions(client, db_session, other_brief, 3, setup["tokens"])
    mine = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"])
    before = balances(setup["worker_ids"], other_brief["id"])

    body = decide(client, setup["key"], submission_ids=theirs + mine, decision="approve").get_json()
    assert body["approved"] == 1
    assert body["skipped"] == [{"id": i, "reason": "not found"} for i in theirs]
    for decision, extra in (("reject", {"reason_code": "other"}), ("request_revision", {"reason_code": "other"})):
        out = decide(client, setup["key"], submission_ids=theirs, decision=decision, **extra).get_json()
        assert out["skipped"] == [{"id": i, "reason": "not found"} for i in theirs]
    # A filter naming their brief is a 404; one without a brief only reaches my own briefs.
    assert decide(client, setup["key"], filter={"brief": other_brief["id"]}, decision="approve").status_code == 404
    assert decide(client, setup["key"], filter={}, decision="approve").get_json()["approved"] == 0
    assert set(statuses(db_session, theirs).values()) == {"needs_review"}
    assert balances(setup["worker_ids"], other_brief["id"])["escrow"] == before["escrow"]
    assert decide(client, other_key, filter={}, decision="approve").get_json()["approved"] == 3


def test_a_filter_decides_at_most_ten_thousand_a_call_and_says_how_many_remain(client, db_session, runner, standin):
    admin = f.make_admin(runner)
    _, brief = fr.review_brief(client, standin, quantity=10_003, unit_price_cents=3)
    group_id = brief["task_groups"][0]["id"]
    ids = fr.bulk_submissions(db_session, group_id, fr.bulk_workers(db_session, 50), 10_003)

    first = decide(client, admin, filter={"brief": brief["id"], "all_checks": "pass"}, decision="approve").get_json()
    assert (first["approved"], first["remaining"], first["skipped"]) == (10_000, 3, [])
    second = decide(client, admin, filter={"brief": brief["id"], "all_checks": "pass"}, decision="approve").get_json()
    assert (second["approved"], second["remaining"]) == (3, 0)
    assert approval_entries(db_session) == 10_003
    assert set(statuses(db_session, ids).values()) == {"approved"}
    assert balances((), brief["id"])["escrow"] == 0


# Decisions: bad input ---------------------------------------------------------------------------


def test_bad_decision_requests_are_4xx_problems_and_change_nothing(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    too_many = [f"sub_{i}" for i in range(10_001)]
    bad_bodies = [
        {"submission_ids": too_many, "decision": "approve"},
        {"submission_ids": ids, "decision": "pay"},
        {"submission_ids": ids},
        {"submission_ids": ids, "decision": "reject"},
        {"submission_ids": ids, "decision": "request_revision", "reason": "why"},
        {"submission_ids": ids, "decision": "approve", "reason_code": "meh"},
        {"submission_ids": [], "decision": "approve"},
        {"submission_ids": "sub_1", "decision": "approve"},
        {"submission_ids": [1, 2], "decision": "approve"},
        {"decision": "approve"},
        {"submission_ids": ids, "filter": {"brief": setup["brief"]["id"]}, "decision": "approve"},
        {"filter": {"status": "approved"}, "decision": "approve"},
        {"filter": {"check": "text:maybe"}, "decision": "approve"},
        {"filter": {"all_checks": "warn"}, "decision": "approve"},
        {"filter": {"colour": "red"}, "decision": "approve"},
        {"submission_ids": ids, "decision": "request_revision", "reason_code": "other", "revision_deadline_hours": 0},
        {"submission_ids": ids, "decision": "request_revision", "reason_code": "other", "revision_deadline_hours": "48"},
        {"submission_ids": ids, "decision": "approve", "surprise": True},
    ]
    for body in bad_bodies:
        response = decide(client, setup["admin"], **body)
        assert response.status_code == 422, (body if len(str(body)) < 300 else "too many", response.get_json())
        assert response.headers["Content-Type"].startswith("application/problem+json")
    assert client.post("/v1/review/decisions", data="[", headers={**f.auth(setup["admin"]),
                       "Content-Type": "application/json"}).status_code in (400, 422)
    assert decide(client, setup["tokens"][0], submission_ids=ids, decision="approve").status_code == 403
    assert client.post("/v1/review/decisions", json={"submission_ids": ids, "decision": "approve"}).status_code == 401
    assert set(statuses(db_session, ids).values()) == {"needs_review"}
    assert approval_entries(db_session) == 0


def test_ten_thousand_ids_are_accepted(client, db_session, setup):
    ids = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"])
    body = decide(client, setup["admin"], submission_ids=ids + [f"sub_{i}" for i in range(9_999)],
                  decision="approve").get_json()
    assert body["approved"] == 1 and len(body["skipped"]) == 9_999


# Auto-approval ----------------------------------------------------------------------------------


def test_the_auto_approval_job_approves_due_submissions_whose_checks_all_passed(app, client, db_session, setup):
    from rq import Queue, SimpleWorker

    from marketplace.jobs import enqueue, queue_name, redis_connection

    past = datetime.now(UTC) - timedelta(minutes=1)
    due = fr.submissions(client, db_session, setup["brief"], 3, setup["tokens"], auto_approve_at=past)
    warned = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], auto_approve_at=past,
                            checks=(("text", "warn"), ("timestamp", "pass")))
    unchecked = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], auto_approve_at=past, checks=())
    validating = fr.submissions(client, db_session, setup["brief"], 1, setup["tokens"], auto_approve_at=past,
                                status="validating", checks=())
    not_yet = fr.submissions(client, db_session, setup["brief"], 2, setup["tokens"])
    item = next(i for i in queue(client, setup["admin"]).get_json()["data"] if i["id"] == not_yet[0])
    assert item["auto_approve_at"] > f.hours_from_now(71.9)

    job = enqueue("workers.reviews.auto_approve_due")
    redis = redis_connection(app)
    SimpleWorker([Queue(queue_name("default"), connection=redis)], connection=redis).work(burst=True)
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == {"approved": 3, "skipped": {}, "revisions_lapsed": 0}

    assert statuses(db_session, due + warned + unchecked + validating + not_yet) == {
        **dict.fromkeys(due, "approved"), **dict.fromkeys(warned + unchecked + not_yet, "needs_review"),
        **dict.fromkeys(validating, "validating")}
    decided_by = db_session.execute(sa.text("SELECT DISTINCT decided_by FROM submissions WHERE status = 'approved'")).scalars().all()
    assert decided_by == ["system:auto-approval"]
    assert balances((), setup["brief"]["id"])["escrow"] == 20 * (PRICE + FEE) - 3 * (PRICE + FEE)

    # Running it again approves nothing more.
    enqueue("workers.reviews.auto_approve_due")
    SimpleWorker([Queue(queue_name("default"), connection=redis)], connection=redis).work(burst=True)
    assert approval_entries(db_session) == 3


def test_auto_approval_skips_what_the_escrow_cannot_cover_and_moves_on(client, db_session, setup):
    from marketplace.reviews import service

    past = datetime.now(UTC) - timedelta(minutes=1)
    ids = fr.submissions(client, db_session, setup["brief"], 5, setup["tokens"], auto_approve_at=past)
    fr.set_aside_escrow(db_session, setup["brief"]["id"], leave_cents=3 * (PRICE + FEE))
    assert service.auto_approve_due(chunk=2) == {"approved": 3, "skipped": {"insufficient escrow": 2}}
    assert sorted(statuses(db_session, ids).values()) == ["approved"] * 3 + ["needs_review"] * 2
    assert balances((), setup["brief"]["id"])["escrow"] == 0


def _waiting_on_locks(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()")).scalar_one()


def test_bulk_approval_racing_auto_approval_approves_each_submission_once(app, client, runner, db_session, standin):
    """Two people's bulk approvals (HTTP, threads), auto-approval in a thread and in an RQ worker
    process, all released at once on the same 500 due submissions."""
    from rq.job import Job

    from marketplace.extensions import db
    from marketplace.jobs import enqueue, queue_name, redis_connection
    from marketplace.ledger import service as ledger
    from marketplace.reviews import service

    admin = f.make_admin(runner)
    key, brief = fr.review_brief(client, standin, quantity=500, unit_price_cents=37)
    unit_cost = 37 + 4  # fee_for(37, 1000 bps) = 4
    worker_ids = [w["id"] for w, _ in fr.workers(client, 4)]
    past = datetime.now(UTC) - timedelta(minutes=1)
    ids = fr.bulk_submissions(db_session, brief["task_groups"][0]["id"], worker_ids, 500, auto_approve_at=past)
    escrow = ledger.escrow(brief["id"], "usd")
    funded = ledger.balance(escrow)
    db_session.commit()

    # Hold the escrow's row lock so every racer gets as far as it can and waits at the same gate.
    gate = db.engine.connect()
    gate_tx = gate.begin()
    gate.execute(sa.text("SELECT id FROM ledger_accounts WHERE code = :code FOR UPDATE"), {"code": escrow.code})

    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    def racer(name, fn):
        def run():
            try:
                results[name] = fn()
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
        return threading.Thread(target=run, name=name)

    def by_ids():
        shuffled = random.sample(ids, len(ids))
        own = app.test_client()
        totals = {"approved": 0}
        for start in range(0, 500, 100):
            response = decide(own, admin, submission_ids=shuffled[start:start + 100], decision="approve")
            assert response.status_code == 200, response.get_json()
            totals["approved"] += response.get_json()["approved"]
        return totals

    def by_filter():
        response = decide(app.test_client(), key, filter={"brief": brief["id"], "all_checks": "pass"},
                          decision="approve")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def auto_in_thread():
        with app.app_context():
            try:
                return service.auto_approve_due(chunk=50)
            finally:
                db.session.remove()

    job = enqueue("workers.reviews.auto_approve_due", job_id="race-auto-approve")
    rq_worker = subprocess.Popen(
        [str(REPO / ".venv/bin/rq"), "worker", "--burst", "--url", os.environ["REDIS_URL"], queue_name("default")],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    threads = [racer("ids", by_ids), racer("filter", by_filter), racer("auto", auto_in_thread)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while _waiting_on_locks(db.engine) < 4 and time.monotonic() < deadline and rq_worker.poll() is None:
        time.sleep(0.05)
    gate_tx.rollback()
    gate.close()

    for t in threads:
        t.join(60)
    # What is under test is the job the worker process ran, not how fast the process exits: seen
    # rarely under load, a burst worker that has finished and torn down (its log says so) lingers
    # before exiting, so it gets 60 s to finish the job, then is stopped if it is still there.
    finished = Job.fetch("race-auto-approve", connection=redis_connection(app))
    deadline = time.monotonic() + 60
    while finished.get_status(refresh=True) not in ("finished", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        output = rq_worker.communicate(timeout=15)[0].decode()
    except subprocess.TimeoutExpired:
        rq_worker.terminate()
        output = rq_worker.communicate(timeout=15)[0].decode()
    assert not errors, errors
    assert finished.get_status(refresh=True) == "finished", output
    rq_result = Job.fetch("race-auto-approve", connection=redis_connection(app)).return_value()
    assert job.id == "race-auto-approve" and rq_result is not None, output

    approved_by_racers = (results["ids"]["approved"] + results["filter"]["approved"] + results["auto"]["approved"]
                          + rq_result["approved"])
    db_session.expire_all()
    assert approved_by_racers == 500
    assert approval_entries(db_session) == 500
    assert set(statuses(db_session, ids).values()) == {"approved"}
    assert ledger.balance(escrow) == funded - 500 * unit_cost
    assert ledger.balance(ledger.platform_fees("usd")) == 500 * 4
    assert sum(ledger.balance(ledger.worker_available(w, "usd")) for w in worker_ids) == 500 * 37

