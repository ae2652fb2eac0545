"""Briefs over the HTTP API: a payload to start from, created, funded through the stand-in, published."""

from __future__ import annotations

import copy

from tests.factories.accounts import auth
from tests.factories.clock import wait_for

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
