"""The one place where HTTP meets the services: authentication, parsing, idempotency, and the
translation of every outcome and error into a Stripe-shaped response.

Views are thin: `@endpoint(...)` hands them an `ApiCall` (merchant, validated parameters,
request context) and they return one service call's Outcome.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from chalice import Blueprint, Chalice, Response
from chalice.app import Request

from chalicelib.api.forms import parse_body, parse_query
from chalicelib.api.params import Params, validate
from chalicelib.container import services
from chalicelib.domain.events import API_VERSION
from chalicelib.domain.idempotency import StoredResponse, fingerprint, validate_key
from chalicelib.domain.ids import new_id
from chalicelib.errors import ApiError, Conflict, IdempotencyLeaseLost, PayFlowError
from chalicelib.faults import InjectedCrash
from chalicelib.observability import Metric, observability
from chalicelib.services.context import Outcome, RequestContext

logger = logging.getLogger("payflow.api")

ANY_CONTENT_TYPE = ["*/*"]
"""Routes take every content type so that PayFlow, not Chalice, answers an unsupported one."""

Auth = Literal["merchant", "admin", "none"]


@dataclass(frozen=True)
class EndpointSpec:
    """What `@endpoint(...)` declared for a view: read by the generated API reference."""

    params: type[Params] | None
    auth: Auth
    creates: str | None
    returns: str | None = None
    """The object type answered (`list:<type>` for a list), when the view declares it."""


ENDPOINTS: dict[Callable[..., Any], EndpointSpec] = {}
"""Every wrapped view -> its declaration; Chalice's route table names the views by route."""


@dataclass(frozen=True)
class ApiCall:
    """What a view gets: who calls, with which parameters, in which request."""

    merchant_id: str
    params: Any
    context: RequestContext


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
    return parse_body(request.headers.get("content-type"), request.raw_body)


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
    return Outcome(error.http_status, error.to_body(), dict(error.headers))


def endpoint(
    owner: Blueprint | Chalice,
    *,
    params: type[Params] | None = None,
    auth: Auth = "merchant",
    creates: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Wrap a view: authenticate, validate, apply idempotency, answer Stripe-shaped.

    `creates` is the id prefix of the object a POST creates; the idempotency claim reserves
    such an id so that a retried request creates the same object, never a second one.
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
            context = RequestContext(request_id=request_id)
            key: str | None = None
            try:
                principal = _authenticate(request, auth)
                raw = _parameters(request)
                parsed = validate(params, raw) if params else None
                if request.method == "POST" and auth == "merchant":
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
                        replay = Outcome(claimed.status, claimed.body)
                        return respond(replay, request_id, idempotency_key=key, replayed=True)
                    context.claim = claimed
                outcome = view(ApiCall(principal, parsed, context), **path_args)
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
            return respond(outcome, request_id, idempotency_key=key)

        ENDPOINTS[handle] = EndpointSpec(params, auth, creates)
        return handle

    return decorator


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _authenticate(request: Request, auth: Auth) -> str:
    if auth == "none":
        return ""
    merchants = services().merchants
    if auth == "admin":
        return merchants.authenticate_admin(api_key(request))
    return merchants.authenticate(api_key(request))


def _route_of(request: Request, path_args: dict[str, str]) -> str:
    route = str(request.context.get("resourcePath", ""))
    for name, value in path_args.items():
        route = route.replace("{" + name + "}", value)
    return route


def _complete(context: RequestContext, outcome: Outcome) -> None:
    claim = context.claim
    if claim is None or claim.completed:
        return
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
