"""Workers with a track record: decided submissions made through the review factories and the
decisions endpoint, so a reputation comes from the records it is computed from."""

from __future__ import annotations

from tests import factories as f
from tests.factories import reviews


def decide(client, secret: str, ids: list[str], decision: str) -> dict:
    body = {"submission_ids": ids, "decision": decision}
    if decision != "approve":
        body.update(reason_code="low_quality", reason="Not on brief")
    response = client.post("/v1/review/decisions", json=body, headers=f.auth(secret))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def track_record(client, session, standin, worker_id: str, *, approved: int, rejected: int,
                 api_key: str | None = None) -> str:
    """The worker gets `approved` approved and `rejected` rejected submissions on a new
    brief of the brand (a new one unless `api_key`); returns the brand's key."""
    api_key, brief = reviews.review_brief(client, standin, api_key, quantity=max(approved + rejected, 1))
    ids = reviews.bulk_submissions(session, brief["task_groups"][0]["id"], [worker_id], approved + rejected)
    if approved:
        decide(client, api_key, ids[:approved], "approve")
    if rejected:
        decide(client, api_key, ids[approved:], "reject")
    return api_key


def patch_profile(client, token: str, **body):
    return client.patch("/v1/me/profile", json=body, headers=f.auth(token))
