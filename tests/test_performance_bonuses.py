"""Performance bonuses: each conversion on an approved task's tracked link earns its worker the
group's bonus, up to the cap per task, in the conversion's transaction; reserved by the budget rule;
refused on review groups (16 CFR Part 465); paid by payout batches like approved work."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tests import factories as f
from tests.factories.payouts import earnings, ready_worker, run_payout_jobs
from tests.factories.reviews import submit_claims
from tests.factories.tracking import approve, conversion, post_conversions

BONUS = {"per_conversion_cents": 200, "max_per_task_cents": 500}
# 3 tasks: 300 + 30 of fees + 3 × 500 of bonus reserve = 1,830 committed. A second, unclaimed group
# keeps the platform's Stripe balance above what Stripe's fee on the payment takes.
GROUP = {"kind": "caption", "name": "Bonus", "quantity": 3, "unit_price_cents": 100, "max_per_worker": 3,
         "instructions": "Write a caption", "proof": {"text": {"min_length": 5}}, "bonus": BONUS}
FILLER = {"kind": "caption", "quantity": 20, "unit_price_cents": 100, "instructions": "Another caption"}


def bonus_brief(client, standin, **overrides):
    _, key = f.sign_up_brand(client)
    brief = f.live_brief(client, key, standin, target_cpa_cents=None, budget_cents=5000,
                         task_groups=[GROUP, FILLER], **overrides)
    return key, brief


def claimed(client, brief) -> tuple[dict, str, dict]:
    worker, token = f.sign_up_worker(client)
    return worker, token, f.claim(client, token, brief["task_groups"][0]["id"])


def performance_bonuses(db_session) -> list:
    db_session.rollback()
    return db_session.execute(sa.text(
        "SELECT b.task_id, b.amount_cents, e.kind FROM bonuses b "
        "JOIN ledger_entries e ON e.ref_id = b.id WHERE b.kind = 'performance' ORDER BY b.created_at, b.id")).all()


def test_conversions_on_an_approved_tasks_link_earn_its_worker_up_to_the_cap(app, client, standin, db_session):
    key, brief = bonus_brief(client, standin)
    group = brief["task_groups"][0]
    assert group["bonus"] == BONUS
    assert brief["money"]["bonus_reserve_cents"] == 1500
    assert brief["money"]["committed_cents"] == 300 + 30 + 1500 + 2000 + 200
    worker, token, held = claimed(client, brief)
    approve(app, [held])
    before = earnings(client, token)

    # 200 + 200 + 100 (what is left of the 500 cap) + nothing, over two requests.
    post_conversions(client, key, [conversion(held["tracked_code"], f"o{i}", 1000) for i in range(2)])
    post_conversions(client, key, [conversion(held["tracked_code"], f"o{i}", 1000) for i in range(2, 4)])
    task_id = held["task"]["id"]
    assert performance_bonuses(db_session) == [
        (task_id, 200, "performance_bonus"), (task_id, 200, "performance_bonus"), (task_id, 100, "performance_bonus")]
    after = earnings(client, token)
    assert after["available_cents"] == before["available_cents"] + 500
    assert after["bonus_cents"] == 500
    listed = f.auth(key)
    mine = client.get("/v1/bonuses", query_string={"brief": brief["id"]}, headers=listed).get_json()["data"]
    assert {(b["kind"], b["task_id"]) for b in mine} == {("performance", task_id)}
    feed = client.get("/v1/me/notifications", headers=f.auth(token)).get_json()["data"]
    assert sum(1 for n in feed if n["kind"] == "bonus") == 3

    # The report counts the bonuses as spend: 110 for the approval + 500 of bonus, over 4 conversions.
    report = client.get(f"/v1/briefs/{brief['id']}/report", headers=f.auth(key)).get_json()
    assert (report["totals"]["spend_cents"], report["totals"]["cpa_cents"]) == (610, "152.50")
    by_group = {g["group_id"]: g for g in report["groups"]}
    assert by_group[group["id"]]["spend_cents"] == 610
    by_worker = {w["worker_id"]: w for w in report["workers"]}
    assert by_worker[worker["id"]]["spend_cents"] == 610

    # A replayed conversion earns nothing again.
    post_conversions(client, key, [conversion(held["tracked_code"], "o0", 1000)])
    assert len(performance_bonuses(db_session)) == 3


def test_a_conversion_before_approval_earns_when_the_work_is_approved(app, client, runner, standin, db_session):
    """The bonus accrues once both hold: the conversion came in and the task's work is approved.
    Before the decision nothing is paid; the approval itself pays what the waiting conversions earned."""
    admin = f.make_admin(runner)
    key, brief = bonus_brief(client, standin)
    worker, token, held = claimed(client, brief)
    submission_id, = submit_claims(db_session, [held["claim_id"]])

    post_conversions(client, key, [conversion(held["tracked_code"], "early", 1000)])
    assert performance_bonuses(db_session) == []  # not approved yet: nothing earned

    response = client.post("/v1/review/decisions", json={"submission_ids": [submission_id], "decision": "approve"},
                           headers=f.auth(admin))
    assert response.status_code == 200, response.get_json()
    assert performance_bonuses(db_session) == [(held["task"]["id"], 200, "performance_bonus")]
    assert earnings(client, token)["bonus_cents"] == 200


def test_a_rejected_or_unapproved_task_earns_nothing(app, client, standin, db_session):
    key, brief = bonus_brief(client, standin)
    _, _, held = claimed(client, brief)
    post_conversions(client, key, [conversion(held["tracked_code"], "x", 1000)])
    assert performance_bonuses(db_session) == []


def test_concurrent_conversions_never_exceed_the_cap(app, client, standin, db_session):
    key, brief = bonus_brief(client, standin)
    _, token, held = claimed(client, brief)
    approve(app, [held])
    barrier, codes = threading.Barrier(6), []

    def post(i):
        with app.test_client() as c:
            barrier.wait()
            codes.append(c.post("/v1/conversions", json={"conversions": [
                conversion(held["tracked_code"], f"race{i}", 500)]}, headers=f.auth(key)).status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 6
    earned = performance_bonuses(db_session)
    assert sum(amount for _, amount, _ in earned) == 500  # the cap, exactly: 200 + 200 + 100
    assert sorted(amount for _, amount, _ in earned) == [100, 200, 200]
    assert earnings(client, token)["bonus_cents"] == 500


def test_the_budget_rule_reserves_the_bonus_cap(client):
    _, key = f.sign_up_brand(client)
    payload = f.brief_payload(budget_cents=1829, task_groups=[GROUP])
    response = client.post("/v1/briefs", json=payload, headers=f.auth(key))
    assert response.status_code == 422, response.get_json()
    assert "1500 cents of performance bonuses" in response.get_json()["detail"]
    assert "budget_cents" in response.get_json()["errors"]
    ok = client.post("/v1/briefs", json={**payload, "budget_cents": 1830}, headers=f.auth(key))
    assert ok.status_code == 201 and ok.get_json()["money"]["committed_cents"] == 1830


def test_review_groups_refuse_a_performance_bonus_naming_the_ftc_rule(client, standin):
    _, key = f.sign_up_brand(client)
    review = {**GROUP, "kind": "review"}
    response = client.post("/v1/briefs", json=f.brief_payload(task_groups=[review]), headers=f.auth(key))
    assert response.status_code == 422, response.get_json()
    message = response.get_json()["errors"]["task_groups[0].bonus"][0]
    assert "16 CFR Part 465" in message and "FTC" in message
    # Without the bonus a review group is fine.
    plain = {k: v for k, v in review.items() if k != "bonus"}
    assert client.post("/v1/briefs", json=f.brief_payload(task_groups=[plain]), headers=f.auth(key)).status_code == 201
    # And a group added to a running brief is held to the same rule.
    key2, brief = bonus_brief(client, standin)
    added = client.post(f"/v1/briefs/{brief['id']}/task-groups", json=review, headers=f.auth(key2))
    assert added.status_code == 422 and "16 CFR Part 465" in added.get_json()["errors"]["bonus"][0]


def test_bad_bonus_terms_are_422(client):
    _, key = f.sign_up_brand(client)
    for bonus, field in [
        ({"per_conversion_cents": 200, "max_per_task_cents": 100}, "max_per_task_cents"),
        ({"per_conversion_cents": 0, "max_per_task_cents": 100}, "per_conversion_cents"),
        ({"per_conversion_cents": 200}, "max_per_task_cents"),
        ({"per_conversion_cents": "200", "max_per_task_cents": 500}, "per_conversion_cents"),
    ]:
        response = client.post("/v1/briefs", json=f.brief_payload(task_groups=[{**GROUP, "bonus": bonus}]),
                               headers=f.auth(key))
        assert response.status_code == 422, (bonus, response.get_json())
        assert f"task_groups[0].bonus.{field}" in response.get_json()["errors"], response.get_json()


def test_a_group_added_with_a_bonus_reserves_its_cap_from_unspent_escrow(app, client, standin):
    from tests.factories.bonuses import bonus_brief as spare_brief

    worker, token = f.sign_up_worker(client)
    key, brief_id = spare_brief(app, client, standin, [(worker["id"], token)])  # 2,200 spare
    # 2 tasks × (100 + 10) + 2 × 1,000 of bonus cap = 2,220: 20 short.
    big = {**GROUP, "quantity": 2, "bonus": {"per_conversion_cents": 200, "max_per_task_cents": 1000}}
    response = client.post(f"/v1/briefs/{brief_id}/task-groups", json=big, headers=f.auth(key))
    assert response.status_code == 422 and "20 cents short" in response.get_json()["detail"], response.get_json()
    fits = {**big, "bonus": {"per_conversion_cents": 200, "max_per_task_cents": 990}}
    assert client.post(f"/v1/briefs/{brief_id}/task-groups", json=fits, headers=f.auth(key)).status_code == 201
    assert client.get(f"/v1/briefs/{brief_id}/unspent", headers=f.auth(key)).get_json()["unspent_cents"] == 0


def test_performance_bonuses_are_paid_by_the_next_payout_batch(app, client, runner, standin, db_session):
    admin = f.make_admin(runner)
    key, brief = bonus_brief(client, standin)
    standin.make_funds_available()
    worker, token, _ = ready_worker(client, standin)
    held = f.claim(client, token, brief["task_groups"][0]["id"])
    approve(app, [held])
    post_conversions(client, key, [conversion(held["tracked_code"], "p1", 1000)])

    batch = client.post("/v1/payout-batches", json={"currency": "usd", "min_amount_cents": 1}, headers=f.auth(admin))
    assert batch.status_code == 202, batch.get_json()
    run_payout_jobs(app)
    detail = client.get(f"/v1/payout-batches/{batch.get_json()['id']}", headers=f.auth(admin)).get_json()
    assert [(i["worker_id"], i["amount_cents"], i["status"]) for i in detail["items"]] == [
        (worker["id"], 100 + 200, "paid")]


def test_conversions_while_the_work_stood_rejected_earn_when_an_appeal_overturns_it(
        app, client, runner, standin, db_session):
    """A rejection overturned on appeal is an approval like any other: the conversions its tracked
    link brought in while it stood rejected earn their bonus then (and once)."""
    admin = f.make_admin(runner)
    key, brief = bonus_brief(client, standin)
    _, token, held = claimed(client, brief)
    submission_id, = submit_claims(db_session, [held["claim_id"]])
    rejected = client.post("/v1/review/decisions", headers=f.auth(admin), json={
        "submission_ids": [submission_id], "decision": "reject", "reason_code": "off_brief", "reason": "No."})
    assert rejected.status_code == 200 and rejected.get_json()["rejected"] == 1

    post_conversions(client, key, [conversion(held["tracked_code"], "while-rejected", 1000)])
    assert performance_bonuses(db_session) == []  # rejected: nothing earned

    appeal = client.post(f"/v1/submissions/{submission_id}/appeal", headers=f.auth(token),
                         json={"message": "It is about the product."})
    assert appeal.status_code == 201, appeal.get_json()
    decided = client.post(f"/v1/appeals/{appeal.get_json()['id']}/decision", headers=f.auth(admin),
                          json={"decision": "overturn", "reason": "It was on brief."})
    assert decided.status_code == 200, decided.get_json()
    assert performance_bonuses(db_session) == [(held["task"]["id"], 200, "performance_bonus")]
    assert earnings(client, token)["bonus_cents"] == 200
