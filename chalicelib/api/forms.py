"""Request bodies and query strings as Stripe sends them: form fields with bracket nesting
(`metadata[order_id]=42`, `payment_method_types[0]=card`, `expand[]=x`) or JSON."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.errors import InvalidRequestError, ParameterInvalid

FORM = "application/x-www-form-urlencoded"
_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def _path(name: str) -> list[str]:
    match = _NAME.match(name)
    if not match:
        raise ParameterInvalid(f"Invalid parameter name: {name}", param=name)
    return [match.group(1), *_PART.findall(match.group(2))]


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracketed names into dicts and lists (`a[0]`, `a[]` -> list; `a[b]` -> dict)."""
    root: dict[str, Any] = {}
    appended: dict[tuple[str, ...], int] = {}
    for name, value in pairs:
        parts = _path(name)
        node: dict[str, Any] = root
        for depth, part in enumerate(parts):
            if part == "":
                # `a[]` appends: number it after what this list already holds.
                prefix = tuple(parts[:depth])
                part = str(appended.get(prefix, len(node)))
                appended[prefix] = int(part) + 1
            if depth == len(parts) - 1:
                if isinstance(node.get(part), dict):
                    raise ParameterInvalid(f"Invalid value for {name}", param=parts[0])
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    # `metadata=&metadata[a]=b`: a blank scalar followed by a hash of values.
                    if child == "":
                        child = node[part] = {}
                    else:
                        raise ParameterInvalid(f"Invalid value for {name}", param=parts[0])
                node = child
    listified: dict[str, Any] = _listify(root)
    return listified


def parse_body(content_type: str | None, raw: bytes | str | None) -> dict[str, Any]:
    """The request parameters of a POST body; a 400 for anything unreadable."""
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    media = (content_type or "").split(";")[0].strip().lower()
    if not data.strip():
        return {}
    if media in (FORM, ""):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidRequestError("The request body is not valid UTF-8.") from error
        return decode_pairs(parse_qsl(text, keep_blank_values=True))
    if media == "application/json" or media.endswith("+json"):
        try:
            body = json.loads(data)
        except ValueError as error:
            raise InvalidRequestError(
                f"Invalid JSON in the request body: {error}.", code="parameter_invalid_json"
            ) from error
        if not isinstance(body, dict):
            raise InvalidRequestError(
                "The JSON request body must be an object of parameters.",
                code="parameter_invalid_json",
            )
        return body
    raise InvalidRequestError(
        f"Unsupported Content-Type '{media}'. Send {FORM} (what Stripe's libraries send) or "
        "application/json.",
        code="content_type_unsupported",
        param="Content-Type",
    )


def parse_query(query: dict[str, list[str]] | None) -> dict[str, Any]:
    """The parameters of a query string (multi-valued, as Chalice gives them)."""
    if not query:
        return {}
    return decode_pairs([(name, value) for name, values in query.items() for value in values])
