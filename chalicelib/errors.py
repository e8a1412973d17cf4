"""One error root for PayFlow, with the subclasses the API turns into Stripe-shaped bodies.

Domain and data-access code raise these; `chalicelib.api.http` is the one place that turns them
into HTTP responses (`{"error": {"type", "code", "message", "param"}}` with Stripe's statuses,
fields without a value left out).
"""

from __future__ import annotations

from typing import Any, ClassVar


class PayFlowError(Exception):
    """Root of every error that reaches an API caller."""

    http_status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.extra = extra or {}
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        """The Stripe-shaped error body.

        A field with no value is left out, as Stripe does: its schema types `param`, `code`,
        `decline_code`... as strings, never null.
        """
        error: dict[str, Any] = {
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            **self.extra,
        }
        return {"error": {name: value for name, value in error.items() if value is not None}}


class ApiError(PayFlowError):
    """Something went wrong on PayFlow's side (500)."""


class InvalidRequestError(PayFlowError):
    """The request is malformed or not allowed in the object's current state (400)."""

    http_status = 400
    error_type = "invalid_request_error"


class ParameterMissing(InvalidRequestError):
    """A required parameter is absent."""

    default_code = "parameter_missing"


class ParameterUnknown(InvalidRequestError):
    """The request names a parameter the endpoint does not take."""

    default_code = "parameter_unknown"


class ParameterInvalid(InvalidRequestError):
    """A parameter is present but its value is not acceptable."""

    default_code = "parameter_invalid"


class UnexpectedState(InvalidRequestError):
    """The action is not legal from the object's current status."""

    default_code = "payment_intent_unexpected_state"


class ResourceMissing(InvalidRequestError):
    """No such object for this merchant (404): unknown and foreign ids look the same."""

    http_status = 404
    default_code = "resource_missing"


class RouteNotFound(InvalidRequestError):
    """No endpoint at this method and path (404)."""

    http_status = 404
    default_code = "resource_missing"


class AuthenticationError(PayFlowError):
    """Missing or unknown API key (401)."""

    http_status = 401
    error_type = "invalid_request_error"
    default_code = "api_key_invalid"


class PermissionDenied(PayFlowError):
    """The key is valid but may not call this endpoint (403)."""

    http_status = 403
    error_type = "invalid_request_error"
    default_code = "secret_key_required"


class CardError(PayFlowError):
    """The PSP declined the payment (402); the PaymentIntent records why."""

    http_status = 402
    error_type = "card_error"
    default_code = "card_declined"


class IdempotencyError(PayFlowError):
    """An Idempotency-Key was reused with different parameters (400)."""

    http_status = 400
    error_type = "idempotency_error"
    default_code = "idempotency_key_reused"


class IdempotencyKeyInUse(PayFlowError):
    """Another request with the same Idempotency-Key is still running (409)."""

    http_status = 409
    error_type = "invalid_request_error"
    default_code = "idempotency_key_in_use"


class Conflict(PayFlowError):
    """A concurrent change won a race on the same object; retrying is safe (409)."""

    http_status = 409
    error_type = "invalid_request_error"
    default_code = "lock_timeout"


class StaleWrite(Conflict):
    """A conditional write lost to a concurrent one: the object changed since it was read."""


class IdempotencyLeaseLost(IdempotencyKeyInUse):
    """This request's claim on its Idempotency-Key expired and another request took it over."""


class RequestTooLarge(InvalidRequestError):
    """The request body is larger than PayFlow reads (413)."""

    http_status = 413
    default_code = "request_too_large"


class MethodNotAllowed(InvalidRequestError):
    """An HTTP method no PayFlow route answers, such as TRACE (405)."""

    http_status = 405
    default_code = "method_not_allowed"


class RateLimited(InvalidRequestError):
    """The key sent more requests than its rate limit allows (429), as Stripe answers it."""

    http_status = 429
    default_code = "rate_limit"


class UnstorableValue(InvalidRequestError):
    """A value the data store could not hold or give back intact (400); nothing was written."""

    default_code = "parameter_invalid"
