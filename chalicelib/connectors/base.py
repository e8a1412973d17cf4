"""The connector interface: what PayFlow needs from a payment service provider (PSP).

A connector authorizes (and, for automatic capture, captures) a payment, captures or voids an
authorization later, and finishes a customer authentication. Every call carries an idempotency
key chosen by PayFlow, so the same call made twice reaches the PSP's money once. Adding a PSP is
one module that subclasses `Connector`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.reconciliation.reports import Payout, SettlementRow


class ConnectorError(Exception):
    """Root of the errors a connector raises when the PSP did not give an answer."""


class TransientConnectorError(ConnectorError):
    """The PSP may answer if asked again (the orchestration retries these)."""


class PspTimeout(TransientConnectorError):
    """The PSP did not answer in time; the operation may or may not have happened."""


class PspUnavailable(TransientConnectorError):
    """The PSP refused the connection or answered 5xx."""


class PspRateLimited(TransientConnectorError):
    """The PSP asked us to slow down."""


class RefundRefused(ConnectorError):
    """The PSP will not pay this refund out; `reason` is Stripe's failure_reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReportsUnavailable(ConnectorError):
    """PayFlow cannot read this PSP's settlement reports (not built, or not ready yet)."""


class CircuitOpen(ConnectorError):
    """The connector's circuit breaker is open: fail over without calling it."""


class ConnectorUnavailable(ConnectorError):
    """The connector is disabled or misconfigured (e.g. refused our credentials)."""


RETRYABLE_ERRORS: tuple[type[ConnectorError], ...] = (PspTimeout, PspUnavailable, PspRateLimited)
"""Retried at the same connector by the state machine's Retry (with backoff and jitter)."""

FAILOVER_ERRORS: tuple[type[ConnectorError], ...] = (
    *RETRYABLE_ERRORS,
    CircuitOpen,
    ConnectorUnavailable,
)
"""Move on to the next candidate connector (the state machine's Catch). A decline is not an
error: it is an answer, and it ends the attempt."""


class AuthorizationStatus(StrEnum):
    """How a PSP answered an authorization."""

    AUTHORIZED = "authorized"
    """Funds are held (and captured too when the request asked for capture)."""
    REQUIRES_ACTION = "requires_action"
    """The customer must authenticate first."""
    DECLINED = "declined"
    """A definitive refusal: retrying or failing over will not help."""


@dataclass(frozen=True)
class PaymentMethodDetails:
    """What a connector knows of a payment method, for validation and routing."""

    id: str
    type: str
    brand: str | None = None
    bin: str | None = None


@dataclass(frozen=True)
class Decline:
    """Why a PSP refused, in Stripe's vocabulary."""

    code: str
    message: str
    decline_code: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    payment_intent_id: str
    amount: int
    currency: str
    payment_method: str
    capture: bool
    idempotency_key: str
    off_session: bool = False
    """The customer is not there to authenticate (a saved card charged later)."""
    set_up: bool = False
    """The card was authenticated for later off-session use when it was saved."""
    merchant_id: str = ""
    """Whose payment it is: a provider's settlement report covers one merchant's account."""


@dataclass(frozen=True)
class AuthorizationResult:
    status: AuthorizationStatus
    psp_reference: str
    charge_id: str
    decline: Decline | None = None
    next_action: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None
    """The PSP's own answer, as `with_answer` cut it (shown with the call, never secrets)."""


def with_answer(result: AuthorizationResult, answer: Any) -> AuthorizationResult:
    """`result` carrying the storable excerpt of the PSP's raw `answer` it was read from."""
    from chalicelib.domain.psp_answers import excerpt

    return replace(result, answer=excerpt(answer))


class Connector(ABC):
    """One PSP."""

    id: str

    @abstractmethod
    def payment_method(self, payment_method_id: str) -> PaymentMethodDetails | None:
        """Details of a payment method this PSP can charge, or None if it does not know it."""

    @abstractmethod
    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        """Authorize (and capture, if `request.capture`) a payment."""

    @abstractmethod
    def lookup(self, idempotency_key: str) -> AuthorizationResult | None:
        """What an earlier `authorize` with this key did, if the PSP knows it (None: nothing
        happened there). Asked after a timeout, before failing over, so that a charge whose
        answer was lost is found rather than made again elsewhere."""

    @abstractmethod
    def complete_action(
        self, psp_reference: str, *, succeeded: bool, capture: bool, idempotency_key: str
    ) -> AuthorizationResult:
        """Finish a customer authentication that `authorize` asked for."""

    @abstractmethod
    def capture(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        """Capture `amount` of an authorization; the remainder is released."""

    @abstractmethod
    def void(self, psp_reference: str, *, idempotency_key: str) -> None:
        """Release an authorization that will not be captured."""

    @abstractmethod
    def refund(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        """Pay `amount` of a captured payment back; raises RefundRefused when the PSP won't."""

    @abstractmethod
    def refunded(self, psp_reference: str, idempotency_key: str) -> bool:
        """Whether a refund sent with this key went through (asked after a lost answer)."""

    def settlement_report(self, merchant_id: str, day: str) -> list[SettlementRow]:
        """The lines this PSP settled for `merchant_id` on the UTC `day` (YYYY-MM-DD), read
        from its own report; ReportsUnavailable where PayFlow does not read them yet."""
        raise ReportsUnavailable(f"PayFlow does not read {self.id}'s settlement reports yet")

    def settlement_payouts(self, merchant_id: str, day: str) -> list[Payout] | None:
        """The payouts this PSP says it made to the bank on `day`, where its report states
        them (with its own costs in their amounts); None where PayFlow adds them up from the
        day's lines (`reports.payouts_of`)."""
        return None
