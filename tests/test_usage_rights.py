"""Usage rights: stated on the brief (validated), shown to workers before they claim, carried by every
content-bank asset with its expiry (JSON and CSV), and the assets whose rights end within 30 days."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import sqlalchemy as sa

from tests.factories import (
    auth,
    brief_payload,
    claim,
    create_brief,
    live_brief,
    sign_up_brand,
    sign_up_worker,
)
from tests.factories.proofs import run_validation_jobs, submit
from tests.factories.tracking import approve, claims

RIGHTS = {"channels": ["organic", "paid_social"], "term_days": 365, "territories": ["GB", "FR"], "exclusive": False}
CAPTION = {"kind": "caption", "quantity": 10, "unit_price_cents": 100, "max_per_worker": 5,
           "proof": {"text": {"min_length": 5, "max_length": 300}}}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_rights_and_disclosure_on_media_are_saved_normalised_and_read_back(client):
    _, key = sign_up_brand(client)
    created = create_brief(client, key, disclosure_on_media=True, usage_rights={
        "channels": ["paid_social", "organic", "paid_social"], "term_days": 90, "territories": ["fr", "GB", "FR"]})
    assert created["disclosure_on_media"] is True
    assert created["usage_rights"] == {"channels": ["paid_social", "organic"], "term_days": 90,
                                       "territories": ["FR", "GB"], "exclusive": False}
    read = client.get(f"/v1/briefs/{created['id']}", headers=auth(key)).get_json()
    assert read == created
    assert client.get("/v1/briefs", headers=auth(key)).get_json()["data"] == [read]

    plain = create_brief(client, key)
    assert plain["disclosure_on_media"] is False and plain["usage_rights"] is None


def test_bad_rights_are_422_with_field_errors_and_save_nothing(client, db_session):
    _, key = sign_up_brand(client)
    bad = {
        "channels": [[], ["tv"], "organic", None, ["organic", 3]],
        "term_days": [0, -1, 3651, 1.5, "365", True, None],
        "territories": [[], ["XX"], ["GBR"], ["UK"], "GB", [None], ["G"]],
        "exclusive": ["no", 0, None],
    }
    before = db_session.execute(sa.text("SELECT count(*) FROM briefs")).scalar_one()
    for field, values in bad.items():
        for value in values:
            response = client.post("/v1/briefs", json=brief_payload(usage_rights={**RIGHTS, field: value}),
                                   headers=auth(key))
            assert response.status_code == 422, (field, value, response.get_json())
            assert response.content_type == "application/problem+json"
            errors = response.get_json()["errors"]
            assert any(name.startswith(f"usage_rights.{field}") for name in errors), (field, value, errors)
    for missing in ("channels", "term_days", "territories"):
        rights = {k: v for k, v in RIGHTS.items() if k != missing}
        response = client.post("/v1/briefs", json=brief_payload(usage_rights=rights), headers=auth(key))
        assert response.status_code == 422 and f"usage_rights.{missing}" in response.get_json()["errors"]
    for whole in ("all rights", ["organic"], {**RIGHTS, "perpetual": True}):
        response = client.post("/v1/briefs", json=brief_payload(usage_rights=whole), headers=auth(key))
        assert response.status_code == 422, whole
    for value in ("yes", 1, None):
        response = client.post("/v1/briefs", json=brief_payload(disclosure_on_media=value), headers=auth(key))
        assert response.status_code == 422 and "disclosure_on_media" in response.get_json()["errors"]
    assert db_session.execute(sa.text("SELECT count(*) FROM briefs")).scalar_one() == before


def test_workers_see_the_rights_in_the_listing_before_claiming_and_on_their_claim(client, standin):
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, usage_rights={**RIGHTS, "exclusive": True}, disclosure_on_media=True,
                       task_groups=[CAPTION])
    _, token = sign_up_worker(client)
    listed = client.get("/v1/tasks", headers=auth(token)).get_json()["data"]
    (group,) = [g for g in listed if g["brief_id"] == brief["id"]]
    assert group["brief"]["usage_rights"] == {**RIGHTS, "exclusive": True}
    assert group["brief"]["disclosure_on_media"] is True
    held = claim(client, token, group["id"])
    assert held["brief"]["usage_rights"] == {**RIGHTS, "exclusive": True}
    mine = client.get("/v1/me/claims", headers=auth(token)).get_json()["data"]
    assert [c["brief"]["usage_rights"] for c in mine] == [{**RIGHTS, "exclusive": True}]


def test_rights_travel_from_brief_to_approved_asset_to_csv(client, standin, app):
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, usage_rights=RIGHTS, task_groups=[CAPTION])
    _, token = sign_up_worker(client)
    held = claim(client, token, brief["task_groups"][0]["id"])
    sent = submit(client, token, held["task"]["id"], text="Lighter shoe, same grip #ad")
    assert sent.status_code == 202, sent.get_json()
    run_validation_jobs(app)
    decided = client.post("/v1/review/decisions", headers=auth(key), json={
        "submission_ids": [sent.get_json()["id"]], "decision": "approve"})
    assert decided.status_code == 200, decided.get_json()

    (asset,) = client.get(f"/v1/briefs/{brief['id']}/assets", headers=auth(key)).get_json()["data"]
    assert asset["usage_rights"] == RIGHTS
    assert parse_time(asset["rights_expire_at"]) == parse_time(asset["approved_at"]) + timedelta(days=365)

    exported = client.get(f"/v1/briefs/{brief['id']}/assets?format=csv", headers=auth(key))
    (row,) = csv.DictReader(io.StringIO(exported.get_data(as_text=True)))
    assert row["usage_channels"] == "organic;paid_social" and row["usage_territories"] == "GB;FR"
    assert row["usage_term_days"] == "365" and row["usage_exclusive"] == "false"
    assert row["rights_expire_at"] == asset["rights_expire_at"]


def test_assets_without_stated_rights_carry_none(client, standin, app):
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, task_groups=[CAPTION])
    _, token = sign_up_worker(client)
    approve(app, claims(client, token, brief["task_groups"][0]["id"], 1))
    (asset,) = client.get(f"/v1/briefs/{brief['id']}/assets", headers=auth(key)).get_json()["data"]
    assert asset["usage_rights"] is None and asset["rights_expire_at"] is None
    (row,) = csv.DictReader(io.StringIO(client.get(f"/v1/briefs/{brief['id']}/assets?format=csv",
                                                   headers=auth(key)).get_data(as_text=True)))
    assert row["usage_channels"] == row["usage_term_days"] == row["rights_expire_at"] == ""
    expiring = client.get(f"/v1/briefs/{brief['id']}/assets?rights=expiring", headers=auth(key))
    assert expiring.status_code == 200 and expiring.get_json()["data"] == []


def test_rights_expiring_lists_only_assets_whose_rights_end_within_30_days(client, standin, app, db_session):
    _, key = sign_up_brand(client)
    brief = live_brief(client, key, standin, usage_rights={**RIGHTS, "term_days": 100}, task_groups=[CAPTION])
    _, token = sign_up_worker(client)
    ids = approve(app, claims(client, token, brief["task_groups"][0]["id"], 5))
    # Rights end 100 days after approval: approved 90, 71 and 60 days ago, and 101 (expired) and 1 day ago.
    ages = dict(zip(ids, (90, 71, 60, 101, 1), strict=True))
    for sub_id, days in ages.items():
        db_session.execute(sa.text("UPDATE submissions SET decided_at = now() - make_interval(days => :d) "
                                   "WHERE id = :id"), {"d": days, "id": sub_id})
    db_session.commit()
    expiring = {ids[0], ids[1]}  # in 10 and 29 days; 40 days, already expired and 99 days are left out

    body = client.get(f"/v1/briefs/{brief['id']}/assets?rights=expiring", headers=auth(key)).get_json()
    assert {a["submission_id"] for a in body["data"]} == expiring
    for asset in body["data"]:
        left = parse_time(asset["rights_expire_at"]) - datetime.now(parse_time(asset["rights_expire_at"]).tzinfo)
        assert timedelta(0) < left <= timedelta(days=30)
    paged = client.get(f"/v1/briefs/{brief['id']}/assets?rights=expiring&limit=1", headers=auth(key)).get_json()
    assert len(paged["data"]) == 1 and paged["next_cursor"]
    exported = client.get(f"/v1/briefs/{brief['id']}/assets?rights=expiring&format=csv", headers=auth(key))
    assert {row["submission_id"] for row in csv.DictReader(io.StringIO(exported.get_data(as_text=True)))} == expiring
    assert len(client.get(f"/v1/briefs/{brief['id']}/assets", headers=auth(key)).get_json()["data"]) == 5
    bad = client.get(f"/v1/briefs/{brief['id']}/assets?rights=soon", headers=auth(key))
    assert bad.status_code == 422 and "rights" in bad.get_json()["errors"]
