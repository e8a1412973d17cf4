"""Stripe's Search Query Language: the searchable fields of each object, a parser, an evaluator.

A query is clauses `field<op>value` joined by spaces, `AND` or `OR` (never both: Stripe has no
grouping, so AND and OR are mutually exclusive); `-` negates a clause. Each field has a type
that decides its operators, as in Stripe's tables (docs.stripe.com/search):
- token: `:` exact match, case-insensitive (ids, statuses, currencies, metadata values);
- string: `:` matches when the field holds the query's words in the same order, `~` is a
  substring match of at least 3 characters, both case-insensitive;
- numeric: `:`, `>`, `<`, `>=`, `<=` on integers (quotes optional).
`field:null` matches objects where the field is empty, `-field:null` those where it is set
(`-metadata['k']:null`: the key is present). String values must be quoted, with `"` or `'`
and backslash escapes; only numbers and `null` may stand bare.

Nothing here performs I/O: `parse` turns a query into clauses (or a ParameterInvalid naming
what it cannot accept) and `matches` evaluates them on a Stripe-shaped API object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.errors import ParameterInvalid

MAX_CLAUSES = 10
"""PayFlow's cap on clauses per query (Stripe documents none): it bounds the work per object."""
MIN_SUBSTRING = 3
"""Stripe's shortest `~` value."""
MAX_DIGITS = 18
"""Longer numbers are beyond any amount or timestamp (and Python's int parsing limits)."""

_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"-?\d+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_QUOTES = "\"'"


class FieldType(StrEnum):
    """How a search field compares, which decides the operators it takes."""

    TOKEN = "token"
    """Exact match only, case-insensitive."""
    STRING = "string"
    """Words in order (`:`) or a substring (`~`), case-insensitive."""
    NUMERIC = "numeric"
    """Integer equality and comparisons."""


class Operator(StrEnum):
    """A clause's comparison."""

    EQUALS = ":"
    CONTAINS = "~"
    GREATER = ">"
    LESS = "<"
    AT_LEAST = ">="
    AT_MOST = "<="


OPERATORS: dict[FieldType, frozenset[Operator]] = {
    FieldType.TOKEN: frozenset({Operator.EQUALS}),
    FieldType.STRING: frozenset({Operator.EQUALS, Operator.CONTAINS}),
    FieldType.NUMERIC: frozenset(
        {Operator.EQUALS, Operator.GREATER, Operator.LESS, Operator.AT_LEAST, Operator.AT_MOST}
    ),
}

Reader = Callable[[Mapping[str, Any]], Any]


def path(dotted: str) -> Reader:
    """A reader of the value at `dotted` (None where any step is missing)."""
    steps = dotted.split(".")

    def read(obj: Mapping[str, Any]) -> Any:
        value: Any = obj
        for step in steps:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
        return value

    return read


@dataclass(frozen=True)
class SearchField:
    """One searchable field of an object: its query name, type, and how to read it."""

    name: str
    type: FieldType
    read: Reader
    values: frozenset[str] | None = None
    """The only values the field accepts in a query (lowercase), when Stripe restricts them."""


def field(
    name: str, kind: FieldType, read: Reader | None = None, values: frozenset[str] | None = None
) -> SearchField:
    """A field read from the object at its own dotted name unless `read` says otherwise."""
    return SearchField(name, kind, read or path(name), values)


METADATA = "metadata"


@dataclass(frozen=True)
class Searchable:
    """The search fields of one object kind, as Stripe lists them for its resource."""

    resource: str
    """The resource name in messages (`payment_intents`)."""
    fields: Mapping[str, SearchField]

    def field(self, name: str, position: int) -> SearchField:
        found = self.fields.get(name)
        if found is None:
            supported = ", ".join(sorted(self.fields))
            raise _invalid(
                f"Field '{name}' is an unsupported search field for {self.resource}. "
                f"Supported: {supported}.",
                position,
            )
        return found


def _table(resource: str, *fields: SearchField) -> Searchable:
    return Searchable(resource, {f.name: f for f in fields})


def _refunded(obj: Mapping[str, Any]) -> str | None:
    # Stripe's rule: refunded:"true" is fully refunded, refunded:"false" partially refunded,
    # refunded:null not refunded at all.
    if obj.get("refunded"):
        return "true"
    return "false" if (obj.get("amount_refunded") or 0) > 0 else None


_BOOLEAN = frozenset({"true", "false"})
_SOURCES = ("card", "card_present", "interac_present")
_CARD_FIELDS = ("last4", "exp_month", "exp_year", "brand", "fingerprint")

SEARCHABLE: dict[str, Searchable] = {
    "payment_intent": _table(
        "payment_intents",
        field("amount", FieldType.NUMERIC),
        field("created", FieldType.NUMERIC),
        field("currency", FieldType.TOKEN),
        field("customer", FieldType.TOKEN),
        field(METADATA, FieldType.TOKEN),
        field("status", FieldType.TOKEN),
        # PayFlow's own fields (Stripe has no connectors): read from the search view
        # (PaymentIntent.search_view), and through their index when a query requires a value.
        field("connector", FieldType.TOKEN),
        field("payment_method_type", FieldType.TOKEN),
    ),
    "charge": _table(
        "charges",
        field("amount", FieldType.NUMERIC),
        field("billing_details.address.postal_code", FieldType.TOKEN),
        field("created", FieldType.NUMERIC),
        field("currency", FieldType.TOKEN),
        field("customer", FieldType.TOKEN),
        field("disputed", FieldType.TOKEN, values=_BOOLEAN),
        field(METADATA, FieldType.TOKEN),
        *(
            field(f"payment_method_details.{source}.{name}", FieldType.TOKEN)
            for source in _SOURCES
            for name in _CARD_FIELDS
        ),
        field("refunded", FieldType.TOKEN, read=_refunded, values=_BOOLEAN),
        field("status", FieldType.TOKEN),
    ),
    "customer": _table(
        "customers",
        field("created", FieldType.NUMERIC),
        field("email", FieldType.STRING),
        field(METADATA, FieldType.TOKEN),
        field("name", FieldType.STRING),
        field("phone", FieldType.STRING),
    ),
}
"""Search fields per stored kind, from Stripe's "Supported query fields for each resource"."""


def searchable(kind: str) -> Searchable:
    """The search fields of `kind`; a kind without search is a programming error."""
    return SEARCHABLE[kind]


@dataclass(frozen=True)
class Clause:
    """One `[-]field<op>value`; `value` None is `null`, `key` the metadata key."""

    field: SearchField
    operator: Operator
    value: str | int | None
    negated: bool = False
    key: str | None = None


@dataclass(frozen=True)
class Query:
    """Parsed clauses, all of which (or, with `any_of`, one of which) must match."""

    clauses: tuple[Clause, ...]
    any_of: bool = False


def required_value(query: Query, name: str) -> str | None:
    """The value every match must have in field `name` (an un-negated `name:value` of an AND
    query), lowercased as tokens compare; None when the query does not pin one."""
    if query.any_of and len(query.clauses) > 1:
        return None
    for clause in query.clauses:
        if (
            clause.field.name == name
            and clause.operator is Operator.EQUALS
            and not clause.negated
            and clause.value is not None
        ):
            return str(clause.value).lower()
    return None


def _invalid(message: str, position: int | None = None) -> ParameterInvalid:
    where = f" (at character {position + 1})" if position is not None else ""
    return ParameterInvalid(f"Invalid query{where}: {message}", param="query")


class _Scanner:
    """Walks the query text; every failure is a ParameterInvalid naming the position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def done(self) -> bool:
        return self.at >= len(self.text)

    def peek(self, count: int = 1) -> str:
        return self.text[self.at : self.at + count]

    def skip_spaces(self) -> bool:
        start = self.at
        while not self.done() and self.text[self.at].isspace():
            self.at += 1
        return self.at > start

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.at)
        if found is None:
            return None
        self.at = found.end()
        return found.group()

    def quoted(self, what: str) -> str:
        """A string in `"` or `'`; a backslash makes the next character literal."""
        start = self.at
        quote = self.text[self.at]
        self.at += 1
        out: list[str] = []
        while not self.done():
            char = self.text[self.at]
            if char == "\\" and self.at + 1 < len(self.text):
                out.append(self.text[self.at + 1])
                self.at += 2
                continue
            self.at += 1
            if char == quote:
                return "".join(out)
            out.append(char)
        raise _invalid(f"the {what} starting with {quote} has no closing {quote}.", start)

    def bare(self) -> str:
        start = self.at
        while not self.done() and not self.text[self.at].isspace():
            self.at += 1
        return self.text[start : self.at]

    def conjunction(self) -> str | None:
        """`AND` or `OR` (any case) followed by a space, consumed; None if something else."""
        for word in ("and", "or"):
            end = self.at + len(word)
            if self.text[self.at : end].lower() == word and (
                end == len(self.text) or self.text[end].isspace()
            ):
                self.at = end
                return word
        return None


def parse(query: str, kind: str) -> Query:
    """The clauses of `query` for objects of `kind`, checked against the kind's fields.

    Raises ParameterInvalid (param `query`) naming the first thing Stripe would not accept:
    an unknown field, an operator the field's type lacks, an unquoted string, a short
    substring, AND mixed with OR, parentheses, or more than MAX_CLAUSES clauses.
    """
    table = searchable(kind)
    scanner = _Scanner(query)
    scanner.skip_spaces()
    if scanner.done():
        raise _invalid('the query is empty. Write clauses such as status:"succeeded".')
    clauses: list[Clause] = []
    joiner: str | None = None
    while True:
        clauses.append(_clause(scanner, table))
        if len(clauses) > MAX_CLAUSES:
            raise _invalid(f"a query can have at most {MAX_CLAUSES} clauses.")
        spaced = scanner.skip_spaces()
        if scanner.done():
            break
        if not spaced:
            raise _invalid("clauses must be separated by a space, AND or OR.", scanner.at)
        position = scanner.at
        word = scanner.conjunction() or "and"
        if joiner is not None and word != joiner:
            raise _invalid(
                "a query can't combine AND and OR (clauses separated only by a space are "
                "joined with AND), and there are no parentheses to group them.",
                position,
            )
        joiner = word
        scanner.skip_spaces()
        if scanner.done():
            raise _invalid(f"expected a clause after {word.upper()}.", position)
    return Query(tuple(clauses), any_of=joiner == "or")


def _clause(scanner: _Scanner, table: Searchable) -> Clause:
    start = scanner.at
    if scanner.peek() in ("(", ")"):
        raise _invalid("parentheses are not supported; Stripe's query language has none.", start)
    word = scanner.conjunction()
    if word is not None:
        raise _invalid(f"expected a clause before {word.upper()}.", start)
    negated = scanner.peek() == "-"
    if negated:
        scanner.at += 1
    field_at = scanner.at
    name = scanner.match(_IDENT)
    if name is None:
        raise _invalid("expected a field name, such as status or metadata['key'].", field_at)
    if name.startswith(f"{METADATA}.") and METADATA in table.fields:
        raise _invalid("search metadata as metadata['key']:'value'.", field_at)
    searched = table.field(name, field_at)
    key = _metadata_key(scanner, field_at) if name == METADATA else None
    operator = _operator(scanner, name)
    if operator not in OPERATORS[searched.type]:
        allowed = " ".join(sorted(OPERATORS[searched.type]))
        raise _invalid(
            f"the {searched.type.value} field '{name}' does not support '{operator.value}'; "
            f"it takes {allowed}.",
            field_at,
        )
    value = _value(scanner, searched, operator)
    return Clause(searched, operator, value, negated, key)


def _metadata_key(scanner: _Scanner, field_at: int) -> str:
    if scanner.peek() != "[" or scanner.peek(2)[1:2] not in tuple(_QUOTES):
        raise _invalid("search metadata as metadata['key']:'value'.", field_at)
    scanner.at += 1
    key = scanner.quoted("metadata key")
    if scanner.peek() != "]":
        raise _invalid("expected ] after the metadata key.", scanner.at)
    scanner.at += 1
    if not key:
        raise _invalid("the metadata key is empty.", field_at)
    return key


def _operator(scanner: _Scanner, name: str) -> Operator:
    at = scanner.at
    for operator in (Operator.AT_LEAST, Operator.AT_MOST, *Operator):
        if scanner.peek(len(operator.value)) == operator.value:
            scanner.at += len(operator.value)
            return operator
    hint = " ('=' is not one: use ':' for an exact match)" if scanner.peek() == "=" else ""
    raise _invalid(f"expected an operator after '{name}': one of : ~ > < >= <={hint}.", at)


def _value(scanner: _Scanner, searched: SearchField, operator: Operator) -> str | int | None:
    at = scanner.at
    if scanner.done() or scanner.peek().isspace():
        raise _invalid(f"expected a value after '{searched.name}{operator.value}'.", at)
    quoted = scanner.peek() in _QUOTES
    text = scanner.quoted("value") if quoted else scanner.bare()
    if not quoted and text.lower() == "null":
        if operator is not Operator.EQUALS:
            raise _invalid(f"null only works with ':' ({searched.name}:null).", at)
        return None
    if not quoted and not _NUMBER.fullmatch(text) and searched.type is not FieldType.NUMERIC:
        raise _invalid(
            f"the value {text} must be in quotation marks: {searched.name}"
            f'{operator.value}"{text}". Only numbers and null can be written without quotes.',
            at,
        )
    if searched.type is FieldType.NUMERIC:
        if not _NUMBER.fullmatch(text):
            raise _invalid(f"'{searched.name}' is numeric; '{text}' is not an integer.", at)
        if len(text.lstrip("-")) > MAX_DIGITS:
            raise _invalid(f"'{text}' is too large for '{searched.name}'.", at)
        return int(text)
    if not text:
        raise _invalid(
            f"the value for '{searched.name}' is empty; use {searched.name}:null to find objects "
            "without one.",
            at,
        )
    if operator is Operator.CONTAINS and len(text) < MIN_SUBSTRING:
        raise _invalid(
            f"a substring search (~) needs at least {MIN_SUBSTRING} characters; "
            f"'{text}' has {len(text)}.",
            at,
        )
    if searched.values is not None and text.lower() not in searched.values:
        accepted = ", ".join(f'"{v}"' for v in sorted(searched.values))
        raise _invalid(f"'{searched.name}' accepts only {accepted} (or null).", at)
    return text


def matches(query: Query, obj: Mapping[str, Any]) -> bool:
    """Whether the Stripe-shaped `obj` satisfies `query`."""
    results = (_holds(clause, obj) for clause in query.clauses)
    return any(results) if query.any_of else all(results)


def _holds(clause: Clause, obj: Mapping[str, Any]) -> bool:
    return _compare(clause, _read(clause, obj)) != clause.negated


def _read(clause: Clause, obj: Mapping[str, Any]) -> Any:
    value = clause.field.read(obj)
    if clause.key is not None:
        return value.get(clause.key) if isinstance(value, Mapping) else None
    return value


def _compare(clause: Clause, actual: Any) -> bool:
    if clause.value is None:
        return actual is None or actual == ""
    if actual is None:
        return False
    if clause.field.type is FieldType.NUMERIC:
        return _numeric(clause.operator, actual, clause.value)
    text = _token_text(actual).lower()
    wanted = str(clause.value).lower()
    if clause.operator is Operator.CONTAINS:
        return wanted in text
    if clause.field.type is FieldType.STRING:
        return _words_in_order(text, wanted)
    return text == wanted


def _numeric(operator: Operator, actual: Any, wanted: Any) -> bool:
    if isinstance(actual, bool) or not isinstance(actual, int):
        return False
    if operator is Operator.EQUALS:
        return bool(actual == wanted)
    if operator is Operator.GREATER:
        return bool(actual > wanted)
    if operator is Operator.LESS:
        return bool(actual < wanted)
    if operator is Operator.AT_LEAST:
        return bool(actual >= wanted)
    return bool(actual <= wanted)


def _token_text(actual: Any) -> str:
    # Booleans read as Stripe writes them in queries (disputed:"true"); an expanded object
    # (customer: {...}) compares by its id, as the unexpanded field would.
    if isinstance(actual, bool):
        return "true" if actual else "false"
    if isinstance(actual, Mapping):
        return str(actual.get("id", ""))
    return str(actual)


def _words_in_order(text: str, wanted: str) -> bool:
    """Stripe's exact match on a string: the field holds the query's words, consecutive and in
    the same order (name:"one two" matches "one two three"); a query with no word characters
    must equal the field."""
    needle = _WORD.findall(wanted)
    if not needle:
        return text == wanted
    haystack = _WORD.findall(text)
    width = len(needle)
    return any(haystack[i : i + width] == needle for i in range(len(haystack) - width + 1))
