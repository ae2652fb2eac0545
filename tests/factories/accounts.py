"""Accounts over the HTTP API: brands with their API key, workers with their token, admins."""

from __future__ import annotations

import uuid


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
