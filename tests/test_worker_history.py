"""What the worker client reads of a worker's own history: payouts (GET /v1/me/payouts) and the
appeal of a submission (GET /v1/submissions/{id}/appeal), each the worker's own only."""

from __future__ import annotations

from tests.factories import auth, make_admin, sign_up_worker
from tests.factories import reviews as fr
from tests.factories.payouts import approved_work, ready_worker, run_payout_jobs


def test_payout_history_lists_each_batch_item_newest_first_and_only_the_workers_own(app, client, runner, standin):
    admin = make_admin(runner)
    worker, token, _ = ready_worker(client, standin)
    other, other_token, _ = ready_worker(client, standin)
    assert client.get("/v1/me/payouts", headers=auth(token)).get_json() == {"data": [], "next_cursor": None}

    approved_work(app, client, standin, [(worker["id"], token), (other["id"], other_token)], 250)
    first = client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin)).get_json()
    run_payout_jobs(app)
    approved_work(app, client, standin, [(worker["id"], token)], 120)
    second = client.post("/v1/payout-batches", json={"currency": "usd"}, headers=auth(admin)).get_json()
    run_payout_jobs(app)

    mine = client.get("/v1/me/payouts", headers=auth(token)).get_json()
    assert [(p["batch_id"], p["amount_cents"], p["status"]) for p in mine["data"]] == [
        (second["id"], 120, "paid"), (first["id"], 250, "paid")]
    assert all(p["stripe_transfer_id"].startswith("tr_") and p["submissions"] == 1 and p["reversed_cents"] == 0
               and p["currency"] == "usd" and p["settled_at"] for p in mine["data"])
    theirs = client.get("/v1/me/payouts", headers=auth(other_token)).get_json()["data"]
    assert [p["amount_cents"] for p in theirs] == [250]

    # Paged with a cursor; bad paging is 422, other roles 403.
    one = client.get("/v1/me/payouts?limit=1", headers=auth(token)).get_json()
    assert [p["batch_id"] for p in one["data"]] == [second["id"]] and one["next_cursor"]
    rest = client.get(f"/v1/me/payouts?limit=1&cursor={one['next_cursor']}", headers=auth(token)).get_json()
    assert [p["batch_id"] for p in rest["data"]] == [first["id"]] and rest["next_cursor"] is None
    assert client.get("/v1/me/payouts?limit=0", headers=auth(token)).status_code == 422
    assert client.get("/v1/me/payouts?cursor=nonsense", headers=auth(token)).status_code == 422
    assert client.get("/v1/me/payouts", headers=auth(admin)).status_code == 403
    assert client.get("/v1/me/payouts").status_code == 401


def test_a_worker_reads_their_appeal_and_its_decision_and_nobody_elses(client, db_session, runner, standin):
    admin = make_admin(runner)
    people = fr.workers(client, 2)
    _, brief = fr.review_brief(client, standin, quantity=5)
    token = people[0][1]
    [sub_id] = fr.submissions(client, db_session, brief, 1, [token])
    assert client.get(f"/v1/submissions/{sub_id}/appeal", headers=auth(token)).status_code == 404  # none yet
    decided = client.post("/v1/review/decisions", headers=auth(admin), json={
        "submission_ids": [sub_id], "decision": "reject", "reason_code": "off_brief", "reason": "Other shoe."})
    assert decided.get_json()["rejected"] == 1
    made = client.post(f"/v1/submissions/{sub_id}/appeal", json={"message": "It is this shoe."}, headers=auth(token))
    assert made.status_code == 201

    shown = client.get(f"/v1/submissions/{sub_id}/appeal", headers=auth(token))
    assert shown.status_code == 200
    assert (shown.get_json()["id"], shown.get_json()["status"]) == (made.get_json()["id"], "open")
    upheld = client.post(f"/v1/appeals/{made.get_json()['id']}/decision", headers=auth(admin),
                         json={"decision": "uphold", "reason": "The logo is a competitor's."})
    assert upheld.status_code == 200
    after = client.get(f"/v1/submissions/{sub_id}/appeal", headers=auth(token)).get_json()
    assert (after["status"], after["decision_reason"]) == ("upheld", "The logo is a competitor's.")

    listed = client.get("/v1/me/appeals", headers=auth(token)).get_json()
    assert [(a["submission_id"], a["status"]) for a in listed["data"]] == [(sub_id, "upheld")]
    assert listed["next_cursor"] is None

    _, stranger = sign_up_worker(client)
    assert client.get("/v1/me/appeals", headers=auth(stranger)).get_json()["data"] == []
    assert client.get("/v1/me/appeals", headers=auth(admin)).status_code == 403
    assert client.get(f"/v1/submissions/{sub_id}/appeal", headers=auth(stranger)).status_code == 404
    assert client.get("/v1/submissions/sub_nope/appeal", headers=auth(token)).status_code == 404
    assert client.get(f"/v1/submissions/{sub_id}/appeal", headers=auth(admin)).status_code == 403
