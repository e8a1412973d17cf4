"""A simulated PSP that answers Stripe's test payment methods the way Stripe does.

`pm_card_visa` and friends succeed; `pm_card_chargeDeclined*` decline with Stripe's codes;
`pm_card_authenticationRequired` asks for 3-D Secure. Every operation is recorded once per
idempotency key in the simulator's own table, like a real PSP, so repeating a call never charges
twice and tests can count what was charged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    Connector,
    Decline,
    PaymentMethodDetails,
)
from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.domain.ids import new_id

_CARDS: dict[str, tuple[str, str]] = {
    "pm_card_visa": ("visa", "424242"),
    "pm_card_visa_debit": ("visa", "400005"),
    "pm_card_mastercard": ("mastercard", "555555"),
    "pm_card_mastercard_debit": ("mastercard", "520082"),
    "pm_card_mastercard_prepaid": ("mastercard", "510510"),
    "pm_card_amex": ("amex", "378282"),
    "pm_card_discover": ("discover", "601111"),
    "pm_card_diners": ("diners", "305693"),
    "pm_card_jcb": ("jcb", "353011"),
    "pm_card_unionpay": ("unionpay", "620000"),
}

_DECLINES: dict[str, Decline] = {
    "pm_card_chargeDeclined": Decline(
        "card_declined", "Your card was declined.", "generic_decline"
    ),
    "pm_card_chargeDeclinedInsufficientFunds": Decline(
        "card_declined", "Your card has insufficient funds.", "insufficient_funds"
    ),
    "pm_card_chargeDeclinedFraudulent": Decline(
        "card_declined", "Your card was declined.", "fraudulent"
    ),
    "pm_card_chargeDeclinedLostCard": Decline(
        "card_declined", "Your card was declined.", "lost_card"
    ),
    "pm_card_chargeDeclinedStolenCard": Decline(
        "card_declined", "Your card was declined.", "stolen_card"
    ),
    "pm_card_chargeDeclinedExpiredCard": Decline(
        "expired_card", "Your card has expired.", "expired_card"
    ),
    "pm_card_chargeDeclinedIncorrectCvc": Decline(
        "incorrect_cvc", "Your card's security code is incorrect.", "incorrect_cvc"
    ),
    "pm_card_chargeDeclinedProcessingError": Decline(
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
        "processing_error",
    ),
}

_AUTHENTICATION_REQUIRED = {"pm_card_authenticationRequired", "pm_card_threeDSecure2Required"}

AUTHENTICATION_FAILED = Decline(
    "payment_intent_authentication_failure",
    "The provided PaymentMethod has failed authentication. Provide a new PaymentMethod to "
    "attempt to fulfill this PaymentIntent again.",
)


class SimulatorConnector(Connector):
    """The built-in simulator PSP."""

    def __init__(
        self,
        ledger: SimulatorLedger,
        *,
        connector_id: str = "simulator",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = connector_id
        self._ledger = ledger
        self._clock = clock

    def payment_method(self, payment_method_id: str) -> PaymentMethodDetails | None:
        if payment_method_id in _CARDS:
            brand, bin_ = _CARDS[payment_method_id]
            return PaymentMethodDetails(payment_method_id, "card", brand, bin_)
        if payment_method_id in _DECLINES or payment_method_id in _AUTHENTICATION_REQUIRED:
            return PaymentMethodDetails(payment_method_id, "card", "visa", "400000")
        return None

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        pm = request.payment_method
        if pm in _DECLINES:
            status, decline = AuthorizationStatus.DECLINED, _DECLINES[pm]
        elif pm in _AUTHENTICATION_REQUIRED:
            status, decline = AuthorizationStatus.REQUIRES_ACTION, None
        else:
            status, decline = AuthorizationStatus.AUTHORIZED, None
        record = self._ledger.record_once(
            "authorize",
            f"{self.id}:{request.idempotency_key}",
            {
                "connector": self.id,
                "payment_intent": request.payment_intent_id,
                "psp_reference": new_id("sim", clock=self._clock),
                "charge_id": new_id("ch", clock=self._clock),
                "amount": request.amount,
                "currency": request.currency,
                "payment_method": pm,
                "capture": request.capture,
                "status": status.value,
                "decline_code": decline.decline_code if decline else None,
                "created": int(self._clock()),
            },
        )
        return self._result(record, decline)

    def complete_action(
        self, psp_reference: str, *, succeeded: bool, capture: bool, idempotency_key: str
    ) -> AuthorizationResult:
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
                "created": int(self._clock()),
            },
        )
        return self._result(record, None if succeeded else AUTHENTICATION_FAILED)

    def capture(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        self._ledger.record_once(
            "capture",
            f"{self.id}:{idempotency_key}",
            {"connector": self.id, "psp_reference": psp_reference, "amount": amount},
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> None:
        self._ledger.record_once(
            "void",
            f"{self.id}:{idempotency_key}",
            {"connector": self.id, "psp_reference": psp_reference},
        )

    @staticmethod
    def _result(record: dict[str, Any], decline: Decline | None) -> AuthorizationResult:
        status = AuthorizationStatus(record["status"])
        next_action = None
        if status == AuthorizationStatus.REQUIRES_ACTION:
            next_action = {
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
            next_action=next_action,
        )
