"""Budget planning: whole units by shares, largest remainder, never over budget."""

from __future__ import annotations

import random

from marketplace.briefs.planning import MixItem, plan
from tests.factories import auth, sign_up_brand

SEED_MIX = [
    {"kind": "caption", "unit_price_cents": 60, "share": 180},
    {"kind": "clip", "unit_price_cents": 100, "share": 100},
    {"kind": "review", "unit_price_cents": 200, "share": 100},
    {"kind": "translation", "unit_price_cents": 200, "share": 100},
]


def test_the_seed_example_comes_out_exactly_from_480_dollars_without_fee(client):
    _, key = sign_up_brand(client)
    response = client.post("/v1/briefs/plan", json={"budget_cents": 48000, "fee_bps": 0, "mix": SEED_MIX},
                           headers=auth(key))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(g["kind"], g["quantity"]) for g in body["task_groups"]] == [
        ("caption", 300), ("clip", 100), ("review", 50), ("translation", 50)]
    assert body["total_cents"] == 48000 and body["unspent_cents"] == 0


def test_500_dollars_at_the_default_fee_plans_the_largest_mix_that_fits(client):
    _, key = sign_up_brand(client)
    body = client.post("/v1/briefs/plan", json={"budget_cents": 50000, "mix": SEED_MIX},
                       headers=auth(key)).get_json()
    assert body["fee_bps"] == 1000
    quantities = [g["quantity"] for g in body["task_groups"]]
    # Ideal units: 284.09 captions, 94.70 clips, 47.35 reviews, 47.35 translations (66¢, 110¢,
    # 220¢, 220¢ a unit with the fee). Floors cost 497.64; the 2.36 left buys a clip (largest
    # remainder) then a caption; 60¢ remain, less than any unit.
    assert quantities == [285, 95, 47, 47]
    assert body["cost_cents"] == 285 * 60 + 95 * 100 + 94 * 200
    assert body["fee_cents"] == 285 * 6 + 95 * 10 + 94 * 20
    assert body["total_cents"] == 49940 and body["unspent_cents"] == 60
    cheapest = min(g["unit_price_cents"] + g["fee_per_task_cents"] for g in body["costs"])
    assert [c["quantity"] for c in body["costs"]] == quantities
    assert body["unspent_cents"] < cheapest


def test_plans_never_exceed_the_budget_and_leave_less_than_any_unit():
    rng = random.Random(7)
    for _ in range(500):
        mix = [MixItem("caption", rng.randint(1, 5000), rng.randint(1, 100)) for _ in range(rng.randint(1, 6))]
        budget = rng.randint(1, 5_000_000)
        fee_bps = rng.choice([0, 250, 1000, 1500])
        groups = plan(budget, mix, fee_bps)
        total = sum(g.quantity * g.unit_cost_cents for g in groups)
        assert total <= budget
        assert all(g.quantity <= 100_000 for g in groups)
        open_groups = [g.unit_cost_cents for g in groups if g.quantity < 100_000]
        assert not open_groups or budget - total < min(open_groups)


def test_plan_rejects_bad_mixes(client):
    _, key = sign_up_brand(client)
    response = client.post("/v1/briefs/plan", json={"budget_cents": 1.5, "mix": [
        {"kind": "poem", "unit_price_cents": -1, "share": 0}]}, headers=auth(key))
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert {"budget_cents", "mix[0].kind", "mix[0].unit_price_cents", "mix[0].share"} <= set(errors)


def test_a_plan_is_a_brief_post_accepts_as_it_is(client, standin):
    """No group over 100,000 tasks (the rest of the budget stays unspent), and a mix item that
    cannot buy one task comes back under left_out rather than as a group of none."""
    from tests.factories import brief_payload

    _, key = sign_up_brand(client)
    capped = client.post("/v1/briefs/plan", json={"budget_cents": 10_000_000, "mix": [
        {"kind": "caption", "unit_price_cents": 10, "share": 1}]}, headers=auth(key)).get_json()
    assert [(g["kind"], g["quantity"]) for g in capped["task_groups"]] == [("caption", 100_000)]
    assert capped["unspent_cents"] == 10_000_000 - 100_000 * 11 and capped["left_out"] == []

    small = client.post("/v1/briefs/plan", json={"budget_cents": 1000, "mix": [
        {"kind": "caption", "unit_price_cents": 60, "share": 1},
        {"kind": "clip", "unit_price_cents": 5000, "share": 1}]}, headers=auth(key)).get_json()
    assert [(g["kind"], g["quantity"]) for g in small["task_groups"]] == [("caption", 15)]
    assert [item["kind"] for item in small["left_out"]] == ["clip"] and "5500 cents" in small["left_out"][0]["reason"]

    for body in (capped, small):
        # Pasted as they come, no field picked out or dropped.
        created = client.post("/v1/briefs", json=brief_payload(budget_cents=body["budget_cents"],
                                                              currency=body["currency"],
                                                              task_groups=body["task_groups"]),
                              headers=auth(key))
        assert created.status_code == 201, created.get_json()
