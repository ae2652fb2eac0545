"""HTTP plumbing: problem documents, input parsing, idempotency, pagination, request guards, rate limits, OpenAPI."""
