"""Request bodies and query strings as Stripe sends them: form fields with bracket nesting
(`metadata[order_id]=42`, `payment_method_types[0]=card`, `expand[]=x`) or JSON.

One parser for every route, and one that no request can break: the size, the number of
parameters and the nesting depth are bounded before (or while) anything is built, nothing
recurses deeper than MAX_DEPTH, and text is UTF-8 only. Each limit answers a Stripe-shaped 400
(413 for the size), never a RecursionError or a parse that runs for seconds.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.errors import InvalidRequestError, ParameterInvalid, RequestTooLarge

FORM = "application/x-www-form-urlencoded"

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body read (1 MiB): far above any Stripe request, far below API Gateway's
10 MB and Lambda's 6 MB payload limits, so PayFlow (not the platform) answers a larger one."""
MAX_PARAMETERS = 1000
"""Most form fields, query parameters or JSON values in one request."""
MAX_DEPTH = 10
"""Most levels of nesting (`a[b][c]` is 3; Stripe's deepest parameters have 5)."""

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_INDEX = re.compile(r"[0-9]+")
# A JSON string literal: what the bracket scan must skip. Alternatives are disjoint: linear.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def _too_many(count: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"The request has {count} parameters; at most {MAX_PARAMETERS} are allowed.",
        code="parameters_exceed_max",
    )


def _too_deep(name: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(
        f"Parameters can be nested at most {MAX_DEPTH} levels deep.",
        code="parameters_exceed_max_depth",
        param=name,
    )


def check_size(declared: str | None, body: bytes | str | None) -> None:
    """RequestTooLarge when the declared Content-Length or the body itself passes the limit;
    called before the body is parsed (or, for a declared length, even looked at)."""
    try:
        length = int(declared) if declared else 0
    except ValueError:
        length = 0
    if length <= MAX_BODY_BYTES and body is not None:
        length = len(body)
    if length > MAX_BODY_BYTES:
        raise RequestTooLarge(
            f"The request body is {length} bytes; at most {MAX_BODY_BYTES} are allowed."
        )


def _path(name: str) -> list[str]:
    # Counting brackets first keeps a 100,000-level name from being split at all.
    if name.count("[") >= MAX_DEPTH:
        raise _too_deep(name.partition("[")[0] or None)
    match = _NAME.match(name)
    if not match:
        raise ParameterInvalid(f"Invalid parameter name: {name}", param=name)
    return [match.group(1), *_PART.findall(match.group(2))]


def _listify(node: Any) -> Any:
    # Recursion is bounded by MAX_DEPTH: `_path` refused anything deeper.
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    # ASCII digits only: str.isdigit() also takes "²" and "٣", and int() of "²" raises.
    if converted and all(_INDEX.fullmatch(k) for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracketed names into dicts and lists (`a[0]`, `a[]` -> list; `a[b]` -> dict)."""
    if len(pairs) > MAX_PARAMETERS:
        raise _too_many(len(pairs))
    root: dict[str, Any] = {}
    appended: dict[tuple[str, ...], int] = {}
    # A plain name sent more than once (`kinds=a&kinds=b`, how OpenAPI's form style sends an
    # array) is a list, as `kinds[]=a&kinds[]=b` is: never its last value taken silently. A
    # scalar parameter sent twice then fails its model's type, naming the parameter.
    repeated = {name for name, n in Counter(name for name, _ in pairs).items() if n > 1}
    for name, value in pairs:
        parts = _path(name)
        if name in repeated and len(parts) == 1:
            parts = [name, ""]
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


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            f"The {what} is not valid UTF-8.", code="parameter_invalid_encoding"
        ) from error


def _form(data: bytes) -> dict[str, Any]:
    text = _utf8(data, "request body")
    fields = text.count("&") + 1
    if fields > MAX_PARAMETERS:
        raise _too_many(fields)
    try:
        # errors="strict": a %-escape that is not UTF-8 is refused, not turned into U+FFFD.
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            "A form field is not valid UTF-8 once percent-decoded.",
            code="parameter_invalid_encoding",
        ) from error
    return decode_pairs(pairs)


def _check_json_shape(text: str) -> None:
    # json.loads recurses once per level (RecursionError near 1,000): bound the depth and the
    # number of values on the text, with string literals taken out, before parsing it.
    skeleton = _JSON_STRING.sub('""', text)
    depth = 0
    for index, bracket in enumerate(_BRACKETS.finditer(skeleton)):
        if index > 2 * MAX_PARAMETERS:
            raise _too_many(index // 2)
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise _too_deep()
    values = skeleton.count(",") + skeleton.count(":") + 1
    if values > MAX_PARAMETERS:
        raise _too_many(values)


def _check_json_text(body: Any) -> None:
    # JSON escapes can spell lone surrogates ("\ud800"), which no UTF-8 store can hold.
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as error:
                raise InvalidRequestError(
                    "The JSON request body holds a string that is not valid Unicode "
                    "(a lone surrogate escape).",
                    code="parameter_invalid_encoding",
                ) from error


def _json(data: bytes) -> dict[str, Any]:
    # Decoding first refuses UTF-16 and UTF-32, which json.loads(bytes) would auto-detect.
    text = _utf8(data, "JSON request body")
    _check_json_shape(text)
    try:
        body = json.loads(text)
    except ValueError as error:
        raise InvalidRequestError(
            f"Invalid JSON in the request body: {error}.", code="parameter_invalid_json"
        ) from error
    if not isinstance(body, dict):
        raise InvalidRequestError(
            "The JSON request body must be an object of parameters.",
            code="parameter_invalid_json",
        )
    _check_json_text(body)
    return body


def parse_body(content_type: str | None, raw: bytes | str | None) -> dict[str, Any]:
    """The request parameters of a POST body; a 400 (413) for anything unreadable."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else (raw or b"")
    check_size(None, data)
    media = (content_type or "").split(";")[0].strip().lower()
    if not data.strip():
        return {}
    if media in (FORM, ""):
        return _form(data)
    if media == "application/json" or media.endswith("+json"):
        return _json(data)
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
    count = sum(len(values) for values in query.values())
    if count > MAX_PARAMETERS:
        raise _too_many(count)
    return decode_pairs([(name, value) for name, values in query.items() for value in values])
