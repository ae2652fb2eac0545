"""A worker's profile (PATCH /v1/me/profile) and reputation, computed from our records, on
GET /v1/me and a brief's report."""

from __future__ import annotations

from tests import factories as f
from tests.factories import reviews
from tests.factories.workforce import decide, patch_profile, track_record


def me(client, token: str) -> dict:
    response = client.get("/v1/me", headers=f.auth(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["worker"]


def test_a_worker_sets_country_languages_and_one_handle_per_platform(client):
    _, token = f.sign_up_worker(client)
    response = patch_profile(client, token, display_name="Ada L", country="fr", languages=["EN", "fr", "en"],
                             social_accounts=[{"platform": "tiktok", "handle": "@Ada.Makes"},
                                              {"platform": "x", "handle": "ada_makes"}])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["display_name"], body["country"], body["languages"]) == ("Ada L", "FR", ["en", "fr"])
    assert body["social_accounts"] == [{"platform": "tiktok", "handle": "@Ada.Makes"},
                                       {"platform": "x", "handle": "ada_makes"}]
    assert me(client, token)["languages"] == ["en", "fr"]
    # A field left out stays; a list sent replaces the list held.
    patch_profile(client, token, social_accounts=[{"platform": "youtube", "handle": "@ada"}])
    shown = me(client, token)
    assert shown["social_accounts"] == [{"platform": "youtube", "handle": "@ada"}]
    assert (shown["country"], shown["languages"], shown["status"]) == ("FR", ["en", "fr"], "active")


def test_unknown_codes_platforms_and_doubled_platforms_are_422(client):
    _, token = f.sign_up_worker(client)
    for body, field in [({"country": "XX"}, "country"), ({"country": "GBR"}, "country"),
                        ({"languages": ["en", "zz"]}, "languages"), ({"languages": "en"}, "languages"),
                        ({"social_accounts": [{"platform": "myspace", "handle": "@a"}]}, "social_accounts"),
                        ({"social_accounts": [{"platform": "x", "handle": "@a"},
                                              {"platform": "x", "handle": "@b"}]}, "social_accounts"),
                        ({"social_accounts": [{"platform": "x", "handle": "no spaces please"}]}, "social_accounts")]:
        response = patch_profile(client, token, **body)
        assert response.status_code == 422, (body, response.get_json())
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert any(key.startswith(field) for key in response.get_json()["errors"]), response.get_json()
    assert patch_profile(client, token).status_code == 422
    assert me(client, token)["country"] == "GB"


def test_only_a_worker_has_a_profile(client):
    _, api_key = f.sign_up_brand(client)
    assert patch_profile(client, api_key, country="GB").status_code == 403
    assert client.patch("/v1/me/profile", json={"country": "GB"}).status_code == 401


def test_registered_handle_is_what_the_worker_registered(app, client):
    from marketplace.workforce.profile import handle_key, registered_handle

    worker, token = f.sign_up_worker(client)
    patch_profile(client, token, social_accounts=[{"platform": "instagram", "handle": "@Ada_Makes"}])
    with app.app_context():
        assert registered_handle(worker["id"], "instagram") == "@Ada_Makes"
        assert registered_handle(worker["id"], "tiktok") is None
    assert handle_key("@Ada_Makes") == handle_key("ada_makes") == "ada_makes"


def test_reputation_counts_decisions_and_the_rate_needs_five(client, db_session, standin):
    worker, token = f.sign_up_worker(client)
    fresh = me(client, token)["reputation"]
    assert fresh == {"approved": 0, "rejected": 0, "auto_rejected": 0, "approval_rate": None,
                     "on_time_rate": None, "appeals_won": 0, "since": worker["created_at"]}
    api_key = track_record(client, db_session, standin, worker["id"], approved=3, rejected=1)
    four = me(client, token)["reputation"]
    assert (four["approved"], four["rejected"], four["approval_rate"], four["on_time_rate"]) == (3, 1, None, 1.0)
    track_record(client, db_session, standin, worker["id"], approved=0, rejected=1, api_key=api_key)
    five = me(client, token)["reputation"]
    assert (five["approved"], five["rejected"], five["approval_rate"]) == (3, 2, 0.6)


def test_the_rate_is_over_the_last_hundred_decided(client, db_session, standin):
    worker, token = f.sign_up_worker(client)
    api_key, brief = reviews.review_brief(client, standin, quantity=110)
    ids = reviews.bulk_submissions(db_session, brief["task_groups"][0]["id"], [worker["id"]], 110)
    decide(client, api_key, ids[:10], "reject")  # the oldest ten fall out of the window
    decide(client, api_key, ids[10:], "approve")
    shown = me(client, token)["reputation"]
    assert (shown["approved"], shown["rejected"], shown["approval_rate"]) == (100, 10, 1.0)


def test_a_briefs_report_shows_each_workers_reputation(client, db_session, standin):
    worker, token = f.sign_up_worker(client)
    api_key = track_record(client, db_session, standin, worker["id"], approved=2, rejected=0)
    brief_id = client.get("/v1/briefs", headers=f.auth(api_key)).get_json()["data"][0]["id"]
    report = client.get(f"/v1/briefs/{brief_id}/report", headers=f.auth(api_key)).get_json()
    rows = {row["worker_id"]: row for row in report["workers"]}
    assert rows[worker["id"]]["reputation"]["approved"] == 2
