"""/docs and /openapi.json document every operation: a summary, its request and response schemas, and
an example of each that its own schema accepts; the examples a newcomer pastes first really work."""

from __future__ import annotations

import copy

import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from marketplace.http import examples
from tests.factories import auth, sign_up_brand

METHODS = ("get", "post", "put", "patch", "delete")
SPEC_URN = "urn:marketplace-spec"


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


def validator(spec: dict, schema: dict) -> OAS30Validator:
    """A validator for `schema`, its $refs read from the spec's components."""
    registry = Registry().with_resource(SPEC_URN, DRAFT4.create_resource(spec))

    def anchored(node):
        if isinstance(node, dict):
            return {k: (SPEC_URN + v if k == "$ref" and v.startswith("#") else anchored(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [anchored(v) for v in node]
        return node

    return OAS30Validator(anchored(schema), registry=registry)


def bodies(spec: dict):
    """(operation, where, media type, media object) for every request body and 2xx answer."""
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            if "requestBody" in op:
                for media_type, media in op["requestBody"]["content"].items():
                    yield f"{method.upper()} {path}", "request", media_type, media
            for code, response in op["responses"].items():
                if code.startswith("2") and isinstance(response, dict):
                    for media_type, media in response.get("content", {}).items():
                        yield f"{method.upper()} {path}", code, media_type, media


def test_every_operation_has_a_summary_and_its_answers_are_described(spec):
    missing = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is not None and not op.get("summary"):
                missing.append(f"{method.upper()} {path}")
            if op is not None:
                assert any(code.startswith(("2", "3")) for code in op["responses"]), (method, path)
    assert not missing, f"operations with no summary: {missing}"


def test_every_json_body_has_a_schema_and_an_example_the_schema_accepts(spec):
    checked = 0
    for operation, where, media_type, media in bodies(spec):
        assert "schema" in media, (operation, where, media_type)
        if "json" not in media_type:
            continue
        assert "example" in media or "examples" in media, (operation, where, "no example")
        errors = [e.message for e in validator(spec, media["schema"]).iter_errors(media["example"])]
        assert not errors, (operation, where, errors[:3])
        checked += 1
    assert checked > 40


def test_the_example_check_can_fail(spec):
    """The same validator refuses an example that breaks its schema, so the test above means something."""
    create = spec["paths"]["/v1/briefs"]["post"]["requestBody"]["content"]["application/json"]
    broken = copy.deepcopy(create["example"])
    broken["budget_cents"] = "five hundred"
    del broken["title"]
    messages = [e.message for e in validator(spec, create["schema"]).iter_errors(broken)]
    assert any("title" in m for m in messages) and any("five hundred" in m for m in messages)


def test_generated_examples_follow_the_schema_they_come_from():
    schemas = {"Brief": {"type": "object", "properties": {
        "id": {"type": "string"}, "worker_id": {"type": "string"}, "status": {"type": "string", "enum": ["draft"]},
        "budget_cents": {"type": "integer", "minimum": 1}, "share": {"type": "integer", "minimum": 5},
        "created_at": {"type": "string", "format": "date-time"}, "note": {"type": "string", "nullable": True},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 3}},
        "parent": {"$ref": "#/components/schemas/Brief"}}}}
    example = examples.example_of({"$ref": "#/components/schemas/Brief"}, schemas)
    assert example["id"].startswith("brief_") and example["worker_id"].startswith("wrk_")
    assert example["status"] == "draft" and example["budget_cents"] >= 1 and example["share"] >= 5
    assert example["created_at"].endswith("Z") and len(example["tags"][0]) >= 3
    assert example["parent"]["id"].startswith("brief_")  # a self-reference stops, it does not recurse forever


def test_the_documented_sign_up_login_and_brief_examples_work_as_sent(client, spec, db_session):
    """What /docs shows for the first calls a newcomer makes is accepted by the API, and the API's
    answers match the response schemas documented beside them."""

    def example(path):
        return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"]

    def matches(path, code, body):
        schema = spec["paths"][path]["post"]["responses"][code]["content"]["application/json"]["schema"]
        errors = [e.message for e in validator(spec, schema).iter_errors(body)]
        assert not errors, (path, errors[:3])

    answer = client.post("/v1/brands", json=example("/v1/brands"))
    assert answer.status_code == 201, answer.get_json()
    matches("/v1/brands", "201", answer.get_json())
    answer = client.post("/v1/workers", json=example("/v1/workers"))
    assert answer.status_code == 201, answer.get_json()
    matches("/v1/workers", "201", answer.get_json())
    answer = client.post("/v1/auth/token", json=example("/v1/auth/token"))
    assert answer.status_code == 200, answer.get_json()
    matches("/v1/auth/token", "200", answer.get_json())

    _, key = sign_up_brand(client)
    answer = client.post("/v1/briefs/plan", json=example("/v1/briefs/plan"), headers=auth(key))
    assert answer.status_code == 200, answer.get_json()
    matches("/v1/briefs/plan", "200", answer.get_json())
    answer = client.post("/v1/briefs", json=example("/v1/briefs"), headers=auth(key))
    assert answer.status_code == 201, answer.get_json()
    matches("/v1/briefs", "201", answer.get_json())
    assert answer.get_json()["task_groups"][1]["kind"] == "clip"


def test_docs_show_each_operations_body_fields_example_and_answers(client):
    page = client.get("/docs").get_data(as_text=True)
    create = page.split('id="post-/v1/briefs"', 1)[1].split('<div class="op"', 1)[0]
    assert "Request body" in create and "<code>task_groups</code>" in create and "required" in create
    assert "Spring blend launch" in create  # the request example
    assert "<strong>201</strong>" in create and "brief_" in create  # the answer and its example
    assert "Problem documents" in create and "422" in create
    publish = page.split('id="post-/v1/briefs/{brief_id}/publish"', 1)[1].split('<div class="op"', 1)[0]
    assert "None: send an empty body." in publish
    screenshot = page.split('id="get-/v1/submissions/{submission_id}/screenshot"', 1)[1].split('<div class="op"', 1)[0]
    assert "image/png" in screenshot and "size" in screenshot


def test_every_event_type_has_its_payload_documented(client):
    from marketplace.events.models import TYPES

    spec = client.get("/openapi.json").get_json()
    assert set(spec["x-webhooks"]) == set(TYPES)
    for type in TYPES:
        body = spec["x-webhooks"][type]["post"]["requestBody"]["content"]["application/json"]
        name = body["schema"]["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
        assert schema["properties"]["type"]["enum"] == [type] and schema["description"].startswith(type)
        assert set(schema["properties"]["data"]["properties"]["object"]["properties"]) >= {"id", "object"}
        assert body["example"]["type"] == type and body["example"]["data"]["object"]["id"]
