"""What each event type's payload carries, for the OpenAPI spec (x-webhooks and one schema per type)."""

from __future__ import annotations

from marketplace.events.models import TYPES

PREFIXES = {"brief": "brief", "submission": "sub", "refund": "rfd", "appeal": "apl"}
_ID = "3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"
_STR, _INT = {"type": "string"}, {"type": "integer"}
_NULLABLE_STR = {"type": "string", "nullable": True}

BRIEF = {"type": "object", "properties": {
    "id": _STR, "object": {"type": "string", "enum": ["brief"]}, "title": _STR, "status": _STR,
    "reason": {**_NULLABLE_STR, "description": "Why it moved, when something said (a pause by the stop rule: its reason)."},
    "paused_group_id": {**_NULLABLE_STR, "description": "brief.paused by the stop rule: the group it paused."},
    "budget_cents": _INT, "currency": _STR}}
SUBMISSION = {"type": "object", "properties": {
    "id": _STR, "object": {"type": "string", "enum": ["submission"]}, "brief_id": _STR, "task_id": _STR,
    "worker_id": _STR, "status": _STR, "reason_code": _NULLABLE_STR, "reason": _NULLABLE_STR}}
REFUND = {"type": "object", "properties": {
    "id": _STR, "object": {"type": "string", "enum": ["refund"]}, "brief_id": _STR, "amount_cents": _INT,
    "currency": _STR, "status": _STR}}
APPEAL = {"type": "object", "properties": {"id": _STR, "object": {"type": "string", "enum": ["appeal"]},
                                           "submission_id": _STR, "brief_id": _STR,
                                           "outcome": {"type": "string", "enum": ["upheld", "overturned"]},
                                           "reason": _STR}}

WHEN = {
    "brief.funded": ("Its funding arrived: the brief can be published.", BRIEF),
    "brief.live": ("Published, or resumed: workers can claim its tasks.", BRIEF),
    "brief.paused": ("Paused by you, or one of its groups paused by the CPA stop rule (reason says which).", BRIEF),
    "brief.completed": ("Its end date passed; what it did not spend is refunded.", BRIEF),
    "brief.cancelled": ("Cancelled; what it did not owe is refunded.", BRIEF),
    "submission.needs_review": ("Its checks passed (or warned): it waits for you or for auto-approval.", SUBMISSION),
    "submission.auto_rejected": ("A check failed: rejected automatically, its task reopened.", SUBMISSION),
    "submission.approved": ("Approved (by you, an admin or auto-approval): its worker is paid from escrow.", SUBMISSION),
    "submission.rejected": ("Rejected, with a reason code: its task reopened.", SUBMISSION),
    "submission.revision_requested": ("A revision was asked for: the worker may submit again.", SUBMISSION),
    "appeal.decided": ("An appeal of a rejection was decided (upheld or overturned).", APPEAL),
    "refund.succeeded": ("Stripe refunded money the brief did not spend to your card.", REFUND),
}
assert set(WHEN) == set(TYPES)


def schema_name(type: str) -> str:
    return "Event_" + type.replace(".", "_")


def _example(type: str, obj: dict) -> dict:
    kind = obj["properties"]["object"]["enum"][0]
    values = {"id": f"{PREFIXES[kind]}_{_ID}", "object": kind, "status": type.split(".")[1], "currency": "gbp"}
    example = {key: values.get(key, 100 if spec.get("type") == "integer" else None if spec.get("nullable") else "x")
               for key, spec in obj["properties"].items()}
    return {"id": f"evt_{_ID}", "type": type, "created_at": "2026-12-04T18:00:00Z", "data": {"object": example}}


def document(spec: dict) -> dict:
    """The spec with one schema per event type and an x-webhooks entry for each (OpenAPI 3.0's
    spelling of 3.1's webhooks), the body each delivery POSTs and GET /v1/events lists."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    hooks = {}
    for type, (when, obj) in WHEN.items():
        name = schema_name(type)
        schemas[name] = {"type": "object", "description": f"{type}: {when}", "properties": {
            "id": _STR, "type": {"type": "string", "enum": [type]},
            "created_at": {"type": "string", "format": "date-time"},
            "data": {"type": "object", "properties": {"object": obj}}}, "example": _example(type, obj)}
        hooks[type] = {"post": {
            "summary": type, "description": (
                f"{when} Signed per Standard Webhooks (webhook-id = the event id, webhook-timestamp, "
                "webhook-signature); answer 2xx within the timeout, or it is retried."),
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{name}"}, "example": _example(type, obj)}}},
            "responses": {"200": {"description": "Received (any 2xx)."}}}}
    spec["x-webhooks"] = hooks
    return spec
