"""A brand's blocks (POST/GET/DELETE /v1/blocked-workers): a blocked worker no longer sees or
claims the brand's tasks, other brands' tasks are untouched, and each change is audited."""

from __future__ import annotations

import sqlalchemy as sa

from tests import factories as f


def group(name: str) -> dict:
    return {"kind": "caption", "name": name, "quantity": 5, "unit_price_cents": 60, "instructions": "Write a caption",
            "proof": {"text": {"min_length": 20, "max_length": 300}}}


def block(client, key: str, worker_id: str, reason: str = "Off-brief twice"):
    return client.post("/v1/blocked-workers", json={"worker_id": worker_id, "reason": reason}, headers=f.auth(key))


def visible(client, token: str) -> set[str]:
    response = client.get("/v1/tasks", headers=f.auth(token))
    assert response.status_code == 200, response.get_json()
    return {g["name"] for g in response.get_json()["data"]}


def audit_actions(db_session, worker_id: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in db_session.execute(sa.text(
        "SELECT action, actor FROM audit_events WHERE subject = :w ORDER BY created_at, id"), {"w": worker_id})]


def test_a_blocked_worker_neither_sees_nor_claims_the_brands_tasks_until_unblocked(client, standin, db_session):
    brand, key = f.sign_up_brand(client)
    _, other_key = f.sign_up_brand(client, "Other Co")
    worker, token = f.sign_up_worker(client)
    mine = f.live_brief(client, key, standin, task_groups=[group("mine")])
    f.live_brief(client, other_key, standin, task_groups=[group("theirs")])
    assert visible(client, token) == {"mine", "theirs"}

    response = block(client, key, worker["id"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["worker_id"], body["reason"]) == (worker["id"], "Off-brief twice")
    assert visible(client, token) == {"theirs"}
    refused = client.post(f"/v1/task-groups/{mine['task_groups'][0]['id']}/claim", headers=f.auth(token))
    assert refused.status_code == 403 and refused.content_type == "application/problem+json"
    assert list(refused.get_json()["errors"]) == ["blocked"]
    listed = client.get("/v1/blocked-workers", headers=f.auth(key)).get_json()
    assert [b["worker_id"] for b in listed["data"]] == [worker["id"]] and listed["next_cursor"] is None
    assert client.get("/v1/blocked-workers", headers=f.auth(other_key)).get_json()["data"] == []

    # Twice: 409, and the block held keeps its reason.
    again = block(client, key, worker["id"], "Something else")
    assert again.status_code == 409 and again.content_type == "application/problem+json"
    assert client.get("/v1/blocked-workers", headers=f.auth(key)).get_json()["data"][0]["reason"] == "Off-brief twice"

    response = client.delete(f"/v1/blocked-workers/{worker['id']}", headers=f.auth(key))
    assert response.status_code == 204 and response.get_data() == b""
    assert visible(client, token) == {"mine", "theirs"}
    assert client.post(f"/v1/task-groups/{mine['task_groups'][0]['id']}/claim", headers=f.auth(token)).status_code == 201
    assert client.delete(f"/v1/blocked-workers/{worker['id']}", headers=f.auth(key)).status_code == 404
    assert audit_actions(db_session, worker["id"]) == [("worker.blocked", f"brand:{brand['id']}"),
                                                       ("worker.unblocked", f"brand:{brand['id']}")]


def test_bad_blocks_are_problems_that_change_nothing(client, db_session):
    _, key = f.sign_up_brand(client)
    worker, token = f.sign_up_worker(client)
    unknown = block(client, key, "wrk_nobody")
    assert unknown.status_code == 404 and unknown.content_type == "application/problem+json"
    for body in [{"worker_id": worker["id"]}, {"reason": "x"}, {"worker_id": worker["id"], "reason": ""},
                 {"worker_id": 5, "reason": "x"}]:
        response = client.post("/v1/blocked-workers", json=body, headers=f.auth(key))
        assert response.status_code == 422, (body, response.get_json())
    # Only brands block.
    assert block(client, token, worker["id"]).status_code == 403
    assert client.get("/v1/blocked-workers", headers=f.auth(token)).status_code == 403
    assert client.delete(f"/v1/blocked-workers/{worker['id']}", headers=f.auth(token)).status_code == 403
    assert db_session.execute(sa.text("SELECT count(*) FROM brand_blocks")).scalar() == 0
    assert audit_actions(db_session, worker["id"]) == []
