"""Claims on tasks over the HTTP API."""

from __future__ import annotations

from tests.factories.accounts import auth


def claim(client, token: str, group_id: str) -> dict:
    response = client.post(f"/v1/task-groups/{group_id}/claim", headers=auth(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()
