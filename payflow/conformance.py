"""How close PayFlow is to Stripe's API, measured (dev-only).

python -m payflow.conformance schemas [--check]
    Write chalicelib/api/openapi_stripe.json, the copy of Stripe's schemas that the generated
    API reference ships, from shared/stripe/stripe_schemas.json (--check: exit 1 if it differs).

python -m payflow.conformance params [--json]
    For each operation PayFlow serves that Stripe has too: Stripe's parameters (stripe-python's
    typed params and shared/stripe's request_parameters), how many PayFlow accepts, and which
    PayFlow accepts that Stripe does not (PayFlow extensions, documented in EXTENSIONS).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from payflow.stripe_spec import SHIPPED_COPY, load_document, shipped_text

EXTENSIONS: Final[dict[str, dict[str, str]]] = {
    "DELETE /v1/webhook_endpoints/{}": {
        "expand": "every PayFlow parameters model takes expand[] (Stripe's delete lists none)",
    },
    "DELETE /v1/customers/{}": {
        "expand": "every PayFlow parameters model takes expand[] (Stripe's delete lists none)",
    },
    "GET /v1/events": {
        "related_object": "a payment's own events (the dashboard's timeline; docs/dashboard.md)",
    },
    "GET /v1/payment_intents": {
        "connector": "payments routed to one connector, through an index (docs/dashboard.md)",
        "payment_method_type": "payments of one payment method type, through an index",
    },
}
"""Parameters PayFlow accepts on a Stripe operation that Stripe's lists lack, and why (keys are
operations with their path parameters as `{}`)."""


def _normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def sdk_params_class(method: str, path: str) -> type | None:
    """stripe-python's typed params of the operation (`stripe/params/_<resource>_<verb>_params`),
    or None when stripe-python has no such operation (then it is PayFlow's own).

    The resource is the path's collection in the singular; the verb follows Stripe's naming:
    create, list, retrieve, modify, delete, search, an action (confirm, capture...), or
    list_<sub>/retrieve_<sub> for a collection under an object (a customer's payment_methods).
    """
    parts = path.removeprefix("/v1/").split("/")
    if not path.startswith("/v1/") or parts[0] == "sandbox":
        return None
    resource = parts[0].removesuffix("s")
    rest = ["{}" if part.startswith("{") else part for part in parts[1:]]
    verbs = {
        ("POST", ()): "create",
        ("GET", ()): "list",
        ("GET", ("search",)): "search",
        ("GET", ("{}",)): "retrieve",
        ("POST", ("{}",)): "modify",
        ("DELETE", ("{}",)): "delete",
    }
    verb = verbs.get((method, tuple(rest)))
    if verb is None and len(rest) == 2 and rest[0] == "{}":
        verb = {"POST": rest[1], "GET": f"list_{rest[1]}"}.get(method)
    if verb is None and len(rest) == 3 and rest[0] == rest[2] == "{}":
        verb = f"retrieve_{rest[1].removesuffix('s')}" if method == "GET" else None
    if verb is None:
        return None
    # A singleton such as /v1/balance has no list: its GET is a retrieve.
    for candidate in [verb, "retrieve"] if verb == "list" else [verb]:
        try:
            module = importlib.import_module(f"stripe.params._{resource}_{candidate}_params")
        except ModuleNotFoundError:
            continue
        camel = "".join(part.capitalize() for part in f"{resource}_{candidate}".split("_"))
        found: type | None = getattr(module, f"{camel}Params", None)
        return found
    return None


def stripe_sdk_params(typed: type) -> set[str]:
    """The parameter names of a stripe-python params TypedDict, less the request options
    (api_key, idempotency_key...) every one of them inherits."""
    from stripe._request_options import RequestOptions

    options = RequestOptions.__required_keys__ | RequestOptions.__optional_keys__
    names: frozenset[str] = typed.__required_keys__ | typed.__optional_keys__  # type: ignore[attr-defined]
    return set(names) - options


@dataclass(frozen=True)
class Coverage:
    """One operation: Stripe's parameters, PayFlow's, and how they overlap."""

    operation: str
    stripe: list[str]
    accepted: list[str]
    unsupported: list[str]
    not_stripe: list[str]
    """Accepted by PayFlow but not a Stripe parameter of the operation."""


def coverage(app: Any, document: dict[str, Any] | None = None) -> list[Coverage]:
    """Parameter coverage of every operation PayFlow serves that Stripe has too."""
    from chalicelib.api.http import ENDPOINTS

    shared = document or load_document()
    spec_params: dict[str, list[str]] = {
        _normalized(op): names
        for op, names in {
            **shared.get("request_parameters", {}),
            **shared.get("x-request-parameters-extra", {}),
        }.items()
    }
    rows = []
    for path, entries in sorted(app.routes.items()):
        for method, entry in sorted(entries.items()):
            typed = sdk_params_class(method, path)
            if typed is None:
                continue
            operation = _normalized(f"{method} {path}")
            spec = ENDPOINTS.get(entry.view_function)
            model = spec.params if spec else None
            accepted = set(model.model_fields) if model else set()
            stripe = stripe_sdk_params(typed) | set(spec_params.get(operation, []))
            extensions = set(EXTENSIONS.get(operation, {}))
            rows.append(
                Coverage(
                    operation=f"{method} {path}",
                    stripe=sorted(stripe),
                    accepted=sorted(accepted & stripe),
                    unsupported=sorted(stripe - accepted),
                    not_stripe=sorted(accepted - stripe - extensions),
                )
            )
    return rows


def table(rows: Sequence[Coverage]) -> str:
    """The coverage as a plain-text table."""
    width = max(len(r.operation) for r in rows)
    lines = [f"{'operation':<{width}}  supported  of Stripe's", "-" * (width + 24)]
    for row in rows:
        lines.append(f"{row.operation:<{width}}  {len(row.accepted):>9}  {len(row.stripe):>11}")
    total_ok = sum(len(r.accepted) for r in rows)
    total = sum(len(r.stripe) for r in rows)
    lines.append("-" * (width + 24))
    lines.append(f"{'all ' + str(len(rows)) + ' operations':<{width}}  {total_ok:>9}  {total:>11}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payflow.conformance")
    commands = parser.add_subparsers(dest="command", required=True)
    schemas = commands.add_parser("schemas", help="write the Stripe schemas the API ships")
    schemas.add_argument("--check", action="store_true", help="exit 1 if the copy is stale")
    params = commands.add_parser("params", help="parameter coverage per operation")
    params.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args(argv)
    if args.command == "schemas":
        text = shipped_text(load_document())
        current = SHIPPED_COPY.read_text(encoding="utf-8") if SHIPPED_COPY.exists() else ""
        if args.check:
            if current != text:
                print(f"{SHIPPED_COPY} is stale: run python -m payflow.conformance schemas")
                return 1
            return 0
        SHIPPED_COPY.write_text(text, encoding="utf-8")
        print(f"wrote {SHIPPED_COPY} ({len(text):,} characters)")
        return 0
    from app import app

    rows = coverage(app)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
