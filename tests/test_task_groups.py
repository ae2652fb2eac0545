"""Scaling the winners: a running brief takes a new task group, paid for by its unspent escrow
(never overdrawn, even when two adds race), or 422 saying how much is missing."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tests.factories import auth, create_brief, row_locked, sign_up_brand, sign_up_worker, wait_for
from tests.factories.bonuses import bonus_brief
from tests.factories.tasks import claim

# 100 cents + a 10-cent fee per task: the bonus brief's paused group frees 2,200 cents, 20 of these.
GROUP = {"kind": "caption", "name": "Winners", "quantity": 10, "unit_price_cents": 100, "max_per_worker": 1,
         "instructions": "Write the caption that won, again", "proof": {"text": {"min_length": 5}}}


def add(client, key: str, brief_id: str, **overrides):
    return client.post(f"/v1/briefs/{brief_id}/task-groups", json={**GROUP, **overrides}, headers=auth(key))


def unspent(client, key: str, brief_id: str) -> int:
    return client.get(f"/v1/briefs/{brief_id}/unspent", headers=auth(key)).get_json()["unspent_cents"]


def task_rows(db_session, group_id: str) -> list:
    db_session.rollback()
    return db_session.execute(sa.text("SELECT status, count(*) FROM tasks WHERE group_id = :g GROUP BY status"),
                              {"g": group_id}).all()


def test_a_brand_adds_a_group_to_its_live_brief_from_unspent_escrow(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    moved_before = client.get(f"/v1/briefs/{brief_id}", headers=auth(key)).get_json()["money"]

    response = add(client, key, brief_id)
    assert response.status_code == 201, response.get_json()
    brief = response.get_json()
    assert len(brief["task_groups"]) == 3
    added = brief["task_groups"][-1]
    assert added["id"].startswith("grp_")
    assert (added["kind"], added["name"], added["quantity"], added["unit_price_cents"], added["fee_per_task_cents"]) \
        == ("caption", "Winners", 10, 100, 10)
    assert added["counts"]["open"] == 10
    assert task_rows(db_session, added["id"]) == [("open", 10)]

    # The escrow promises the new tasks now: 1,100 of the 2,200 spare is left. No money moved.
    assert unspent(client, key, brief_id) == 1100
    money = brief["money"]
    assert (money["funded_cents"], money["remaining_cents"], money["spent_cents"]) == (
        moved_before["funded_cents"], moved_before["remaining_cents"], moved_before["spent_cents"])

    # Its tasks are claimable as any group's.
    other, other_token = sign_up_worker(client)
    assert claim(client, other_token, added["id"])["task"]["id"]

    # Audited, with who added it and what it commits.
    db_session.rollback()
    actor, detail = db_session.execute(sa.text(
        "SELECT actor, detail FROM audit_events WHERE action = 'task_group.added' AND subject = :g"),
        {"g": added["id"]}).one()
    assert actor.startswith("brand:") and detail["brief_id"] == brief_id and detail["committed_cents"] == 1100


def test_a_group_the_unspent_escrow_cannot_cover_is_422_saying_how_much_is_missing(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])

    response = add(client, key, brief_id, quantity=21)  # 21 × 110 = 2,310 of 2,200
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert response.content_type == "application/problem+json"
    assert "2310" in problem["detail"] and "2200" in problem["detail"] and "110 cents short" in problem["detail"]
    assert "quantity" in problem["errors"]
    # Nothing changed: no group, no tasks, the same escrow to spare.
    assert len(client.get(f"/v1/briefs/{brief_id}", headers=auth(key)).get_json()["task_groups"]) == 2
    assert unspent(client, key, brief_id) == 2200

    assert add(client, key, brief_id, quantity=20).status_code == 201  # exactly what is spare
    assert unspent(client, key, brief_id) == 0
    assert add(client, key, brief_id, quantity=1).status_code == 422


def test_escrow_promised_to_open_tasks_funds_no_new_group(app, client, standin):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)], spare=False)
    response = add(client, key, brief_id, quantity=1)
    assert response.status_code == 422
    assert "unspent escrow is 0 cents, 110 cents short" in response.get_json()["detail"]


def test_a_paused_brief_takes_a_group_but_other_states_are_409(app, client, standin):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    assert client.post(f"/v1/briefs/{brief_id}/pause", headers=auth(key)).status_code == 200
    assert add(client, key, brief_id, quantity=2).status_code == 201

    draft = create_brief(client, key)
    response = add(client, key, draft["id"])
    assert response.status_code == 409 and "draft" in response.get_json()["detail"]
    assert client.post(f"/v1/briefs/{brief_id}/cancel", headers=auth(key)).status_code == 200
    assert add(client, key, brief_id, quantity=1).status_code == 409


def test_another_brands_brief_is_404_and_bad_bodies_are_422(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    _, other_key = sign_up_brand(client)
    assert add(client, other_key, brief_id).status_code == 404
    assert add(client, other_key, "brief_nope").status_code == 404
    assert add(client, token, brief_id).status_code == 403  # workers add no groups
    assert client.post(f"/v1/briefs/{brief_id}/task-groups", json=GROUP).status_code == 401
    for body, field in [
        ({**GROUP, "quantity": 0}, "quantity"),
        ({**GROUP, "quantity": "3"}, "quantity"),
        ({**GROUP, "unit_price_cents": 1.5}, "unit_price_cents"),
        ({**GROUP, "kind": "dance"}, "kind"),
        ({k: v for k, v in GROUP.items() if k != "kind"}, "kind"),
        ({**GROUP, "proof": {"link": {"allowed_domains": ["not a domain"]}}}, "proof.link.allowed_domains"),
    ]:
        response = client.post(f"/v1/briefs/{brief_id}/task-groups", json=body, headers=auth(key))
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["errors"], response.get_json()
    assert unspent(client, key, brief_id) == 2200


def test_two_adds_that_each_fit_but_not_both_leave_one_group(app, client, standin, db_session):
    """Both requests arrive while the brief is locked, so both wait and then go one after the other:
    the second must see the first's tasks as promised, and be refused."""
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    results: list[int] = []

    def post():
        with app.test_client() as c:
            results.append(add(c, key, brief_id, quantity=15).status_code)  # 1,650 each, of 2,200

    threads = [threading.Thread(target=post) for _ in range(2)]
    with row_locked(app, "briefs", brief_id):
        for t in threads:
            t.start()

        def both_waiting():
            db_session.rollback()
            return db_session.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%FROM briefs%'"
            )).scalar_one() == 2
        wait_for(both_waiting)
    for t in threads:
        t.join()

    assert sorted(results) == [201, 422], results
    groups = client.get(f"/v1/briefs/{brief_id}", headers=auth(key)).get_json()["task_groups"]
    assert [g["quantity"] for g in groups[2:]] == [15]
    assert unspent(client, key, brief_id) == 2200 - 1650


def test_an_invite_only_group_for_the_winners_takes_only_the_workers_it_names(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])
    outsider, outsider_token = sign_up_worker(client)

    response = add(client, key, brief_id, eligibility={"workers": [worker["id"]]})
    assert response.status_code == 201, response.get_json()
    added = response.get_json()["task_groups"][-1]
    assert added["eligibility"]["workers"] == [worker["id"]]
    assert client.get(f"/v1/briefs/{brief_id}", headers=auth(key)).get_json()["task_groups"][-1]["eligibility"] \
        == added["eligibility"]

    refused = client.post(f"/v1/task-groups/{added['id']}/claim", headers=auth(outsider_token))
    assert refused.status_code == 403, refused.get_json()
    assert "invite_only" in refused.get_json()["errors"]
    assert claim(client, token, added["id"])["task"]["id"]


def test_an_added_group_naming_an_unknown_worker_is_422_and_adds_nothing(app, client, standin, db_session):
    worker, token = sign_up_worker(client)
    key, brief_id = bonus_brief(app, client, standin, [(worker["id"], token)])

    response = add(client, key, brief_id, eligibility={"workers": ["wrk_nobody"]})
    assert response.status_code == 422, response.get_json()
    assert len(client.get(f"/v1/briefs/{brief_id}", headers=auth(key)).get_json()["task_groups"]) == 2
