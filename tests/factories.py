"""Test data as plain functions that go through the HTTP API, as clients do."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa


def auth(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def sign_up_brand(client, name: str = "Acme Shoes") -> tuple[dict, str]:
    response = client.post("/v1/brands", json={"name": name, "email": unique_email("brand")})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["brand"], body["api_key"]


def workers(client, n: int) -> list[tuple[dict, str]]:
    """n new workers, each (worker, token)."""
    return [sign_up_worker(client) for _ in range(n)]


def sign_up_worker(client, password: str = "correct horse battery") -> tuple[dict, str]:
    email = unique_email("worker")
    response = client.post("/v1/workers", json={
        "email": email, "password": password, "display_name": "Sam", "country": "GB"})
    assert response.status_code == 201, response.get_json()
    token = client.post("/v1/auth/token", json={"email": email, "password": password})
    assert token.status_code == 200, token.get_json()
    return response.get_json(), token.get_json()["token"]


def make_admin(runner, email: str | None = None) -> str:
    result = runner.invoke(args=["create-admin", email or unique_email("admin")])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


BRIEF = {
    "title": "Spring launch captions",
    "objective": "conversions",
    "audience": "runners 25-40 in the UK",
    "key_message": "lighter shoe, same grip",
    "hook": "Stop wasting money on heavy trainers",
    "offer": "20% off, first 100 buyers",
    "prohibitions": ["no competitor names"],
    "reference_url": "https://example.com/ref.mp4",
    "landing_url": "https://shop.example.com/spring",
    "budget_cents": 50000,
    "currency": "usd",
    "target_cpa_cents": 600,
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2099-12-08T00:00:00Z",
    "auto_approve_after_hours": 72,
    "disclosure_required": True,
    "task_groups": [
        {"kind": "caption", "quantity": 300, "unit_price_cents": 60, "instructions": "Write a caption",
         "max_per_worker": 5, "proof": {"text": {"min_length": 20, "max_length": 300}}},
        {"kind": "clip", "quantity": 100, "unit_price_cents": 100,
         "proof": {"screenshot": "required",
                   "link": {"required": True, "allowed_domains": ["tiktok.com", "instagram.com"]}}},
    ],
}


def brief_payload(**overrides) -> dict:
    payload = copy.deepcopy(BRIEF)
    payload.update(overrides)
    return payload


def create_brief(client, api_key: str, **overrides) -> dict:
    response = client.post("/v1/briefs", json=brief_payload(**overrides), headers=auth(api_key))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def fund_brief(client, api_key: str, brief_id: str, standin) -> dict:
    """Fund through the stand-in: a PaymentIntent, its success, and the signed webhook."""
    response = client.post(f"/v1/briefs/{brief_id}/fund", headers=auth(api_key))
    assert response.status_code == 201, response.get_json()
    standin.succeed_payment_intent(response.get_json()["payment_intent_id"])
    return wait_for(lambda: brief_status(client, api_key, brief_id) == "funded" and response.get_json())


def brief_status(client, api_key: str, brief_id: str) -> str:
    return client.get(f"/v1/briefs/{brief_id}", headers=auth(api_key)).get_json()["status"]


def live_brief(client, api_key: str, standin, **overrides) -> dict:
    brief = create_brief(client, api_key, **overrides)
    fund_brief(client, api_key, brief["id"], standin)
    response = client.post(f"/v1/briefs/{brief['id']}/publish", headers=auth(api_key))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll until predicate() is truthy (webhooks and jobs arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hours_from_now(hours: float) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(hours=hours))


def claim(client, token: str, group_id: str) -> dict:
    response = client.post(f"/v1/task-groups/{group_id}/claim", headers=auth(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@contextmanager
def database_refuses(app, table: str, event: str, when: str = "true") -> Iterator[None]:
    """Inside the block, PostgreSQL itself raises on `event` (INSERT, UPDATE) of `table` rows
    matching `when` (over NEW): a real database failure midway, not a mock of one."""
    from marketplace.extensions import db

    name = f"refuse_{table}_{event.lower()}"
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text(f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
            CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {name}();"""))
    try:
        yield
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.text(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}()"))


@contextmanager
def row_locked(app, table: str, row_id: str) -> Iterator[None]:
    """Another transaction holds `table`'s row `row_id` FOR UPDATE for the duration of the block."""
    from marketplace.extensions import db

    with app.app_context(), db.engine.connect() as other:
        other.execute(sa.text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
        try:
            yield
        finally:
            other.rollback()
