"""Examples and summaries for the OpenAPI spec: every JSON body an operation takes or answers gets an
example, and every operation a summary.

A field's own `metadata={"example": …}` wins; otherwise the example is built from the field's JSON
schema (its enum, format, bounds, and for ids the prefix its name implies), so an operation added
tomorrow is documented with an example that its own schema accepts, with no list to keep up to
date. tests/test_openapi_docs.py checks each example against its schema.
"""

from __future__ import annotations

import copy
import re
from typing import Any

# What an id's field name says about its prefix (marketplace.db.ids): brief_id → brief_…
ID_PREFIXES = {
    "brand": "brand", "worker": "wrk", "admin": "adm", "key": "key", "brief": "brief", "group": "grp",
    "task_group": "grp", "task": "task", "claim": "clm", "submission": "sub", "batch": "pb",
    "payout_batch": "pb", "item": "pbi", "payout_item": "pbi", "event": "evt", "file": "file",
    "click": "clk", "conversion": "conv", "payment": "pay", "refund": "rfd", "case": "case",
    "appeal": "apl", "bonus": "bon", "endpoint": "we", "webhook_endpoint": "we", "delivery": "whd",
}
# The component a bare `id` belongs to, by its schema's name: Brief → brief_…
SCHEMA_PREFIXES = [
    ("payoutitem", "pbi"), ("payoutbatch", "pb"), ("batch", "pb"), ("taskgroup", "grp"), ("group", "grp"),
    ("brief", "brief"), ("submission", "sub"), ("claim", "clm"), ("task", "task"), ("brand", "brand"),
    ("worker", "wrk"), ("case", "case"), ("audit", "aud"), ("event", "evt"), ("conversion", "conv"),
    ("appeal", "apl"), ("bonus", "bon"), ("apikey", "key"), ("key", "key"), ("endpoint", "we"),
    ("delivery", "whd"), ("notification", "ntf"),
]
HEX = "3f9c2a7be1d04c5e8a6b90f1d2c3e4a5"
STRINGS_BY_NAME = {
    "email": "ada@example.com", "password": "correct horse battery staple", "name": "Spring launch",
    "title": "Spring launch", "display_name": "Ada", "currency": "usd", "country": "GB", "url": "https://example.com/",
    "reason": "Matches the brief.", "message": "The disclosure is in the second frame; please look again.",
    "caption": "Loving the new spring range #ad", "handle": "@ada", "secret": "sk_live_…",
    "code": "k7Qm2xPz", "cursor": "eyJpZCI6ICJ0YXNrXzNmOWMifQ", "status": "open",
}
FORMATS = {
    "date-time": "2026-12-01T09:30:00Z", "date": "2026-12-01", "email": "ada@example.com",
    "uri": "https://example.com/", "url": "https://example.com/", "uuid": "3f9c2a7b-e1d0-4c5e-8a6b-90f1d2c3e4a5",
    "binary": None,
}
MAX_DEPTH = 6


def document(spec: dict) -> dict:
    """The spec with an example on every JSON request body and JSON response that lacks one, and a
    summary on every operation that has only a description."""
    spec = copy.deepcopy(spec)
    schemas = spec.get("components", {}).get("schemas", {})
    responses = spec.get("components", {}).get("responses", {})
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or not isinstance(operation, dict):
                continue
            if not operation.get("summary") and operation.get("description"):
                operation["summary"] = first_sentence(operation["description"])
            body = operation.get("requestBody")
            if isinstance(body, dict):
                _exemplify(body.get("content", {}), schemas)
            for code, response in operation.get("responses", {}).items():
                if isinstance(response, dict) and code.startswith("2"):
                    _exemplify(response.get("content", {}), schemas)
    for response in responses.values():
        _exemplify(response.get("content", {}), schemas)
    return spec


def first_sentence(text: str) -> str:
    """An operation's summary when its view gave only a description: the description's first sentence."""
    match = re.match(r"(.+?[.:;])(\s|$)", text.strip(), re.S)
    sentence = (match.group(1) if match else text.strip()).rstrip(".:;")
    return " ".join(sentence.split())


def _exemplify(content: dict, schemas: dict) -> None:
    for media_type, media in content.items():
        if "json" not in media_type or "schema" not in media or "example" in media or "examples" in media:
            continue
        media["example"] = example_of(media["schema"], schemas)


def ref_name(node: dict | str) -> str | None:
    """The component a `$ref` (or flask-smorest's bare response name) points at, else None."""
    if isinstance(node, str):
        return node.rsplit("/", 1)[-1]
    return node["$ref"].rsplit("/", 1)[-1] if "$ref" in node else None


def resolve(node: dict | str, components: dict, hops: int = 10) -> dict:
    """`node` with its `$ref`s followed into `components` (schemas, responses or parameters)."""
    while (name := ref_name(node)) is not None and hops > 0:
        node, hops = components.get(name, {}), hops - 1
    return node if isinstance(node, dict) else {}


def example_of(schema: dict, schemas: dict, name: str = "", owner: str = "", depth: int = 0) -> Any:
    """An instance of `schema` (a JSON schema with `$ref`s into `schemas`)."""
    if (ref := ref_name(schema)) is not None:
        target = schemas.get(ref, {})
        if depth >= MAX_DEPTH:
            return None if target.get("nullable") else {}
        return example_of(target, schemas, name, ref, depth + 1)
    if "example" in schema:
        return schema["example"]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if schema.get("enum"):
        return next((v for v in schema["enum"] if v is not None), schema["enum"][0])
    for key in ("allOf", "oneOf", "anyOf"):
        if schema.get(key):
            if key == "allOf":
                merged: dict = {}
                for part in schema[key]:
                    value = example_of(part, schemas, name, owner, depth + 1)
                    if isinstance(value, dict):
                        merged.update(value)
                return merged
            return example_of(schema[key][0], schemas, name, owner, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1 spelling of nullable
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return _object(schema, schemas, owner, depth)
    if kind == "array":
        items = schema.get("items", {})
        count = max(1, schema.get("minItems", 1))
        return [example_of(items, schemas, _singular(name), owner, depth + 1) for _ in range(count)]
    if kind == "integer":
        return _number(schema, name, integer=True)
    if kind == "number":
        return _number(schema, name, integer=False)
    if kind == "boolean":
        return False
    if kind == "string":
        return _string(schema, name, owner)
    return None


def _object(schema: dict, schemas: dict, owner: str, depth: int) -> dict:
    properties = schema.get("properties")
    if not properties:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return {"key": example_of(extra, schemas, "", owner, depth + 1)}
        return {}
    return {prop: example_of(sub, schemas, prop, owner, depth + 1) for prop, sub in properties.items()}


def _number(schema: dict, name: str, *, integer: bool) -> int | float:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if name.endswith("_cents") or name in ("amount", "budget", "reward"):
        value: float = 2500
    elif name.endswith("_rate") or name.startswith("rate"):
        value = 0.9
    elif "count" in name or name in ("quantity", "total", "limit", "size"):
        value = 10
    elif name.endswith("_ms") or name.endswith("_seconds"):
        value = 120
    else:
        value = 1
    if low is not None and value < low:
        value = low + (1 if schema.get("exclusiveMinimum") is True else 0)
    if high is not None and value > high:
        value = high - (1 if schema.get("exclusiveMaximum") is True else 0)
    return int(value) if integer else float(value)


def _string(schema: dict, name: str, owner: str) -> str | None:
    fmt = schema.get("format")
    if fmt in FORMATS:
        return FORMATS[fmt] if FORMATS[fmt] is not None else ""
    if name == "id" or name.endswith("_id") or name.endswith("_ids"):
        return _id(name, owner)
    for key, value in STRINGS_BY_NAME.items():
        if name == key or (key in ("email", "url") and name.endswith("_" + key)):
            if _fits(schema, value):
                return value
    if name.endswith("_at") or name.endswith("_on") or name == "since":
        return FORMATS["date-time"]
    if name.endswith("url") or name.endswith("_link") or name == "link":
        return "https://example.com/"
    value = "text" if not name else name.replace("_", " ")
    return value if _fits(schema, value) else "x" * max(1, schema.get("minLength", 1))


def _id(name: str, owner: str) -> str:
    base = name[:-4] if name.endswith("_ids") else name[:-3] if name.endswith("_id") else ""
    prefix = ID_PREFIXES.get(base)
    if prefix is None and name == "id":
        lowered = owner.lower()
        prefix = next((p for key, p in SCHEMA_PREFIXES if key in lowered), None)
    return f"{prefix or 'obj'}_{HEX}"


def _fits(schema: dict, value: str) -> bool:
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 10**6):
        return False
    pattern = schema.get("pattern")
    return pattern is None or re.search(pattern, value) is not None


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name
