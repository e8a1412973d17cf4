"""The one place where HTTP meets the services: authentication, parsing, idempotency, and the
translation of every outcome and error into a Stripe-shaped response.

Views are thin: `@endpoint(...)` hands them an `ApiCall` (merchant, validated parameters,
request context) and they return one service call's Outcome.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import hmac
import importlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from chalice import Blueprint, Chalice, Response
from chalice.app import Request

from chalicelib.api.forms import check_size, parse_body, parse_query
from chalicelib.container import services
from chalicelib.domain.ids import new_id
from chalicelib.errors import (
    ApiError,
    Conflict,
    IdempotencyLeaseLost,
    PayFlowError,
    PermissionDenied,
    ResourceMissing,
)
from chalicelib.faults import InjectedCrash
from chalicelib.observability import Metric, observability
from chalicelib.services import expand

# The parameter models, the domain and the services import pydantic and build models: a
# request imports them (below, in the functions that use them), `import app` does not.
if TYPE_CHECKING:
    from chalicelib.api.params import Params
    from chalicelib.services.context import Outcome, RequestContext

logger = logging.getLogger("payflow.api")

ANY_CONTENT_TYPE = ["*/*"]
"""Routes take every content type so that PayFlow, not Chalice, answers an unsupported one."""

Auth = Literal["merchant", "client", "admin", "none"]
"""Who may call: a secret key (`merchant`); a secret key, or a publishable key with the object's
client_secret, as Stripe.js calls (`client`); the sandbox admin; anyone."""

MERCHANT_AUTH: frozenset[str] = frozenset({"merchant", "client"})

ModelName = str
"""A parameters model by name: a class of chalicelib.api.params (`"CreatePaymentIntent"`), or
`"<module>.<Class>"` in another module of chalicelib.api (`"setup_params.CreateSetupIntent"`).
Views name their model rather than import it, so that registering the routes at `import app`
defines no pydantic class: a request imports the model it validates."""


@functools.cache
def parameters_model(model: ModelName | type[Params]) -> type[Params]:
    """The model class `model` names (imported on first use; KeyError if none), or `model`
    itself when given as a class."""
    from chalicelib.api.params import Params

    if isinstance(model, str):
        module, _, class_name = model.rpartition(".")
        found = getattr(
            importlib.import_module(f"chalicelib.api.{module or 'params'}"), class_name, None
        )
    else:
        found = model
    if not (isinstance(found, type) and issubclass(found, Params)):
        raise KeyError(f"no parameters model {model!r}")
    return found


@dataclass(frozen=True)
class EndpointSpec:
    """What `@endpoint(...)` declared for a view: read by the generated API reference and by
    the tests and tools that walk every route."""

    params_model: ModelName | type[Params] | None
    auth: Auth
    creates: str | None
    returns: str | None = None
    """The object type answered (`list:<type>` for a list), when the view declares it."""

    @property
    def params(self) -> type[Params] | None:
        """The parameters model class (imported, and its module's models defined, on first use)."""
        return parameters_model(self.params_model) if self.params_model else None


ENDPOINTS: dict[Callable[..., Any], EndpointSpec] = {}
"""Every wrapped view -> its declaration; Chalice's route table names the views by route."""


@dataclass(frozen=True)
class ApiCall:
    """What a view gets: who calls, with which parameters, in which request."""

    merchant_id: str
    params: Any
    context: RequestContext
    publishable: bool = False
    """Made with a publishable key: the view must hold the caller to the object's
    client_secret (see `require_client_secret`)."""


def endpoint_spec(view_function: Callable[..., Any]) -> EndpointSpec | None:
    """The declaration of a Chalice route's view function, if `@endpoint` wrapped it."""
    return ENDPOINTS.get(view_function)


def api_key(request: Request) -> str | None:
    """The secret key from `Authorization: Bearer <key>` or HTTP Basic with the key as user."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _parameters(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        return parse_query(_query(request))
    # The declared length first: a huge body is refused before it is even decoded.
    check_size(request.headers.get("content-length"), None)
    raw = request.raw_body
    check_size(None, raw)
    return parse_body(request.headers.get("content-type"), raw)


_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""Every character an id, a connector name or any other path parameter can hold."""


def check_path_ids(route: str, path_args: dict[str, str]) -> None:
    """ResourceMissing (404) for a path parameter no object can have as its id.

    Ids never hold `/`, `?`, `%` or spaces. Behind API Gateway an encoded slash (`%2F`) arrives
    decoded inside one path parameter, and the sandbox routes on the raw path, where it stays
    `%2F`: either way `pi_x%2Fcancel` is one unknown id here, never a second route.
    """
    for name, value in path_args.items():
        if not _ID.fullmatch(value):
            raise ResourceMissing(
                f"No such {_resource_of(route, name)}: '{value[:255]}'", param="id"
            )


def _resource_of(route: str, name: str) -> str:
    # `/v1/payment_intents/{intent}` -> "payment_intent"; `/v1/webhook_deliveries/{id}` -> ...y
    parts = route.split("/")
    marker = "{" + name + "}"
    collection = parts[parts.index(marker) - 1] if marker in parts[1:] else "object"
    if collection.endswith("ies"):
        return collection[:-3] + "y"
    return collection.removesuffix("s")


def _query(request: Request) -> dict[str, list[str]]:
    query = request.query_params
    if not query:
        return {}
    return {name: list(query.getlist(name)) for name in query}


def respond(
    outcome: Outcome,
    request_id: str,
    *,
    idempotency_key: str | None = None,
    replayed: bool = False,
) -> Response:
    from chalicelib.domain.events import API_VERSION

    headers: dict[str, str | list[str]] = {
        "Content-Type": "application/json",
        "Request-Id": request_id,
        "Stripe-Version": API_VERSION,
        **outcome.headers,
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        body=json.dumps(outcome.body, separators=(",", ":")),
        status_code=outcome.status,
        headers=headers,
    )


def error_outcome(error: PayFlowError) -> Outcome:
    from chalicelib.services.context import Outcome

    return Outcome(error.http_status, error.to_body(), dict(error.headers))


def endpoint(
    owner: Blueprint | Chalice,
    *,
    params: ModelName | type[Params] | None = None,
    auth: Auth = "merchant",
    creates: str | None = None,
    returns: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Wrap a view: authenticate, validate, apply idempotency, answer Stripe-shaped.

    `params` is the model the request's parameters are validated with (`ModelName`).
    `creates` is the id prefix of the object a POST creates; the idempotency claim reserves
    such an id so that a retried request creates the same object, never a second one.
    `returns` is the object type the view answers with (`list:<type>` for a list): what
    `expand[]` may reach from it (chalicelib.services.expand).
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(view)
        def handle(**path_args: str) -> Response:
            request = owner.current_request
            assert request is not None, "Chalice sets the request before calling a view"
            request_id = new_id("req")
            obs = observability()
            started = time.monotonic()
            route = str(request.context.get("resourcePath", ""))
            with (
                obs.correlate(
                    request_id=request_id,
                    route=f"{request.method} {route}",
                    payment_intent_id=path_args.get("intent"),
                ),
                obs.trace("api", route=route),
            ):
                response = run(request, request_id, path_args)
                status = response.status_code
                obs.logger.info(
                    "request",
                    extra={"status": status, "duration_ms": _ms_since(started)},
                )
                obs.emit(
                    {
                        Metric.API_REQUESTS: 1,
                        Metric.API_LATENCY: (time.monotonic() - started) * 1000,
                    },
                    route=f"{request.method} {route}",
                    status_class=f"{status // 100}xx",
                )
                return response

        def run(request: Request, request_id: str, path_args: dict[str, str]) -> Response:
            from chalicelib.api.params import validate
            from chalicelib.domain.idempotency import StoredResponse, fingerprint, validate_key
            from chalicelib.services.context import Outcome, RequestContext

            context = RequestContext(request_id=request_id)
            key: str | None = None
            expansions: list[str] = []
            principal = ""
            publishable = False
            try:
                principal, publishable = _authenticate(request, auth)
                _rate_limit(request, auth, principal)
                check_path_ids(str(request.context.get("resourcePath", "")), path_args)
                raw = _parameters(request)
                parsed = validate(parameters_model(params), raw) if params else None
                expansions = list(parsed.expand) if parsed else []
                expand.check(returns, expansions)
                if request.method == "POST" and auth in MERCHANT_AUTH:
                    key = request.headers.get("idempotency-key")
                if key is not None:
                    context.idempotency_key = validate_key(key)
                    claimed = services().idempotency.claim(
                        principal,
                        key,
                        fingerprint(
                            request.method,
                            _route_of(request, path_args),
                            parsed.model_dump(mode="json", exclude_unset=True) if parsed else {},
                        ),
                        object_id=new_id(creates or "req"),
                    )
                    if isinstance(claimed, StoredResponse):
                        replay = _expanded(
                            Outcome(claimed.status, claimed.body), principal, returns, expansions
                        )
                        return respond(replay, request_id, idempotency_key=key, replayed=True)
                    context.claim = claimed
                outcome = view(ApiCall(principal, parsed, context, publishable), **path_args)
                if isinstance(outcome, Response):
                    # Not JSON (Prometheus text): nothing to store or translate.
                    return outcome
                if isinstance(outcome, dict):
                    outcome = Outcome(200, outcome)
            except InjectedCrash:
                # A simulated Lambda death: no response is recorded, as after a real crash.
                raise
            except PayFlowError as error:
                outcome = error_outcome(error)
                if isinstance(error, Conflict) and not isinstance(error, IdempotencyLeaseLost):
                    # Stripe stores nothing for a request that lost a race: free the key so
                    # the client's retry runs again instead of waiting out the lease.
                    _release(context)
            except Exception:
                logger.exception("unhandled error", extra={"request_id": request_id})
                outcome = error_outcome(
                    ApiError(
                        "An unexpected error occurred on PayFlow's side. The request id is "
                        f"{request_id}."
                    )
                )
            _complete(context, outcome)
            if outcome.status == 200 and expansions:
                outcome = _expanded(outcome, principal, returns, expansions)
            return respond(outcome, request_id, idempotency_key=key)

        ENDPOINTS[handle] = EndpointSpec(params, auth, creates, returns)
        return handle

    return decorator


def _expanded(
    outcome: Outcome, merchant_id: str, returns: str | None, expansions: list[str]
) -> Outcome:
    """The outcome with `expand[]` applied (a stored response stays as it was stored)."""
    from chalicelib.services.context import Outcome

    if outcome.status != 200 or not expansions:
        return outcome
    try:
        body = services().expander.expand(
            merchant_id, returns, copy.deepcopy(outcome.body), expansions
        )
    except PayFlowError as error:
        return error_outcome(error)
    return Outcome(outcome.status, body, outcome.headers)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _authenticate(request: Request, auth: Auth) -> tuple[str, bool]:
    """(the merchant the call is for, whether it came with a publishable key)."""
    if auth == "none":
        return "", False
    merchants = services().merchants
    if auth == "admin":
        return merchants.authenticate_admin(api_key(request)), False
    account = request.headers.get("stripe-account")
    if account:
        return _acting_as(request, account), False
    if auth == "client":
        return merchants.authenticate_client(api_key(request))
    return merchants.authenticate(api_key(request)), False


def require_client_secret(call: ApiCall, client_secret: str | None, given: str | None) -> None:
    """With a publishable key, the object's client_secret must come with the call: it is what
    lets a browser act on this one intent and nothing else. Unknown and wrong look the same."""
    if not call.publishable and given is None:
        return
    # Bytes: compare_digest refuses str that is not ASCII, and a caller may send anything.
    if (
        given is None
        or client_secret is None
        or not hmac.compare_digest(given.encode(), client_secret.encode())
    ):
        raise ResourceMissing(
            "No such intent: the client_secret does not match it (a publishable key needs the "
            "intent's client_secret).",
            param="client_secret",
        )


def _rate_limit(request: Request, auth: Auth, merchant_id: str) -> None:
    # Per key, as Stripe counts; before parsing, idempotency or any write, so a refused
    # request costs nothing and leaves nothing. The admin's reads as a merchant are not counted.
    if auth not in MERCHANT_AUTH or request.headers.get("stripe-account"):
        return
    merchants = services().merchants
    read, write = merchants.rate_limits(merchant_id)
    reading = request.method == "GET"
    services().rate_limiter.check(
        merchants.rate_bucket(api_key(request) or ""),
        "read" if reading else "write",
        read if reading else write,
    )


def _acting_as(request: Request, account: str) -> str:
    # `Stripe-Account` with the admin key reads a merchant's data, deleted merchants included;
    # it never writes as them.
    merchant_id = services().merchants.authenticate_as(api_key(request), account)
    if request.method != "GET":
        raise PermissionDenied(
            "The administrator key reads a merchant's data with Stripe-Account; it cannot "
            "change it.",
            code="secret_key_required",
        )
    return merchant_id


def _route_of(request: Request, path_args: dict[str, str]) -> str:
    route = str(request.context.get("resourcePath", ""))
    for name, value in path_args.items():
        route = route.replace("{" + name + "}", value)
    return route


def _complete(context: RequestContext, outcome: Outcome) -> None:
    claim = context.claim
    if claim is None or claim.completed:
        return
    from chalicelib.domain.idempotency import StoredResponse

    try:
        services().idempotency.complete(claim, StoredResponse(outcome.status, outcome.body))
    except Exception:
        # The lease will expire and a retry will execute again; nothing was half-written.
        logger.exception("could not record the idempotent response")


def _release(context: RequestContext) -> None:
    claim, context.claim = context.claim, None
    if claim is not None:
        try:
            services().idempotency.release(claim)
        except Exception:
            logger.exception("could not release an idempotency claim")
