"""Lambda's event filtering for the sandbox's pollers: an event source mapping's FilterCriteria.

On AWS, a mapping with FilterCriteria hands its function only the records that match one of
its patterns; the others count as handled (a stream moves past them, a queue deletes them),
and a batch with no match invokes nothing. The sandbox does the same, so a function sees in
the sandbox what it would see deployed, and a pattern that never matches fails here first.

The patterns are Lambda's (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html):
a JSON object whose keys are the record's fields, nested; a leaf is a list of values, any of
which may match: a literal (string, number, true, false, null) or one of `prefix`, `suffix`,
`equals-ignore-case`, `anything-but` and `exists`. An SQS message's `body` is matched as JSON
when it is a JSON object, as Lambda does. A pattern using anything else (`numeric`, `cidr`,
`wildcard`, `$or`) is refused when the sandbox starts, rather than matched some other way
than AWS would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Matcher = Callable[[Mapping[str, Any]], bool]


class FilterPatternError(ValueError):
    """A FilterCriteria pattern the sandbox cannot evaluate as Lambda would."""


def record_filter(patterns: Sequence[str]) -> Matcher | None:
    """A test of one Lambda record against `patterns` (JSON strings; any may match), or None
    when there are none (every record passes). Raises FilterPatternError for a bad pattern."""
    if not patterns:
        return None
    compiled = []
    for text in patterns:
        try:
            pattern = json.loads(text)
        except ValueError as error:
            raise FilterPatternError(f"filter pattern is not JSON: {text!r}") from error
        if not isinstance(pattern, dict):
            raise FilterPatternError(f"filter pattern is not an object: {text!r}")
        compiled.append(_object_matcher(pattern))

    def matches(record: Mapping[str, Any]) -> bool:
        subject = _with_json_body(record)
        return any(match(subject) for match in compiled)

    return matches


def _with_json_body(record: Mapping[str, Any]) -> Mapping[str, Any]:
    body = record.get("body")
    if not isinstance(body, str):
        return record
    try:
        parsed = json.loads(body)
    except ValueError:
        return record
    return {**record, "body": parsed} if isinstance(parsed, dict) else record


def _object_matcher(pattern: Mapping[str, Any]) -> Matcher:
    fields: list[tuple[str, Callable[[bool, Any], bool]]] = []
    for key, value in pattern.items():
        if isinstance(value, dict):
            fields.append((key, _nested(_object_matcher(value))))
        elif isinstance(value, list) and value:
            fields.append((key, _leaf([_value_matcher(v) for v in value])))
        else:
            raise FilterPatternError(f"{key!r}: a pattern's value is an object or a list")

    def matches(subject: Mapping[str, Any]) -> bool:
        return all(test(key in subject, subject.get(key)) for key, test in fields)

    return matches


def _nested(match: Matcher) -> Callable[[bool, Any], bool]:
    # Lambda matches flattened paths: under a missing object every field is missing, which
    # only `exists: false` accepts.
    return lambda present, value: match(value if present and isinstance(value, dict) else {})


def _leaf(
    matchers: list[tuple[bool | None, Callable[[Any], bool]]],
) -> Callable[[bool, Any], bool]:
    def matches(present: bool, value: Any) -> bool:
        if not present:
            return any(exists is False for exists, _ in matchers)
        values = value if isinstance(value, list) else [value]
        return any(exists is not False and test(v) for exists, test in matchers for v in values)

    return matches


def _value_matcher(spec: Any) -> tuple[bool | None, Callable[[Any], bool]]:
    """(what it says of the field's presence, the test of one value)."""
    if not isinstance(spec, dict):
        return None, lambda value: _same(value, spec)
    if len(spec) != 1:
        raise FilterPatternError(f"one operator per matcher: {spec!r}")
    ((name, argument),) = spec.items()
    if name == "prefix" and isinstance(argument, str):
        return None, lambda value: isinstance(value, str) and value.startswith(argument)
    if name == "suffix" and isinstance(argument, str):
        return None, lambda value: isinstance(value, str) and value.endswith(argument)
    if name == "equals-ignore-case" and isinstance(argument, str):
        folded = argument.casefold()
        return None, lambda value: isinstance(value, str) and value.casefold() == folded
    if name == "exists" and isinstance(argument, bool):
        return argument, lambda value: argument
    if name == "anything-but":
        excluded = argument if isinstance(argument, list) else [argument]
        if any(isinstance(e, dict | list) for e in excluded):
            raise FilterPatternError(f"anything-but takes values: {spec!r}")
        return None, lambda value: not any(_same(value, e) for e in excluded)
    raise FilterPatternError(f"the sandbox does not evaluate the matcher {spec!r}")


def _same(value: Any, literal: Any) -> bool:
    if isinstance(literal, bool) or literal is None:
        return value is literal
    if isinstance(literal, int | float):
        return isinstance(value, int | float) and not isinstance(value, bool) and value == literal
    return value == literal
