"""Request parameters as pydantic models, and their errors as Stripe's.

Models forbid unknown parameters. Values arrive as strings from forms and typed from JSON; the
validators accept both and reject anything else with the message and code Stripe would give.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from chalicelib.domain.disputes import EVIDENCE_MAX_CHARS, DisputeReason, DisputeStatus
from chalicelib.domain.money import CURRENCIES, MAX_AMOUNT, MIN_AMOUNT
from chalicelib.domain.payment_intents import (
    CancellationReason,
    CaptureMethod,
    PaymentMethodType,
    SetupFutureUsage,
)
from chalicelib.domain.payment_methods import AllowRedisplay
from chalicelib.domain.refunds import RefundReason
from chalicelib.domain.routing import CircuitPolicy, ConnectorConfig
from chalicelib.domain.test_cards import TEST_TOKENS
from chalicelib.errors import (
    ParameterInvalid,
    ParameterMissing,
    ParameterUnknown,
    PayFlowError,
)

# ASCII digits only: `\d` and int() also take Arabic-Indic and other Unicode digits.
_INTEGER = re.compile(r"-?[0-9]{1,19}")
INTEGER_MAX = 2**63 - 1
"""Stripe's integers are 64-bit; anything larger is refused before it reaches storage."""
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def _integer(value: Any) -> int:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -INTEGER_MAX <= value <= INTEGER_MAX
    ):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip(" ")):
        number = int(value)
        if -INTEGER_MAX <= number <= INTEGER_MAX:
            return number
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
        if not _metadata_key_ok(key):
            raise PydanticCustomError(
                "parameter_invalid_metadata",
                "Metadata keys must be 1 to {n} printable characters, not all blank, without "
                "'[' or ']'; '{key}' is not.",
                {"n": METADATA_MAX_KEY_LENGTH, "key": key},
            )
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


def _metadata_key_ok(key: Any) -> bool:
    # An empty key cannot be stored (DynamoDB map keys have at least one character) and once
    # written broke every read of the object; brackets could not be sent as a form field again.
    return (
        isinstance(key, str)
        and key.strip() != ""
        and key.isprintable()
        and "[" not in key
        and "]" not in key
    )


def _string_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_EXPANSION = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")


def _expand(value: Any) -> list[str]:
    values = _string_list(value)
    if isinstance(values, dict):
        # `expand[0]=a&expand[1]=b` parses as a dict keyed by position.
        values = list(values.values())
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PydanticCustomError("parameter_invalid_expand", "Invalid expand: a list of fields")
    for field in values:
        if not _EXPANSION.match(field):
            raise PydanticCustomError(
                "parameter_invalid_expand",
                "This property cannot be expanded ({field}).",
                {"field": field},
            )
    return list(dict.fromkeys(values))


def _blank_is_none(value: Any) -> Any:
    # Stripe clears an optional hash or list when it is sent as an empty string.
    return None if value == "" else value


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


# -- shared hashes: addresses, shipping, billing details ------------------------------------------


class Nested(BaseModel):
    """A hash parameter (`address[city]=...`): unknown keys are an error here too."""

    model_config = ConfigDict(extra="forbid")


Short = Annotated[str, Field(max_length=255)]
Email = Annotated[str, Field(max_length=512, pattern=r"^$|^[^@\s]+@[^@\s]+$")]


class AddressParams(Nested):
    city: Short | None = None
    country: Short | None = None
    line1: Short | None = None
    line2: Short | None = None
    postal_code: Short | None = None
    state: Short | None = None


Clearable = BeforeValidator(_blank_is_none)
AddressParam = Annotated[AddressParams | None, Clearable]


class ShippingParams(Nested):
    address: AddressParams
    name: Short
    carrier: Short | None = None
    phone: Short | None = None
    tracking_number: Short | None = None


ShippingParam = Annotated[ShippingParams | None, Clearable]


class BillingDetailsParams(Nested):
    address: AddressParam = None
    email: Email | None = None
    name: Short | None = None
    phone: Short | None = None
    tax_id: Short | None = None


Url = Annotated[str, Field(min_length=1, max_length=2048)]


class CardOptions(Nested):
    capture_method: Annotated[CaptureMethod | None, Clearable] = None


class PaymentMethodOptions(Nested):
    card: CardOptions | None = None


class AutomaticPaymentMethods(Nested):
    enabled: Boolean
    allow_redirects: Literal["always", "never"] | None = None


def _automatic_only(value: Any) -> Any:
    if value not in (None, "automatic"):
        raise PydanticCustomError(
            "parameter_invalid_confirmation_method",
            "PayFlow supports confirmation_method=automatic only: a PaymentIntent that needs "
            "authentication is confirmed by the customer's step, not by a second server call.",
        )
    return value


ConfirmationMethod = Annotated[Literal["automatic"], BeforeValidator(_automatic_only)]
Descriptor = Annotated[str, Field(max_length=22)]
DescriptorSuffix = Annotated[str, Field(max_length=22)]


class PaymentIntentFields(Params):
    """What create and update share."""

    customer: Identifier | None = None
    description: Text | None = None
    metadata: Metadata = None
    receipt_email: Annotated[Email | None, Clearable] = None
    setup_future_usage: Annotated[SetupFutureUsage | None, Clearable] = None
    shipping: ShippingParam = None
    statement_descriptor: Descriptor | None = None
    statement_descriptor_suffix: DescriptorSuffix | None = None
    transfer_group: Short | None = None
    payment_method_options: PaymentMethodOptions | None = None

    def options(self) -> dict[str, Any]:
        """The stored fields of the PaymentIntent these parameters set, as sent."""
        sent = self.model_dump(exclude_unset=True)
        fields = {k: v for k, v in sent.items() if k in _STORED_AS_IS}
        if "payment_method_options" in sent:
            card = (sent["payment_method_options"] or {}).get("card") or {}
            fields["card_capture_method"] = card.get("capture_method")
        if "automatic_payment_methods" in sent:
            fields["automatic_payment_methods"] = bool(
                (sent["automatic_payment_methods"] or {}).get("enabled")
            )
        return fields


_STORED_AS_IS = frozenset(
    {
        "customer",
        "receipt_email",
        "setup_future_usage",
        "shipping",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_group",
        "return_url",
        "off_session",
        "error_on_requires_action",
    }
)


class CreatePaymentIntent(PaymentIntentFields):
    amount: Amount
    currency: Currency
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    payment_method: Identifier | None = None
    confirm: Boolean = False
    payment_method_types: PaymentMethodTypes | None = None
    automatic_payment_methods: AutomaticPaymentMethods | None = None
    confirmation_method: ConfirmationMethod | None = None
    return_url: Url | None = None
    off_session: Boolean | None = None
    error_on_requires_action: Boolean | None = None


class UpdatePaymentIntent(PaymentIntentFields):
    amount: Amount | None = None
    currency: Currency | None = None
    capture_method: CaptureMethod | None = None
    payment_method: Identifier | None = None
    payment_method_types: PaymentMethodTypes | None = None

    def changes(self) -> dict[str, Any]:
        sent = super().changes()
        fields = {k: v for k, v in sent.items() if k not in PaymentIntentFields.model_fields}
        fields.update(self.options())
        if "description" in sent:
            fields["description"] = sent["description"]
        if "metadata" in sent:
            fields["metadata"] = sent["metadata"]
        return fields


ClientSecret = Annotated[str, Field(min_length=1, max_length=255)]


class ClientParams(Params):
    """What a browser's call carries with a publishable key: the intent's client_secret."""

    client_secret: ClientSecret | None = None


class ConfirmPaymentIntent(ClientParams):
    payment_method: Identifier | None = None
    capture_method: CaptureMethod | None = None
    return_url: Url | None = None
    off_session: Boolean | None = None
    error_on_requires_action: Boolean | None = None
    receipt_email: Annotated[Email | None, Clearable] = None
    setup_future_usage: Annotated[SetupFutureUsage | None, Clearable] = None
    shipping: ShippingParam = None
    payment_method_options: PaymentMethodOptions | None = None

    def options(self) -> dict[str, Any]:
        return PaymentIntentFields.options(self)  # type: ignore[arg-type]


def _final_only(value: Any) -> Any:
    if _boolean(value) is not True:
        raise PydanticCustomError(
            "parameter_invalid_final_capture",
            "PayFlow captures once per PaymentIntent (final_capture=true): capturing in "
            "several parts (multicapture) is not supported.",
        )
    return True


class CapturePaymentIntent(Params):
    amount_to_capture: PositiveAmount | None = None
    metadata: Metadata = None
    final_capture: Annotated[bool, BeforeValidator(_final_only)] = True
    statement_descriptor_suffix: DescriptorSuffix | None = None


class CancelPaymentIntent(Params):
    cancellation_reason: CancellationReason | None = None


class ListParams(Params):
    limit: Limit = 10
    starting_after: Identifier | None = None
    ending_before: Identifier | None = None

    def page(self) -> dict[str, Any]:
        """The page asked for, as the keyword arguments every list of the services takes."""
        return {
            "limit": self.limit,
            "starting_after": self.starting_after,
            "ending_before": self.ending_before,
        }


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
    fail_with: Literal["timeout", "unavailable", "rate_limited", "timeout_after_charge"] | None = (
        None
    )
    lookup_fails: Boolean | None = None
    refund_decline_rate: Rate | None = None
    webhook_reorder: Boolean | None = None
    webhook_duplicate_rate: Rate | None = None
    upi_intent_expiry_seconds: Annotated[int, Field(ge=1, le=86_400)] | None = None
    upi_collect_expiry_seconds: Annotated[int, Field(ge=1, le=86_400)] | None = None
    wallet_expiry_seconds: Annotated[int, Field(ge=1, le=86_400)] | None = None


class ListCircuitHistory(Params):
    limit: Limit = 20


class SetRouting(Params):
    connectors: list[ConnectorConfig] | None = None
    circuit_breaker: CircuitPolicy | None = None
    use_defaults: Boolean = False


class CreateRefund(Params):
    payment_intent: Identifier | None = None
    charge: Identifier | None = None
    amount: Amount | None = None
    reason: RefundReason | None = None
    metadata: Metadata = None
    instructions_email: Email | None = None


class UpdateRefund(Params):
    metadata: Metadata = None


class ListRefunds(ListParams):
    payment_intent: Identifier | None = None
    charge: Identifier | None = None


ConnectorId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class ListPaymentIntents(ListParams):
    customer: Identifier | None = None
    connector: ConnectorId | None = None
    """PayFlow's: the connector a payment was routed to (PaymentIntent.routed_connector)."""
    payment_method_type: PaymentMethodType | None = None
    """PayFlow's: the type of the payment method it was confirmed with."""


class ListCharges(ListParams):
    payment_intent: Identifier | None = None
    customer: Identifier | None = None


class UpdateCharge(Params):
    description: Text | None = None
    metadata: Metadata = None


EvidenceText = Annotated[str, Field(max_length=20_000)]


class DisputeEvidence(Nested):
    """Stripe's `evidence[...]` fields (chalicelib.domain.disputes.EVIDENCE_FIELDS); an empty
    value clears a field."""

    access_activity_log: EvidenceText | None = None
    billing_address: EvidenceText | None = None
    cancellation_policy: Identifier | None = None
    cancellation_policy_disclosure: EvidenceText | None = None
    cancellation_rebuttal: EvidenceText | None = None
    customer_communication: Identifier | None = None
    customer_email_address: EvidenceText | None = None
    customer_name: EvidenceText | None = None
    customer_purchase_ip: EvidenceText | None = None
    customer_signature: Identifier | None = None
    duplicate_charge_documentation: Identifier | None = None
    duplicate_charge_explanation: EvidenceText | None = None
    duplicate_charge_id: Identifier | None = None
    product_description: EvidenceText | None = None
    receipt: Identifier | None = None
    refund_policy: Identifier | None = None
    refund_policy_disclosure: EvidenceText | None = None
    refund_refusal_explanation: EvidenceText | None = None
    service_date: EvidenceText | None = None
    service_documentation: Identifier | None = None
    shipping_address: EvidenceText | None = None
    shipping_carrier: EvidenceText | None = None
    shipping_date: EvidenceText | None = None
    shipping_documentation: Identifier | None = None
    shipping_tracking_number: EvidenceText | None = None
    uncategorized_file: Identifier | None = None
    uncategorized_text: EvidenceText | None = None

    def given(self) -> dict[str, str]:
        """The fields sent, as text ("" for a field being cleared)."""
        sent = self.model_dump(exclude_unset=True)
        total = sum(len(value or "") for value in sent.values())
        if total > EVIDENCE_MAX_CHARS:
            raise ParameterInvalid(
                f"Invalid evidence: the combined text is {total} characters; Stripe allows "
                f"{EVIDENCE_MAX_CHARS}.",
                param="evidence",
            )
        return {name: value or "" for name, value in sent.items()}


class ListDisputes(ListParams):
    charge: Identifier | None = None
    payment_intent: Identifier | None = None


class UpdateDispute(Params):
    evidence: DisputeEvidence | None = None
    metadata: Metadata = None
    submit: Boolean = False


class SimulateDispute(Params):
    """`POST /v1/sandbox/charges/{charge}/dispute`: what the sandbox's provider reports."""

    outcome: DisputeStatus = DisputeStatus.NEEDS_RESPONSE
    """The status the dispute moves to: needs_response opens a chargeback,
    warning_needs_response an inquiry; won and lost close it."""
    reason: DisputeReason | None = None
    amount: Amount | None = None


class ListBalanceTransactions(ListParams):
    type: Literal["adjustment", "charge", "refund", "refund_failure"] | None = None
    source: Identifier | None = None


class CreateMerchant(Params):
    name: Text | None = None


class CompleteAuthentication(ClientParams):
    """The customer's answer; a browser (the 3-D Secure page) sends the client_secret."""

    outcome: Literal["succeeded", "failed"] = "succeeded"


class DecideCustomerAction(ClientParams):
    """The customer's answer at the simulator (their UPI app, the wallet's page); a browser
    sends the client_secret."""

    outcome: Literal["approve", "refuse"]


# -- webhook endpoints, deliveries and events ---------------------------------------------------

Integer = Annotated[int, BeforeValidator(_integer), Field(ge=-INTEGER_MAX, le=INTEGER_MAX)]
"""An integer as Stripe takes it (form strings too); the bounds also tell the API reference."""
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


class RedriveDeadLetters(Params):
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    """How many dead-lettered webhook messages to move back to the queue."""


class ListEvents(ListParams):
    type: Annotated[str, Field(max_length=255)] | None = None
    types: StringList | None = None
    created: Annotated[CreatedRange, BeforeValidator(_created)] | None = None
    related_object: Identifier | None = None
    """PayFlow's: only events about this object (or whose object belongs to this PaymentIntent)."""


# -- customers and payment methods --------------------------------------------------------------


class InvoiceSettingsParams(Nested):
    default_payment_method: Annotated[str, Field(max_length=255)] | None = None


Locales = Annotated[
    list[Short] | None, BeforeValidator(_blank_is_none), BeforeValidator(_string_list)
]


class CustomerFields(Params):
    email: Email | None = None
    name: Short | None = None
    phone: Short | None = None
    description: Text | None = None
    address: AddressParam = None
    shipping: ShippingParam = None
    metadata: Metadata = None
    invoice_settings: InvoiceSettingsParams | None = None
    preferred_locales: Locales = None


class CreateCustomer(CustomerFields):
    payment_method: Identifier | None = None


class UpdateCustomer(CustomerFields):
    pass


class ListCustomers(ListParams):
    email: Email | None = None
    created: Annotated[CreatedRange, BeforeValidator(_created)] | None = None


def _test_token(value: Any) -> str:
    if isinstance(value, str) and value in TEST_TOKENS:
        return value
    raise PydanticCustomError(
        "parameter_invalid_token",
        "No such token: '{value}'. Use one of Stripe's test tokens, such as tok_visa, or a test "
        "PaymentMethod id such as pm_card_visa.",
        {"value": value},
    )


TestToken = Annotated[str, BeforeValidator(_test_token)]


CardField = Annotated[str, Field(max_length=32)]


class CardParams(Nested):
    """`card[token]` (a test token), or the details payflow.js's frame sends with a
    publishable key: `card[number]`, `card[exp_month]`, `card[exp_year]`, `card[cvc]`
    (checked by chalicelib.domain.card_numbers, which answers Stripe's card errors)."""

    token: TestToken | None = None
    number: CardField | None = None
    exp_month: CardField | None = None
    exp_year: CardField | None = None
    cvc: CardField | None = None


Vpa = Annotated[str, Field(max_length=255)]


class UpiParams(Nested):
    """`upi[vpa]`: the customer's virtual payment address, for a collect request (checked by
    chalicelib.domain.payment_methods.checked_vpa). Without it, a UPI payment is an intent: a
    QR code and deep link the customer's UPI app opens."""

    vpa: Vpa | None = None


class CreatePaymentMethod(Params):
    type: Literal["card", "upi"]
    card: CardParams | None = None
    upi: UpiParams | None = None
    billing_details: BillingDetailsParams | None = None
    metadata: Metadata = None
    allow_redisplay: AllowRedisplay | None = None


class UpdatePaymentMethod(Params):
    billing_details: BillingDetailsParams | None = None
    metadata: Metadata = None
    allow_redisplay: AllowRedisplay | None = None


class AttachPaymentMethod(Params):
    customer: Identifier


class ListPaymentMethods(ListParams):
    customer: Identifier | None = None
    type: Literal["card", "upi"] | None = None


class ListCustomerPaymentMethods(ListParams):
    type: Literal["card", "upi"] | None = None


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


SearchText = Annotated[str, Field(max_length=5000)]


class SearchParams(Params):
    """`GET /v1/<resource>/search`: a query in Stripe's search language and a page cursor."""

    query: SearchText
    limit: Limit = 10
    page: SearchText | None = None


# -- sandbox administration: merchants and their keys -------------------------------------------


class RollApiKey(Params):
    expires_in: Integer | None = None
    """Seconds the old key keeps working (0 to 7 days; default: it stops now)."""
    expires_at: Integer | None = None
    """Or: when the old key stops working (epoch seconds)."""


class RateLimitParams(BaseModel):
    """`rate_limits[read]`, `rate_limits[write]`: requests per second per key (0: unlimited)."""

    model_config = ConfigDict(extra="forbid")

    read: Annotated[int, BeforeValidator(_integer), Field(ge=0, le=100_000)]
    write: Annotated[int, BeforeValidator(_integer), Field(ge=0, le=100_000)]


class SetClock(Params):
    """`POST /v1/sandbox/clock`: either `now` (epoch seconds the business clock reads from
    here on) or `reset`."""

    now: Annotated[Integer, Field(ge=946_684_800, le=4_102_444_800)] | None = None
    reset: Boolean = False


class UpdateMerchant(Params):
    rate_limits: Annotated[RateLimitParams | None, BeforeValidator(_blank_is_none)] = None
    """The merchant's own limits; "" goes back to the defaults."""


# -- analytics, alerts (chalicelib/api/analytics.py) and GraphQL (chalicelib/api/graphql.py) --


class AnalyticsReport(Params):
    created: Annotated[CreatedRange, BeforeValidator(_created)] | None = None
    interval: Literal["hour", "day"] | None = None
    """Bucket width; default hour for ranges up to 2 days, day beyond."""


class ListAlerts(Params):
    limit: Limit = 10


class UpdateAlertSettings(Params):
    enabled: Boolean | None = None
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    window_seconds: Annotated[int, Field(ge=60, le=3600)] | None = None
    minimum_calls: Annotated[int, Field(ge=1, le=10_000)] | None = None

    def changes(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True, exclude={"expand"})


class GraphQLRequest(Params):
    """The GraphQL-over-HTTP body: `query`, `variables`, `operationName` (JSON or form)."""

    query: Annotated[str, Field(min_length=1, max_length=20_000)]
    variables: dict[str, Any] | None = None
    # camelCase: the GraphQL-over-HTTP spec's own name for it.
    operationName: Annotated[str, Field(max_length=255)] | None = None
