"""The /docs page's reading of the OpenAPI spec: each operation's parameters, body and answers."""

from __future__ import annotations

import json

from marketplace.http.examples import ref_name, resolve

METHODS = ("get", "post", "put", "patch", "delete")


def operations(spec: dict) -> list[dict]:
    """Every operation, in the spec's order, with what a reader needs laid out."""
    schemas = spec.get("components", {}).get("schemas", {})
    shared = spec.get("components", {}).get("responses", {})
    parameters = spec.get("components", {}).get("parameters", {})
    found = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            params = [resolve(p, parameters) for p in item.get("parameters", []) + op.get("parameters", [])]
            body = op.get("requestBody")
            answers = []
            for code, response in op.get("responses", {}).items():
                if ref_name(response) is not None:  # one of the shared problem answers
                    response = dict(resolve(response, shared), shared=True)
                answers.append({"code": code, "description": response.get("description", ""),
                                "shared": response.get("shared", False),
                                "media": _media(response.get("content", {}), schemas)})
            found.append({
                "method": method, "path": path, "anchor": f"{method}-{path}",
                "summary": op.get("summary", ""), "description": op.get("description", ""),
                "tags": op.get("tags", []), "auth": bool(op.get("security")),
                "parameters": [{"name": p.get("name"), "in": p.get("in"), "required": p.get("required", False),
                                "type": _type(p.get("schema", {})), "description": p.get("description", "")}
                               for p in params if p],
                "body": None if not body else {"required": body.get("required", False),
                                               "media": _media(body.get("content", {}), schemas)},
                "answers": answers,
            })
    return found


def _media(content: dict, schemas: dict) -> list[dict]:
    laid_out = []
    for media_type, media in content.items():
        schema = media.get("schema", {})
        example = media.get("example")
        laid_out.append({
            "type": media_type, "schema": _type(schema),
            "fields": _fields(resolve(schema, schemas), schemas),
            "example": None if example is None else json.dumps(example, indent=2, ensure_ascii=False),
        })
    return laid_out


def _fields(schema: dict, schemas: dict) -> list[dict]:
    required = set(schema.get("required", []))
    return [{"name": name, "type": _type(sub), "required": name in required,
             "description": resolve(sub, schemas).get("description", "") or sub.get("description", ""),
             "enum": resolve(sub, schemas).get("enum")}
            for name, sub in schema.get("properties", {}).items()]


def _type(schema: dict) -> str:
    if (name := ref_name(schema)) is not None:
        return name
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "object" if "properties" in schema else "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if schema.get("format"):
        kind = f"{kind} ({schema['format']})"
    if schema.get("nullable"):
        kind += " or null"
    return kind
