"""What every request body is parsed with, and text the database can store.

PostgreSQL's text cannot hold the NUL character, and UTF-8 cannot encode a lone surrogate (which
JSON spells "\\ud800"). Either would fail deep inside a statement or an encoder, as a 500. So one
loader parses every JSON body, for Flask's `request.get_json` and flask-smorest's arguments alike:
a body that is not UTF-8 JSON, or that Python cannot parse safely (nesting past its recursion
limit, an integer of thousands of digits), is a 400 like any malformed JSON; a string anywhere in
it that cannot be stored is a 422 naming where. Both are raised where the view parses its body,
so a route that authenticates first still answers 401/403 first. Paths, query strings, headers
and form fields are checked by `marketplace.http.guards` and the upload route.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flask import Request as FlaskRequest
from flask import request
from flask.json.provider import DefaultJSONProvider
from marshmallow import RAISE
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import BadRequest

from marketplace.errors import InvalidInput

UNSTORABLE = "may not contain the NUL character or an unpaired surrogate."
BODY = "<body>"  # the `doc` of our JSONDecodeErrors: webargs reads an empty one as "no body at all"


def storable(text: str) -> bool:
    """Whether PostgreSQL can store the text and UTF-8 encode it."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def refuse_unstorable(pairs: Iterable[tuple[str, str]], what: str, where: str) -> None:
    """422 for the first name or value of `pairs` (a query string's, a form's) that cannot be
    stored, naming it (or `where` when the name itself is the culprit)."""
    for name, value in pairs:
        if not storable(name) or not storable(value):
            raise InvalidInput.field(name if storable(name) else where, f"{what} {UNSTORABLE}")


def refuse_nameless_parts() -> None:
    """422 for a multipart body with a part that has no name (werkzeug files it under None), before
    anything reads the form by name: every part must say which field it is."""
    if None in request.form or None in request.files:
        raise InvalidInput("form: Every part needs a name (Content-Disposition: form-data; name=\"…\").",
                           errors={"form": ["A part has no name."]})


def unstorable_at(value: Any) -> str | None:
    """Where (`task_groups.0.name`, or "" for the value itself) the first string that cannot be
    stored sits in a parsed JSON value, if any. Iterative: the parser allows nesting deeper than a
    recursive walk would."""
    stack = [(value, "")]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return at
        elif isinstance(item, dict):
            for key, child in item.items():
                if not storable(key):
                    return at
                stack.append((child, f"{at}.{key}" if at else key))
        elif isinstance(item, list):
            stack.extend((child, f"{at}.{i}" if at else str(i)) for i, child in enumerate(item))
    return None


def load_json(data: bytes | str) -> Any:
    """A request body's JSON. json.JSONDecodeError (a ValueError: 400 from Flask and webargs) when
    it cannot be read; InvalidInput (422) when it holds text that cannot be stored."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"the body is not UTF-8 ({exc.reason})", BODY, exc.start) from None
    except RecursionError:
        raise json.JSONDecodeError("the body is nested too deeply", BODY, 0) from None
    except ValueError as exc:  # e.g. an integer past int's digit limit
        raise json.JSONDecodeError(str(exc), BODY, 0) from None
    # NUL and lone surrogates can only come from \u escapes (raw ones are invalid JSON or UTF-8).
    if "\\u" in text:
        at = unstorable_at(value)
        if at is not None:
            raise InvalidInput.field(at or "body", "Text " + UNSTORABLE)
    return value


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading bodies with `load_json`."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return load_json(s)


class Request(FlaskRequest):
    """Flask's request, saying why a JSON body could not be read (Flask says why only in debug)."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        raise BadRequest(f"The body is not valid JSON: {e}." if e is not None else "The body is not valid JSON.")


class ArgumentsParser(FlaskParser):
    """flask-smorest's argument parser, reading JSON bodies with `load_json`. An unknown query
    parameter is a 422, as an unknown body field is: `?stauts=live` silently ignored would hand
    back every brief as if filtered."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE, "querystring": RAISE}

    def _raw_load_json(self, req) -> Any:
        if not is_json_request(req):
            return core.missing
        return load_json(req.get_data(cache=True))
