"""Request and response shapes of webhook endpoints and deliveries."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.events.models import TYPES
from marketplace.http.fields import UTCDateTime

ENDPOINT_EXAMPLE = {"url": "https://hooks.example.com/marketplace", "events": ["submission.approved", "brief.paused"]}


class EndpointIn(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2048), metadata={
        "description": "https:// on a public address (vetted again at every delivery); redirects are not followed."})
    events = fields.List(fields.String(validate=validate.Length(max=60)), required=True,
                         validate=validate.Length(min=1, max=len(TYPES)), metadata={
        "description": f"[\"*\"] for every type, or some of: {', '.join(TYPES)}. An unknown type is 422."})


class EndpointOut(Schema):
    id = fields.String(metadata={"example": "whe_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"})
    url = fields.String()
    events = fields.List(fields.String())
    created_at = UTCDateTime()
    disabled_at = UTCDateTime(allow_none=True, metadata={
        "description": "Set when its deliveries failed for the whole retry schedule (about 3 days): nothing more "
                       "is sent to it until POST /v1/webhook-endpoints/{id}/enable. Its events stay listed at "
                       "GET /v1/events."})
    previous_secret_expires_at = UTCDateTime(allow_none=True, metadata={
        "description": "After a rotation: until then the old secret signs alongside the new one."})


class EndpointWithSecret(EndpointOut):
    secret = fields.String(metadata={"description": "Standard Webhooks secret (whsec_…), shown this once.",
                                     "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})


class EndpointPage(Schema):
    data = fields.List(fields.Nested(EndpointOut))
    next_cursor = fields.String(allow_none=True)


class Attempt(Schema):
    at = fields.String(metadata={"description": "RFC 3339"})
    status_code = fields.Integer(allow_none=True, metadata={"description": "None when no answer came."})
    duration_ms = fields.Integer()
    error = fields.String(allow_none=True)


class DeliveryOut(Schema):
    id = fields.String(metadata={"example": "whd_3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"})
    event_id = fields.String()
    endpoint_id = fields.String()
    status = fields.String(metadata={"description": "pending | succeeded | failed (the retry schedule ran out)"})
    attempt_count = fields.Integer(metadata={
        "description": "Attempts in its current retry schedule: since it was made, or since its endpoint was "
                       "last enabled again (attempts lists every one)."})
    next_attempt_at = UTCDateTime(allow_none=True)
    attempts = fields.List(fields.Nested(Attempt))
    created_at = UTCDateTime()


class DeliveryPage(Schema):
    data = fields.List(fields.Nested(DeliveryOut))
    next_cursor = fields.String(allow_none=True)


class RedeliverOut(Schema):
    event_id = fields.String()
    deliveries = fields.Integer(metadata={"description": "How many endpoints it will be sent to again."})
