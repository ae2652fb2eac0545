"""Answers that show a secret once (sign-up's API key, a worker's token, a new or rolled API key, a
webhook endpoint's signing secret, new or rotated) are sent Cache-Control: no-store and Pragma:
no-cache, as Stripe and GitHub send theirs, and the spec says so; other answers are not."""

from __future__ import annotations

import pytest

from tests.factories import auth, create_brief, sign_up_brand, unique_email

SECRET_ROUTES = [("post", "/v1/brands"), ("post", "/v1/auth/token"), ("post", "/v1/api-keys"),
                 ("post", "/v1/api-keys/{key_id}/roll"), ("post", "/v1/webhook-endpoints"),
                 ("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"), ("post", "/v1/briefs/{brief_id}/fund")]
HOOK = {"url": "https://hooks.example.com/x", "events": ["*"]}


def no_store(response) -> bool:
    return response.headers.get("Cache-Control") == "no-store" and response.headers.get("Pragma") == "no-cache"


def test_every_answer_that_shows_a_secret_is_not_to_be_stored(client, db_session):
    brand_sign_up = client.post("/v1/brands", json={"name": "Acme", "email": unique_email("brand")})
    assert brand_sign_up.status_code == 201 and no_store(brand_sign_up)
    key = brand_sign_up.get_json()["api_key"]

    email, password = unique_email("worker"), "correct horse battery"
    worker = client.post("/v1/workers", json={"email": email, "password": password, "display_name": "Sam",
                                               "country": "GB"})
    assert worker.status_code == 201 and not no_store(worker)  # no secret in it
    token = client.post("/v1/auth/token", json={"email": email, "password": password})
    assert token.status_code == 200 and token.get_json()["token"] and no_store(token)

    made = client.post("/v1/api-keys", headers=auth(key), json={"name": "CI", "scopes": ["briefs:read"]})
    assert made.status_code == 201 and made.get_json()["secret"] and no_store(made)
    rolled = client.post(f"/v1/api-keys/{made.get_json()['id']}/roll", headers=auth(key),
                         json={"expires_in_hours": 0})
    assert rolled.status_code == 201 and rolled.get_json()["secret"] and no_store(rolled)

    endpoint = client.post("/v1/webhook-endpoints", headers=auth(key), json=HOOK)
    assert endpoint.status_code == 201 and endpoint.get_json()["secret"] and no_store(endpoint)
    rotated = client.post(f"/v1/webhook-endpoints/{endpoint.get_json()['id']}/rotate-secret", headers=auth(key))
    assert rotated.status_code == 200 and rotated.get_json()["secret"] and no_store(rotated)

    # Answers without a secret keep their usual caching headers.
    for response in (client.get("/v1/api-keys", headers=auth(key)), client.get("/v1/webhook-endpoints",
                                                                               headers=auth(key))):
        assert response.status_code == 200 and not no_store(response)


def test_a_briefs_payment_intent_client_secret_is_not_to_be_stored(client, standin):
    """Not shown once (asking again returns the same PaymentIntent), but Stripe says a client_secret
    is not to be logged or kept: no cache keeps it either."""
    _, key = sign_up_brand(client)
    brief = create_brief(client, key)
    funding = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key))
    assert funding.status_code == 201 and funding.get_json()["client_secret"] and no_store(funding)
    again = client.post(f"/v1/briefs/{brief['id']}/fund", headers=auth(key))
    assert again.get_json()["client_secret"] == funding.get_json()["client_secret"] and no_store(again)


def test_an_idempotent_replay_of_a_secret_is_not_to_be_stored_either(client, db_session):
    _, key = sign_up_brand(client)
    headers = {**auth(key), "Idempotency-Key": "hook-1"}
    first = client.post("/v1/webhook-endpoints", headers=headers, json=HOOK)
    replay = client.post("/v1/webhook-endpoints", headers=headers, json=HOOK)
    assert first.status_code == replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()["secret"] == first.get_json()["secret"] and no_store(replay)


def test_failures_of_those_routes_are_not_stored_either(client, db_session):
    """A 401, 404 or 422 carries no secret, but a cache keyed on the URL must not learn the route either."""
    _, key = sign_up_brand(client)
    assert no_store(client.post("/v1/api-keys", json={"name": "CI", "scopes": ["briefs:read"]}))  # 401
    missing = client.post("/v1/webhook-endpoints/whe_nope/rotate-secret", headers=auth(key))
    assert missing.status_code == 404 and no_store(missing)
    bad = client.post("/v1/auth/token", json={"email": "nobody@example.com"})
    assert bad.status_code == 422 and no_store(bad)


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


@pytest.mark.parametrize("method, path", SECRET_ROUTES)
def test_the_spec_documents_the_headers_on_each_answer_with_a_secret(spec, method, path):
    responses = spec["paths"][path][method]["responses"]
    [code] = [code for code in responses if code.startswith("2")]
    headers = responses[code]["headers"]
    assert set(headers) == {"Cache-Control", "Pragma"}
    components = spec["components"]["headers"]
    resolved = {name: components[ref["$ref"].rsplit("/", 1)[-1]] for name, ref in headers.items()}
    assert resolved["Cache-Control"]["schema"]["enum"] == ["no-store"]
    assert resolved["Pragma"]["schema"]["enum"] == ["no-cache"]


def test_the_spec_leaves_the_headers_off_answers_without_a_secret(spec):
    with_headers = {(method, path) for path, item in spec["paths"].items() for method, op in item.items()
                    if isinstance(op, dict) and any("Cache-Control" in (r.get("headers") or {})
                                                    for r in op.get("responses", {}).values()
                                                    if isinstance(r, dict))}
    assert with_headers == set(SECRET_ROUTES)
