"""A simulated PSP that answers Stripe's test payment methods the way Stripe does, with faults
you can dial in.

`pm_card_visa` and friends succeed; `pm_card_chargeDeclined*` decline with Stripe's codes;
`pm_card_authenticationRequired` asks for 3-D Secure. On top of that, per connector and at run
time (POST /v1/connectors/{id}): latency, timeouts, unavailability and random declines, drawn
from a random generator seeded by (seed, idempotency key, call number) so a run is reproducible.
A simulated timeout sometimes charges before the answer is lost, as real ones do.

Every operation is recorded once per idempotency key in the simulator's own table, like a real
PSP, so repeating a call never charges twice and tests can count what was charged.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    Connector,
    ConnectorUnavailable,
    Decline,
    PaymentMethodDetails,
    PspRateLimited,
    PspTimeout,
    PspUnavailable,
    RefundRefused,
    with_answer,
)
from chalicelib.connectors.simulator_customer import (
    ACTIONS,
    CustomerAction,
    SimulatorCustomer,
    next_action,
)
from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.domain.ids import new_id
from chalicelib.domain.test_cards import TestBehaviour, describe
from chalicelib.errors import UnexpectedState

AUTHENTICATION_FAILED = Decline(
    "payment_intent_authentication_failure",
    "The provided PaymentMethod has failed authentication. Provide a new PaymentMethod to "
    "attempt to fulfill this PaymentIntent again.",
)
RANDOM_DECLINE = Decline("card_declined", "Your card was declined.", "generic_decline")


class SimulatorSettings(BaseModel):
    """A simulator's behaviour, changeable at run time."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of calls answered 'unavailable' (a 5xx: nothing happened)."""
    decline_rate: float = Field(default=0.0, ge=0, le=1)
    latency_ms_min: int = Field(default=0, ge=0, le=60_000)
    latency_ms_max: int = Field(default=0, ge=0, le=60_000)
    seed: int = 0
    fail_next_calls: int = Field(default=0, ge=0, le=10_000)
    """Deterministic faults: the next N calls fail with `fail_with` (then the rates apply)."""
    fail_with: Literal["timeout", "unavailable", "rate_limited", "timeout_after_charge"] = (
        "unavailable"
    )
    """`timeout_after_charge`: the PSP charges, then its answer is lost (an authorization only;
    other calls time out before doing anything)."""
    lookup_fails: bool = False
    """The PSP's lookup by idempotency key answers 503 (its search is down while payments
    work): the orchestration's Reconcile cannot tell whether a timed-out call charged."""
    refund_decline_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of refunds the simulated PSP refuses (failure_reason "declined")."""
    webhook_reorder: bool = False
    """Deliver each batch of the simulator's webhooks shuffled (drawn from `seed`)."""
    webhook_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of the simulator's webhooks delivered twice."""
    upi_intent_expiry_seconds: int = Field(default=600, ge=1, le=86_400)
    """How long a UPI intent (QR code, deep link) waits for the customer's app."""
    upi_collect_expiry_seconds: int = Field(default=480, ge=1, le=86_400)
    """How long a UPI collect request waits on the customer's phone."""
    wallet_expiry_seconds: int = Field(default=600, ge=1, le=86_400)
    """How long a wallet approval page waits for the customer."""

    @model_validator(mode="after")
    def _ranges(self) -> SimulatorSettings:
        if self.latency_ms_max < self.latency_ms_min:
            raise ValueError("latency_ms_max must not be below latency_ms_min")
        if self.timeout_rate + self.error_rate > 1:
            raise ValueError("timeout_rate + error_rate must not exceed 1")
        return self


class SimulatorConnector(Connector):
    """One configured simulator PSP."""

    def __init__(
        self,
        ledger: SimulatorLedger,
        *,
        connector_id: str = "simulator",
        settings: Callable[[], SimulatorSettings] = SimulatorSettings,
        take_scripted_failure: Callable[[], bool] = lambda: False,
        timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        customer: SimulatorCustomer | None = None,
    ) -> None:
        self.id = connector_id
        self._customer = customer
        self._ledger = ledger
        self._settings = settings
        self._take_scripted_failure = take_scripted_failure
        self._timeout_ms = timeout_ms
        self._clock = clock
        self._sleep = sleep

    def payment_method(self, payment_method_id: str) -> PaymentMethodDetails | None:
        pm = describe(payment_method_id)
        return PaymentMethodDetails(pm.id, pm.type, pm.brand, pm.bin) if pm else None

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        key = f"{self.id}:{request.idempotency_key}"
        rng, settings, lost_answer = self._call(key, charge_first=True)
        pm = describe(request.payment_method)
        decline: Decline | None = None
        status = AuthorizationStatus.AUTHORIZED
        if pm is not None and pm.behaviour == TestBehaviour.DECLINE:
            status = AuthorizationStatus.DECLINED
            decline = Decline(pm.code or "card_declined", pm.message or "", pm.decline_code)
        elif pm is not None and _asks_to_authenticate(pm.behaviour, request):
            status = AuthorizationStatus.REQUIRES_ACTION
        elif pm is not None and pm.behaviour == TestBehaviour.AWAIT_CUSTOMER:
            if self._customer is None:
                raise ConnectorUnavailable(f"{self.id} cannot wait for customers here")
            status = AuthorizationStatus.REQUIRES_ACTION
        elif rng.random() < settings.decline_rate:
            status, decline = AuthorizationStatus.DECLINED, RANDOM_DECLINE
        fault = rng.random()
        if fault < settings.error_rate:
            raise PspUnavailable(f"{self.id} answered 503")
        timed_out = lost_answer or fault < settings.error_rate + settings.timeout_rate
        if timed_out and not lost_answer and rng.random() < 0.5:
            raise PspTimeout(f"{self.id} did not answer within {self._timeout_ms} ms")
        record = self._ledger.record_once(
            "authorize",
            key,
            {
                "connector": self.id,
                "merchant": request.merchant_id,
                "payment_intent": request.payment_intent_id,
                "psp_reference": new_id("sim", clock=self._clock),
                "charge_id": new_id("ch", clock=self._clock),
                "amount": request.amount,
                "currency": request.currency,
                "payment_method": request.payment_method,
                "capture": request.capture,
                "status": status.value,
                "decline_code": decline.decline_code if decline else None,
                "decline": decline.__dict__ if decline else None,
                "created": int(self._clock()),
            },
        )
        self._ledger.record_once(
            "reference", record["psp_reference"], {"payment_method": request.payment_method}
        )
        action = ACTIONS.get(request.payment_method)
        if (
            action is not None
            and self._customer is not None
            and record["status"] == "requires_action"
        ):
            self._customer.open(
                self.id,
                action,
                request,
                psp_reference=record["psp_reference"],
                charge_id=record["charge_id"],
                ttl_seconds=_ttl(action, settings),
            )
        if timed_out:
            # The PSP did the work, but its answer never reached us.
            raise PspTimeout(f"{self.id} did not answer within {self._timeout_ms} ms")
        return self._result(record)

    def lookup(self, idempotency_key: str) -> AuthorizationResult | None:
        if self._settings().lookup_fails:
            raise PspUnavailable(f"{self.id}: its lookup answered 503")
        record = self._ledger.find("authorize", f"{self.id}:{idempotency_key}")
        return self._result(record) if record else None

    def complete_action(
        self, psp_reference: str, *, succeeded: bool, capture: bool, idempotency_key: str
    ) -> AuthorizationResult:
        if self._ledger.find("action", psp_reference) is not None:
            raise UnexpectedState(
                "This payment waits for its customer's UPI app or wallet, not for 3-D Secure: "
                "use POST /v1/sandbox/payment_intents/{id}/customer_action."
            )
        status = AuthorizationStatus.AUTHORIZED if succeeded else AuthorizationStatus.DECLINED
        record = self._ledger.record_once(
            "authenticate",
            f"{self.id}:{idempotency_key}",
            {
                "connector": self.id,
                "psp_reference": psp_reference,
                "charge_id": new_id("ch", clock=self._clock),
                "capture": capture,
                "status": status.value,
                "decline": None if succeeded else AUTHENTICATION_FAILED.__dict__,
                "created": int(self._clock()),
            },
        )
        return self._result(record)

    def capture(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        self._ledger.record_once(
            "capture",
            f"{self.id}:{idempotency_key}",
            {
                "connector": self.id,
                "psp_reference": psp_reference,
                "amount": amount,
                "created": int(self._clock()),
            },
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> None:
        self._ledger.record_once(
            "void",
            f"{self.id}:{idempotency_key}",
            {"connector": self.id, "psp_reference": psp_reference},
        )

    def refund(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        key = f"{self.id}:{idempotency_key}"
        rng, settings, _ = self._call(key)
        if rng.random() < settings.error_rate:
            raise PspUnavailable(f"{self.id} answered 503")
        authorization = self._ledger.find("reference", psp_reference) or {}
        pm = describe(str(authorization.get("payment_method", "")))
        refused = pm.code if pm and pm.id == "pm_card_refundFail" else None
        if refused is None and rng.random() < settings.refund_decline_rate:
            refused = "declined"
        record = self._ledger.record_once(
            "refund",
            key,
            {
                "connector": self.id,
                "psp_reference": psp_reference,
                "amount": amount,
                "status": "failed" if refused else "succeeded",
                "failure_reason": refused,
                "refund": idempotency_key,
                "created": int(self._clock()),
            },
        )
        if record["status"] == "failed":
            raise RefundRefused(str(record["failure_reason"]))

    def refunded(self, psp_reference: str, idempotency_key: str) -> bool:
        record = self._ledger.find("refund", f"{self.id}:{idempotency_key}")
        return bool(record and record.get("status") == "succeeded")

    def _call(
        self, key: str, *, charge_first: bool = False
    ) -> tuple[random.Random, SimulatorSettings, bool]:
        """The call's random generator and settings, and whether its answer is to be lost
        after it charged (a scripted `timeout_after_charge`, for a call that charges)."""
        settings = self._settings()
        if not settings.enabled:
            raise ConnectorUnavailable(f"{self.id} is disabled")
        lost_answer = False
        if settings.fail_next_calls and self._take_scripted_failure():
            if settings.fail_with == "timeout_after_charge" and charge_first:
                lost_answer = True
            else:
                error = {
                    "timeout": PspTimeout,
                    "timeout_after_charge": PspTimeout,
                    "rate_limited": PspRateLimited,
                }.get(settings.fail_with, PspUnavailable)
                raise error(f"{self.id}: scripted {settings.fail_with}")
        call = self._ledger.count_call(key)
        rng = random.Random(f"{settings.seed}:{key}:{call}")
        latency = rng.randint(settings.latency_ms_min, settings.latency_ms_max)
        if latency >= self._timeout_ms:
            self._sleep(self._timeout_ms / 1000)
            raise PspTimeout(f"{self.id} did not answer within {self._timeout_ms} ms")
        if latency:
            self._sleep(latency / 1000)
        return rng, settings, lost_answer

    def _result(self, record: dict[str, Any]) -> AuthorizationResult:
        return with_answer(self._mapped(record), record)

    def _mapped(self, record: dict[str, Any]) -> AuthorizationResult:
        status = AuthorizationStatus(record["status"])
        decline = Decline(**record["decline"]) if record.get("decline") else None
        action = (
            self._ledger.find("action", record["psp_reference"])
            if (
                status == AuthorizationStatus.REQUIRES_ACTION
                and record.get("payment_method") in ACTIONS
            )
            else None
        )
        waiting: dict[str, Any] | None = None
        if action is not None:
            waiting = next_action(CustomerAction(action["action"]), action)
        elif status == AuthorizationStatus.REQUIRES_ACTION:
            waiting = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "source": record["psp_reference"],
                },
            }
        return AuthorizationResult(
            status=status,
            psp_reference=record["psp_reference"],
            charge_id=record["charge_id"],
            decline=decline if status == AuthorizationStatus.DECLINED else None,
            next_action=waiting,
        )


def _ttl(action: CustomerAction, settings: SimulatorSettings) -> int:
    """How long the customer has (the simulator's settings, changeable at run time)."""
    return {
        CustomerAction.UPI_INTENT: settings.upi_intent_expiry_seconds,
        CustomerAction.UPI_COLLECT: settings.upi_collect_expiry_seconds,
        CustomerAction.WALLET: settings.wallet_expiry_seconds,
    }[action]


def _asks_to_authenticate(behaviour: TestBehaviour, request: AuthorizationRequest) -> bool:
    """Stripe's 3-D Secure test cards: one always asks; the other not off session once set up."""
    if behaviour == TestBehaviour.AUTHENTICATE:
        return True
    if behaviour == TestBehaviour.AUTHENTICATE_UNLESS_SET_UP:
        return not (request.off_session and request.set_up)
    return False
