"""Request parameters as pydantic models, and their errors as Stripe's.

Models forbid unknown parameters. Values arrive as strings from forms and typed from JSON; the
validators accept both and reject anything else with the message and code Stripe would give.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from chalicelib.domain.money import CURRENCIES, MAX_AMOUNT, MIN_AMOUNT
from chalicelib.domain.payment_intents import (
    CancellationReason,
    CaptureMethod,
    PaymentMethodType,
)
from chalicelib.domain.refunds import RefundReason
from chalicelib.domain.routing import CircuitPolicy, ConnectorConfig
from chalicelib.errors import (
    ParameterInvalid,
    ParameterMissing,
    ParameterUnknown,
    PayFlowError,
)

_INTEGER = re.compile(r"^-?\d+$")
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value)
    raise PydanticCustomError(
        "parameter_invalid_integer", "Invalid integer: {value}", {"value": value}
    )


def _amount(value: Any) -> int:
    amount = _integer(value)
    if amount < MIN_AMOUNT:
        raise PydanticCustomError(
            "amount_too_small",
            "Amount must be at least {minimum} (a positive integer in the currency's smallest "
            "unit).",
            {"minimum": MIN_AMOUNT},
        )
    if amount > MAX_AMOUNT:
        raise PydanticCustomError(
            "amount_too_large",
            "Amount must be no more than {maximum} (in the currency's smallest unit).",
            {"maximum": MAX_AMOUNT},
        )
    return amount


def _limit(value: Any) -> int:
    limit = _integer(value)
    if not 1 <= limit <= 100:
        raise PydanticCustomError(
            "parameter_invalid_integer", "Invalid limit: must be between 1 and 100"
        )
    return limit


def _currency(value: Any) -> str:
    if isinstance(value, str) and value.lower() in CURRENCIES:
        return value.lower()
    raise PydanticCustomError(
        "parameter_invalid_currency",
        "Invalid currency: {value}. Use a lowercase three-letter ISO code Stripe supports, "
        "such as usd, eur or gbp.",
        {"value": value},
    )


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise PydanticCustomError(
        "parameter_invalid_boolean", "Invalid boolean: {value}", {"value": value}
    )


def _metadata(value: Any) -> dict[str, str] | None:
    # "" (or null) means "no metadata": on create, none; on update, clear every key.
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "parameter_invalid_metadata", "Invalid metadata: must be a hash of string values"
        )
    if len(value) > METADATA_MAX_KEYS:
        raise PydanticCustomError(
            "parameter_invalid_metadata",
            "Invalid metadata: metadata can have up to {n} keys; you sent {count}.",
            {"n": METADATA_MAX_KEYS, "count": len(value)},
        )
    result: dict[str, str] = {}
    for key, item in value.items():
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise PydanticCustomError(
                "parameter_invalid_metadata",
                "Metadata keys can be at most {n} characters long; '{key}' is {length}.",
                {"n": METADATA_MAX_KEY_LENGTH, "key": key, "length": len(key)},
            )
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise PydanticCustomError(
                "parameter_invalid_metadata",
                "Metadata values must be strings; the value of '{key}' is not.",
                {"key": key},
            )
        text = str(item)
        if len(text) > METADATA_MAX_VALUE_LENGTH:
            raise PydanticCustomError(
                "parameter_invalid_metadata",
                "Metadata values can be at most {n} characters long; the value of '{key}' is "
                "{length}.",
                {"n": METADATA_MAX_VALUE_LENGTH, "key": key, "length": len(text)},
            )
        result[key] = text
    return result


def _string_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _expand(value: Any) -> list[str]:
    values = _string_list(value)
    if values:
        raise PydanticCustomError(
            "parameter_invalid_expand",
            "This property cannot be expanded ({field}).",
            {"field": values[0] if isinstance(values, list) else values},
        )
    return []


Amount = Annotated[int, BeforeValidator(_amount)]
PositiveAmount = Annotated[int, BeforeValidator(_amount)]
Limit = Annotated[int, BeforeValidator(_limit)]
Currency = Annotated[str, BeforeValidator(_currency)]
Boolean = Annotated[bool, BeforeValidator(_boolean)]
Metadata = Annotated[dict[str, str] | None, BeforeValidator(_metadata)]
PaymentMethodTypes = Annotated[list[PaymentMethodType], BeforeValidator(_string_list)]
Expand = Annotated[list[str], BeforeValidator(_expand)]
Text = Annotated[str, Field(max_length=1000)]
Identifier = Annotated[str, Field(min_length=1, max_length=255)]


class Params(BaseModel):
    """Base of every parameter model: unknown parameters are an error."""

    # Each model's validator is built on its first use, not at import: building them all took
    # 136 ms of every function's cold start, most of them for routes the function never serves.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    expand: Expand = Field(default_factory=list)

    def changes(self) -> dict[str, Any]:
        """The parameters the caller actually sent (for updates)."""
        return self.model_dump(exclude_unset=True, exclude={"expand"})


class CreatePaymentIntent(Params):
    amount: Amount
    currency: Currency
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    payment_method: Identifier | None = None
    confirm: Boolean = False
    description: Text | None = None
    metadata: Metadata = None
    payment_method_types: PaymentMethodTypes | None = None


class UpdatePaymentIntent(Params):
    amount: Amount | None = None
    currency: Currency | None = None
    capture_method: CaptureMethod | None = None
    payment_method: Identifier | None = None
    payment_method_types: PaymentMethodTypes | None = None
    description: Text | None = None
    metadata: Metadata = None


class ConfirmPaymentIntent(Params):
    payment_method: Identifier | None = None
    capture_method: CaptureMethod | None = None
    return_url: Text | None = None


class CapturePaymentIntent(Params):
    amount_to_capture: PositiveAmount | None = None
    metadata: Metadata = None


class CancelPaymentIntent(Params):
    cancellation_reason: CancellationReason | None = None


class ListParams(Params):
    limit: Limit = 10
    starting_after: Identifier | None = None
    ending_before: Identifier | None = None


Rate = Annotated[float, Field(ge=0, le=1)]


class UpdateConnector(Params):
    enabled: Boolean | None = None
    timeout_rate: Rate | None = None
    error_rate: Rate | None = None
    decline_rate: Rate | None = None
    latency_ms_min: Annotated[int, Field(ge=0, le=60_000)] | None = None
    latency_ms_max: Annotated[int, Field(ge=0, le=60_000)] | None = None
    seed: int | None = None
    fail_next_calls: Annotated[int, Field(ge=0, le=10_000)] | None = None
    fail_with: Literal["timeout", "unavailable", "rate_limited"] | None = None
    refund_decline_rate: Rate | None = None


class SetRouting(Params):
    connectors: list[ConnectorConfig] | None = None
    circuit_breaker: CircuitPolicy | None = None
    use_defaults: Boolean = False


class CreateRefund(Params):
    payment_intent: Identifier
    amount: Amount | None = None
    reason: RefundReason | None = None
    metadata: Metadata = None


class UpdateRefund(Params):
    metadata: Metadata = None


class ListRefunds(ListParams):
    payment_intent: Identifier | None = None


class ListBalanceTransactions(ListParams):
    type: Literal["charge", "refund", "refund_failure"] | None = None
    source: Identifier | None = None


class CreateMerchant(Params):
    name: Text | None = None


class CompleteAuthentication(Params):
    outcome: Literal["succeeded", "failed"] = "succeeded"


# -- webhook endpoints, deliveries and events ---------------------------------------------------

Integer = Annotated[int, BeforeValidator(_integer)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
StringList = Annotated[list[Annotated[str, Field(max_length=255)]], BeforeValidator(_string_list)]


class CreatedRange(BaseModel):
    """`created[gt]`, `created[gte]`, `created[lt]`, `created[lte]` (epoch seconds)."""

    model_config = ConfigDict(extra="forbid")

    gt: Integer | None = None
    gte: Integer | None = None
    lt: Integer | None = None
    lte: Integer | None = None

    def bounds(self) -> tuple[int | None, int | None]:
        """The range as inclusive (lowest, highest) created values."""
        lows = [v for v in (self.gte, _plus(self.gt, 1)) if v is not None]
        highs = [v for v in (self.lte, _plus(self.lt, -1)) if v is not None]
        return (max(lows) if lows else None), (min(highs) if highs else None)


def _plus(value: int | None, delta: int) -> int | None:
    return None if value is None else value + delta


def _created(value: Any) -> Any:
    # `created=123` means exactly then; `created[gte]=...` arrives as a dict.
    if isinstance(value, dict):
        return value
    exact = _integer(value)
    return {"gte": exact, "lte": exact}


class CreateWebhookEndpoint(Params):
    url: Url
    enabled_events: StringList
    description: Text | None = None
    metadata: Metadata = None
    api_version: Identifier | None = None


class UpdateWebhookEndpoint(Params):
    url: Url | None = None
    enabled_events: StringList | None = None
    description: Text | None = None
    metadata: Metadata = None
    disabled: Boolean | None = None


class RollWebhookSecret(Params):
    expires_in: Integer = 86_400
    """Seconds the old secret keeps signing (0: replaced at once)."""


class ListWebhookDeliveries(ListParams):
    status: Literal["pending", "succeeded", "failed"] | None = None


class ResendWebhookDeliveries(Params):
    since: Integer
    """Resend failed deliveries of events created at or after this time (epoch seconds)."""


class ListEvents(ListParams):
    type: Annotated[str, Field(max_length=255)] | None = None
    types: StringList | None = None
    created: Annotated[CreatedRange, BeforeValidator(_created)] | None = None


P = TypeVar("P", bound=Params)


def _param_name(loc: tuple[int | str, ...]) -> str:
    head, *rest = (str(part) for part in loc)
    return head + "".join(f"[{part}]" for part in rest)


def stripe_error(error: ValidationError) -> PayFlowError:
    """The first validation problem as the error Stripe would answer with."""
    first = error.errors(include_url=False)[0]
    kind = first["type"]
    loc = tuple(first["loc"])
    param = _param_name(loc) if loc else None
    value = first.get("input")
    if kind == "missing":
        return ParameterMissing(f"Missing required param: {param}.", param=param)
    if kind == "extra_forbidden":
        return ParameterUnknown(f"Received unknown parameter: {param}", param=param)
    if kind == "enum" or kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        return ParameterInvalid(
            f"Invalid {param}: must be one of {expected}",
            param=param,
            code="parameter_invalid_string",
        )
    if kind in ("string_type", "string_too_long", "string_too_short"):
        return ParameterInvalid(
            f"Invalid string: {param} {first['msg'].lower()}",
            param=param,
            code="parameter_invalid_string",
        )
    if kind in ("list_type", "dict_type"):
        return ParameterInvalid(f"Invalid {param}: {value!r}", param=param)
    if kind.startswith(("amount_", "parameter_")):
        if kind.startswith("parameter_invalid_metadata"):
            code = "parameter_invalid_metadata"
        else:
            code = kind
        return ParameterInvalid(first["msg"], param=param, code=code)
    return ParameterInvalid(f"Invalid {param}: {first['msg']}", param=param)


def validate(model: type[P], raw: dict[str, Any]) -> P:
    """`raw` as a `model`, or the Stripe-shaped error for its first problem."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise stripe_error(error) from None
