"""Adyen as a PSP, through the official `Adyen` SDK (Checkout payments and modifications).

An attempt is one `POST /payments` whose `reference` and `Idempotency-Key` are PayFlow's
idempotency key, so a retried attempt is charged once. Captures, cancels and refunds are
Adyen's asynchronous modifications: Adyen answers `received` and reports the outcome by
notification (webhook). Adyen has no call to read a payment back; what PayFlow knows of one
after the fact comes from the notifications it stored (POST /v1/psp_webhooks/{connector}), so
the connector is given a reader of them: `lookup` is the AUTHORISATION notification for the
key, `complete_action` the one for the payment, and captures and refunds take the currency the
authorisation was made in from it. Adyen's own integration guide requires those webhooks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    Connector,
    ConnectorError,
    ConnectorUnavailable,
    Decline,
    PaymentMethodDetails,
    PspRateLimited,
    PspTimeout,
    PspUnavailable,
    ReportsUnavailable,
    with_answer,
)
from chalicelib.domain.disputes import DisputeReport, DisputeStatus, reason_for
from chalicelib.domain.psp_events import (
    InvalidWebhook,
    PspEvent,
    PspOutcome,
    payment_intent_of,
)
from chalicelib.domain.test_cards import EXP_MONTH, EXP_YEAR, describe

if TYPE_CHECKING:
    import Adyen

    from chalicelib.reconciliation.reports import Payout, SettlementRow

# The SDK (about 0.1 s to import) is imported by the calls that use it, not with this module.

T = TypeVar("T")

Notifications = Callable[[str, str], "dict[str, Any] | None"]
"""(eventCode, merchantReference or pspReference) -> the last notification item PayFlow
stored for it, or None."""

Owner = Callable[[str], "str | None"]
"""A PaymentIntent id -> the merchant it belongs to, or None (one Adyen merchant account
serves every PayFlow merchant, so a report line is attributed by the PaymentIntent its
merchant reference names)."""
REPORT_BASE = "https://ca-test.adyen.com/reports/download"

ERRORS: dict[str, type[ConnectorError] | tuple[str, str | None]] = {
    # What Adyen's answer means to PayFlow, the one table. Keys: `http_<status>` (`http_5xx`),
    # `error_<errorCode>`, `result_<resultCode>`, `refusal_<refusalReasonCode>`. An error class
    # is retried or failed over on by the state machine; a (code, decline_code) pair is an
    # answer, a decline in Stripe's words.
    "http_400": ConnectorUnavailable,
    "http_401": ConnectorUnavailable,
    "http_403": ConnectorUnavailable,
    "http_404": ConnectorUnavailable,
    "http_422": ConnectorUnavailable,
    "http_429": PspRateLimited,
    "http_5xx": PspUnavailable,
    "error_704": PspTimeout,  # the first request with this key is still in progress
    "result_Error": PspUnavailable,
    "result_Pending": PspTimeout,  # the outcome comes later, by notification
    "result_Received": PspTimeout,
    "result_Cancelled": ("card_declined", "generic_decline"),
    "refusal_2": ("card_declined", "generic_decline"),
    "refusal_3": ("card_declined", "call_issuer"),
    "refusal_4": PspUnavailable,  # Acquirer Error: another PSP may get through
    "refusal_5": ("card_declined", "restricted_card"),
    "refusal_6": ("expired_card", "expired_card"),
    "refusal_7": ("card_declined", "invalid_amount"),
    "refusal_8": ("incorrect_number", "incorrect_number"),
    "refusal_9": PspUnavailable,  # Issuer Unavailable
    "refusal_11": ("payment_intent_authentication_failure", None),
    "refusal_12": ("card_declined", "insufficient_funds"),
    "refusal_14": ("card_declined", "fraudulent"),
    "refusal_15": ("card_declined", "generic_decline"),
    "refusal_16": ("card_declined", "generic_decline"),
    "refusal_20": ("card_declined", "fraudulent"),
    "refusal_22": ("card_declined", "fraudulent"),
    "refusal_24": ("incorrect_cvc", "incorrect_cvc"),
    "refusal_25": ("card_declined", "restricted_card"),
    "refusal_27": ("card_declined", "do_not_honor"),
    "refusal_28": ("card_declined", "withdrawal_count_limit_exceeded"),
    "refusal_29": ("card_declined", "withdrawal_count_limit_exceeded"),
    "refusal_31": ("card_declined", "fraudulent"),
    "refusal_38": ("authentication_required", "authentication_required"),
}
REFUSAL_CODES = {
    "Refused": "2",
    "Referral": "3",
    "Acquirer Error": "4",
    "Blocked Card": "5",
    "Expired Card": "6",
    "Invalid Amount": "7",
    "Invalid Card Number": "8",
    "Issuer Unavailable": "9",
    "3D Not Authenticated": "11",
    "Not enough balance": "12",
    "Acquirer Fraud": "14",
    "Cancelled": "15",
    "Shopper Cancelled": "16",
    "FRAUD": "20",
    "FRAUD-CANCELLED": "22",
    "CVC Declined": "24",
    "Restricted Card": "25",
    "Declined Non Generic": "27",
    "Withdrawal amount exceeded": "28",
    "Withdrawal count exceeded": "29",
    "Issuer Suspected Fraud": "31",
    "Authentication required": "38",
}
"""Adyen's refusal reasons by their text: a notification carries the text, not the code."""
_GENERIC_DECLINE = ("card_declined", "generic_decline")
_ACTION_RESULTS = {"RedirectShopper", "IdentifyShopper", "ChallengeShopper"}


def error_class(key: str) -> type[ConnectorError]:
    """The PayFlow error for a key of ERRORS that names one (ConnectorUnavailable otherwise)."""
    mapped = ERRORS.get(key)
    return mapped if isinstance(mapped, type) else ConnectorUnavailable


def _refusal(code: str | None, reason: str | None) -> Decline:
    """A refusal as a Decline, or the error it stands for (raised)."""
    key = f"refusal_{code}"
    mapped = ERRORS.get(key, _GENERIC_DECLINE)
    if isinstance(mapped, type):
        raise mapped(f"adyen refused: {reason}")
    stripe_code, decline_code = mapped
    return Decline(stripe_code, reason or "Your card was declined.", decline_code)


def translate_errors(call: Callable[[], T]) -> T:
    """Run an Adyen SDK call; transport failures and error answers become PayFlow's."""
    import Adyen
    import requests

    try:
        return call()
    except (requests.Timeout, requests.ConnectionError) as error:
        raise PspTimeout(f"adyen: {error}") from error
    except requests.RequestException as error:
        raise PspUnavailable(f"adyen: {error}") from error
    except Adyen.AdyenError as error:
        status = int(error.status_code or 0)
        for key in (f"error_{error.error_code}", "http_5xx" if status >= 500 else f"http_{status}"):
            if key in ERRORS:
                raise error_class(key)(f"adyen answered {status}: {error.error_code}") from error
        raise ConnectorUnavailable(f"adyen answered {status}: {error.error_code}") from error


@dataclass(frozen=True)
class AdyenAccount:
    """The Adyen account PayFlow's Adyen connectors use (ADYEN_* settings)."""

    api_key: str | None = None
    merchant_account: str | None = None
    checkout_base: str | None = None
    """Adyen's Checkout API with its version (default: the SDK's test endpoint)."""
    return_url: str = "https://payflow.invalid/adyen/return"
    """Where Adyen sends the shopper back after a redirect (3-D Secure)."""
    report_user: str | None = None
    """The report user (`report_...@Company.X`) whose basic credentials download reports."""
    report_password: str | None = None
    report_base: str | None = None
    """Where reports are downloaded (default: Adyen's test Customer Area)."""

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.merchant_account)


@dataclass(frozen=True)
class Announcement:
    """A batch's Settlement details report, as its REPORT_AVAILABLE announced it."""

    name: str
    """The file's name (`settlement_detail_report_batch_<n>.csv`)."""
    url: str
    """Where Adyen said to download it."""
    batch: int
    day: str
    """The UTC day it was announced (YYYY-MM-DD): the batch closed by then."""


class AdyenConnector(Connector):
    """Adyen, reached with the official SDK (enabled when ADYEN_API_KEY is set)."""

    def __init__(
        self,
        account: AdyenAccount,
        notifications: Notifications,
        *,
        connector_id: str = "adyen",
        timeout_ms: int = 10_000,
        owner: Owner | None = None,
    ) -> None:
        self.id = connector_id
        self._account = account
        self._notifications = notifications
        self._owner = owner
        self._timeout = timeout_ms / 1000
        self._sdk: Adyen.Adyen | None = None
        self._files: dict[str, str] = {}
        """Report files downloaded, by URL."""

    def _adyen(self) -> Adyen.Adyen:
        import Adyen

        if not self._account.configured:
            raise ConnectorUnavailable(
                "the adyen connector needs ADYEN_API_KEY and ADYEN_MERCHANT_ACCOUNT"
            )
        if self._sdk is None:
            # requests, whatever else is installed (the SDK prefers pycurl when it finds it).
            sdk = Adyen.Adyen(
                xapikey=self._account.api_key,
                platform="test",
                http_force="requests",
                http_timeout=self._timeout,
            )
            if self._account.checkout_base:
                sdk.checkout.payments_api.baseUrl = self._account.checkout_base
                sdk.checkout.modifications_api.baseUrl = self._account.checkout_base
            self._sdk = sdk
        return self._sdk

    def payment_method(self, payment_method_id: str) -> PaymentMethodDetails | None:
        pm = describe(payment_method_id)
        if pm is None or pm.type != "card":
            return None
        return PaymentMethodDetails(pm.id, pm.type, pm.brand, pm.bin)

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        pm = describe(request.payment_method)
        if pm is None or pm.type != "card":
            raise ConnectorUnavailable(f"adyen cannot charge {request.payment_method}")
        sdk = self._adyen()
        body: dict[str, Any] = {
            "merchantAccount": self._account.merchant_account,
            "amount": {"value": request.amount, "currency": request.currency.upper()},
            "reference": request.idempotency_key,
            "paymentMethod": {
                "type": "scheme",
                "number": pm.number,
                "expiryMonth": f"{EXP_MONTH:02d}",
                "expiryYear": str(EXP_YEAR),
                "cvc": "737",
                "holderName": "PayFlow test card",
            },
            "returnUrl": self._account.return_url,
            "shopperInteraction": "ContAuth" if request.off_session else "Ecommerce",
            "metadata": {"payflow_payment_intent": request.payment_intent_id},
        }
        if request.capture:
            body["captureDelayHours"] = 0
        else:
            body["additionalData"] = {"manualCapture": "true"}
        answer = translate_errors(
            lambda: sdk.checkout.payments_api.payments(
                body, idempotency_key=request.idempotency_key
            )
        ).message
        return _result(answer)

    def lookup(self, idempotency_key: str) -> AuthorizationResult | None:
        item = self._notifications("AUTHORISATION", idempotency_key)
        return _from_notification(item) if item else None

    def complete_action(
        self, psp_reference: str, *, succeeded: bool, capture: bool, idempotency_key: str
    ) -> AuthorizationResult:
        # The shopper authenticates on the issuer's page; Adyen reports the outcome.
        item = self._notifications("AUTHORISATION", psp_reference)
        if item is None:
            raise PspTimeout("adyen has not reported this authentication's outcome yet")
        return _from_notification(item)

    def capture(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        sdk = self._adyen()
        body = {
            "merchantAccount": self._account.merchant_account,
            "amount": {"value": amount, "currency": self._currency(psp_reference)},
            "reference": idempotency_key,
        }
        translate_errors(
            lambda: sdk.checkout.modifications_api.capture_authorised_payment(
                body, psp_reference, idempotency_key=idempotency_key
            )
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> None:
        sdk = self._adyen()
        body = {"merchantAccount": self._account.merchant_account, "reference": idempotency_key}
        translate_errors(
            lambda: sdk.checkout.modifications_api.cancel_authorised_payment_by_psp_reference(
                body, psp_reference, idempotency_key=idempotency_key
            )
        )

    def refund(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        # Adyen accepts the refund now and reports a refusal later, by a REFUND notification.
        sdk = self._adyen()
        body = {
            "merchantAccount": self._account.merchant_account,
            "amount": {"value": amount, "currency": self._currency(psp_reference)},
            "reference": idempotency_key,
        }
        translate_errors(
            lambda: sdk.checkout.modifications_api.refund_captured_payment(
                body, psp_reference, idempotency_key=idempotency_key
            )
        )

    def refunded(self, psp_reference: str, idempotency_key: str) -> bool:
        item = self._notifications("REFUND", idempotency_key)
        return bool(
            item and item.get("originalReference") == psp_reference and item["success"] == "true"
        )

    def settlement_report(self, merchant_id: str, day: str) -> list[SettlementRow]:
        """The lines of Adyen's Settlement details reports that Adyen booked on `day` (UTC),
        from every batch that holds such lines (`_batches_of`), narrowed to the lines whose
        merchant reference names one of `merchant_id`'s PaymentIntents. Each line's payout is
        its batch's. No batch closed yet for the day: no lines."""
        from chalicelib.reconciliation.reports import read_adyen_settlement

        self._report_folder()
        if self._owner is None:
            raise ReportsUnavailable(f"{self.id}: no reader of PaymentIntents' merchants")
        owners: dict[str, str | None] = {}
        rows = []
        for name, text in self._batch_files(day):
            try:
                lines = read_adyen_settlement(self.id, text)
            except ValueError as error:
                # The other providers' reports still reconcile; this one is skipped, with why.
                raise ReportsUnavailable(f"{self.id}: {name} is not readable: {error}") from error
            for row in lines:
                if row.settled_on != day or row.payment_intent is None:
                    continue  # another day's, or not a payment PayFlow made
                if row.payment_intent not in owners:
                    owners[row.payment_intent] = self._owner(row.payment_intent)
                if owners[row.payment_intent] == merchant_id:
                    rows.append(row)
        return rows

    def settlement_payouts(self, merchant_id: str, day: str) -> list[Payout]:
        """What Adyen paid to the bank on `day` (UTC): the MerchantPayout of each batch read for
        the day whose payout Adyen booked that day (a batch that paid nothing out: its net),
        for the whole merchant account, which serves `merchant_id` alone as three-way
        assumes. A bank credit for a batch carries the payout's id (the `TX...XT` reference
        opening the payout description) and its amount."""
        from chalicelib.reconciliation.reports import read_adyen_payouts

        payouts: list[Payout] = []
        for name, text in self._batch_files(day):
            try:
                found = read_adyen_payouts(self.id, text)
            except ValueError as error:
                raise ReportsUnavailable(f"{self.id}: {name} is not readable: {error}") from error
            payouts.extend(p for p in found if p.settled_on == day)
        return payouts

    def _batch_files(self, day: str) -> list[tuple[str, str]]:
        """(name, text) of the report files that may hold lines booked on `day`, each
        downloaded once by this connector (a run asks once per connector)."""
        files = []
        for name, url in self._batches_of(day, self._report_folder()):
            text = self._files.get(url)
            if text is None:
                text = self._download(url)
            if text is not None:
                # A closed batch's report does not change; a file not there yet may come.
                self._files[url] = text
                files.append((name, text))
        return files

    def _report_folder(self) -> str:
        """The merchant account's report folder, which the report user's credentials open."""
        account = self._account
        if not (account.report_user and account.report_password and account.merchant_account):
            raise ReportsUnavailable(
                f"{self.id}: reading Adyen's reports needs ADYEN_REPORT_USER and "
                "ADYEN_REPORT_PASSWORD"
            )
        base = account.report_base or REPORT_BASE
        return f"{base}/MerchantAccount/{account.merchant_account}/"

    def _batches_of(self, day: str, folder: str) -> list[tuple[str, str]]:
        """The report files (name, URL) of the batches that may hold lines booked on `day`.

        Adyen numbers a merchant account's batches in order and announces each with a
        REPORT_AVAILABLE once it closes. Lines booked on `day` are in the batch that was open
        when the day began, through the one open when it ended: the batches announced from
        `day` on, back to the first announced on the earliest such day, and forward while the
        batch before was announced by the end of `day` (it closed that day: the next holds the
        rest of it). Announcements are found within MAX_BATCH_DAYS of the day. With none, the
        day-named files of the day and the next (daily batches named by the account's day,
        which may end after the UTC day). An announced URL outside the merchant account's
        report folder is not fetched (the report user's credentials go only there)."""
        start = date.fromisoformat(day)
        first = None
        for offset in range(MAX_BATCH_DAYS + 1):
            first = self._announced(ANNOUNCED_ON + (start + timedelta(days=offset)).isoformat())
            if first is not None:
                break
        if first is None:
            return [
                (name, folder + name)
                for name in (
                    f"{SETTLEMENT_REPORT}{(start + timedelta(days=n)).strftime('%Y_%m_%d')}.csv"
                    for n in (0, 1)
                )
            ]
        found = {first.batch: first}
        earlier = first.batch - 1
        while (item := self._announced(f"{ANNOUNCED_BATCH}{earlier}")) and item.day >= day:
            found[earlier] = item
            earlier -= 1
        later = first.batch
        while found[later].day <= day:
            item = self._announced(f"{ANNOUNCED_BATCH}{later + 1}")
            if item is None:
                break  # not closed yet: the rest of the day comes with it
            later += 1
            found[later] = item
        return [
            (found[n].name, found[n].url)
            for n in sorted(found)
            if found[n].url == folder + found[n].name
        ]

    def _announced(self, reference: str) -> Announcement | None:
        """The batch report a REPORT_AVAILABLE kept under `reference` announced, or None."""
        item = self._notifications("REPORT_AVAILABLE", reference)
        if item is None:
            return None
        name = str(item.get("pspReference", ""))
        batch, announced = batch_number(name), _epoch(item.get("eventDate"))
        if batch is None or announced is None:
            return None
        from chalicelib.reconciliation.reports import day_of

        return Announcement(name, str(item.get("reason", "")), batch, day_of(announced))

    def _download(self, url: str) -> str | None:
        """A report file's text; None when Adyen has none by that name (404)."""
        import requests

        account = self._account
        try:
            response = requests.get(
                url,
                auth=(account.report_user or "", account.report_password or ""),
                timeout=self._timeout,
            )
        except (requests.Timeout, requests.ConnectionError) as error:
            raise PspTimeout(f"{self.id}: report file: {error}") from error
        except requests.RequestException as error:
            raise PspUnavailable(f"{self.id}: report file: {error}") from error
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise ReportsUnavailable(f"{self.id}: the report user was refused")
        if response.status_code != 200:
            raise PspUnavailable(f"{self.id}: report file answered {response.status_code}")
        return response.text

    def _currency(self, psp_reference: str) -> str:
        """The currency of the authorisation, which a modification must repeat."""
        item = self._notifications("AUTHORISATION", psp_reference)
        if item is None:
            raise PspTimeout("adyen has not confirmed this authorisation by notification yet")
        return str(item["amount"]["currency"])


def _charge_id(psp_reference: str) -> str:
    """PayFlow's charge for an Adyen payment (Adyen has no separate charge object)."""
    return f"ch_{psp_reference}"


def _result(answer: dict[str, Any]) -> AuthorizationResult:
    return with_answer(_mapped(answer), answer)


def _mapped(answer: dict[str, Any]) -> AuthorizationResult:
    result = str(answer.get("resultCode", ""))
    psp = str(answer.get("pspReference", ""))
    if result == "Authorised":
        return AuthorizationResult(AuthorizationStatus.AUTHORIZED, psp, _charge_id(psp))
    if result in _ACTION_RESULTS:
        url = (answer.get("action") or {}).get("url")
        if not url:
            raise ConnectorUnavailable("adyen asked for native 3-D Secure, which PayFlow lacks")
        return AuthorizationResult(
            AuthorizationStatus.REQUIRES_ACTION,
            psp,
            _charge_id(psp),
            next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"url": url, "return_url": None},
            },
        )
    if result == "Refused":
        decline = _refusal(answer.get("refusalReasonCode"), answer.get("refusalReason"))
        return AuthorizationResult(AuthorizationStatus.DECLINED, psp, _charge_id(psp), decline)
    mapped = ERRORS.get(f"result_{result}")
    if isinstance(mapped, tuple):
        decline = Decline(mapped[0], "The payment was cancelled.", mapped[1])
        return AuthorizationResult(AuthorizationStatus.DECLINED, psp, _charge_id(psp), decline)
    raise error_class(f"result_{result}")(f"adyen answered resultCode {result or 'none'}")


def _from_notification(item: dict[str, Any]) -> AuthorizationResult:
    psp = str(item["pspReference"])
    if item.get("success") == "true":
        return AuthorizationResult(AuthorizationStatus.AUTHORIZED, psp, _charge_id(psp))
    reason = str(item.get("reason") or "")
    decline = _refusal(REFUSAL_CODES.get(reason.split(":")[0].strip()), reason)
    return AuthorizationResult(AuthorizationStatus.DECLINED, psp, _charge_id(psp), decline)


def webhook_events(hmac_key: str, headers: Mapping[str, str], body: bytes) -> list[PspEvent]:
    """An Adyen notification request, verified: every item carries the HMAC Adyen signs with
    the merchant's HMAC key (checked by the SDK). An item is one event, named by its event
    code and pspReference (how Adyen's duplicates are recognized). Raises InvalidWebhook when
    any item's signature does not match."""
    import Adyen.util

    try:
        request = json.loads(body)
        items = [entry["NotificationRequestItem"] for entry in request["notificationItems"]]
        valid = all(Adyen.util.is_valid_hmac_notification(item, hmac_key) for item in items)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidWebhook("The Adyen notification is not readable.") from error
    if not items or not valid:
        raise InvalidWebhook("An Adyen notification item's hmacSignature does not match.")
    return [
        _dispute_event(item) if item.get("eventCode") in DISPUTE_CODES else _event(item)
        for item in items
    ]


SETTLEMENT_REPORT = "settlement_detail_report_"
"""How the names of Adyen's Settlement details report files begin."""
BATCH_REPORT = SETTLEMENT_REPORT + "batch_"
"""A batch's file: `settlement_detail_report_batch_<n>.csv`, n Adyen's batch number."""
ANNOUNCED_ON = "settlement_day:"
"""The reference the latest REPORT_AVAILABLE of a batch's settlement details report is kept
under, then the UTC day Adyen announced it."""
ANNOUNCED_BATCH = "settlement_batch:"
"""The reference a batch's REPORT_AVAILABLE is kept under, then the batch's number."""
MAX_BATCH_DAYS = 31
"""How many days after a day its lines may still be paid out in a batch (Adyen's longest
payout frequency is monthly): how far a run looks for the batches that hold them."""


def batch_number(name: str) -> int | None:
    """The batch number of a batch's report file name, None for another file."""
    number = name.removeprefix(BATCH_REPORT).removesuffix(".csv")
    if not name.startswith(BATCH_REPORT) or not name.endswith(".csv") or not number.isdigit():
        return None
    return int(number)


def _report_event(item: dict[str, Any]) -> PspEvent:
    """REPORT_AVAILABLE: `pspReference` is the file's name, `reason` its download URL. A
    batch's settlement details report is also remembered under its batch number and the day
    it was announced (the latest of that day)."""
    name = str(item.get("pspReference", ""))
    references: tuple[str, ...] = (name,)
    announced = _epoch(item.get("eventDate"))
    number = batch_number(name)
    if number is not None and item.get("success") == "true" and announced:
        from chalicelib.reconciliation.reports import day_of

        references = (name, f"{ANNOUNCED_BATCH}{number}", ANNOUNCED_ON + day_of(announced))
    return PspEvent(
        id=f"REPORT_AVAILABLE:{name}",
        type="REPORT_AVAILABLE",
        outcome=PspOutcome.OTHER,
        payment_intent_id=None,
        references=references,
        body=item,
    )


def _event(item: dict[str, Any]) -> PspEvent:
    code = str(item.get("eventCode", ""))
    if code == "REPORT_AVAILABLE":
        return _report_event(item)
    psp = str(item.get("pspReference", ""))
    reference = str(item.get("merchantReference", ""))
    success = item.get("success") == "true"
    amount = (item.get("amount") or {}).get("value")
    outcome = PspOutcome.OTHER
    payment_psp = psp
    decline = None
    if code == "AUTHORISATION":
        outcome = PspOutcome.AUTHORIZED if success else PspOutcome.FAILED
        if not success:
            try:
                decline = _from_notification(item).decline
            except ConnectorError:
                # A refusal Adyen would fail over on (issuer unavailable): still a failure here.
                decline = Decline("card_declined", str(item.get("reason") or ""), None)
    elif code == "CAPTURE" and success:
        outcome = PspOutcome.CAPTURED
        payment_psp = str(item.get("originalReference", ""))
    elif code in REFUND_FAILURES or (code == "REFUND" and not success):
        # A refund refused later (REFUND with success false), or one Adyen paid out that the
        # card scheme returned (REFUND_FAILED, REFUNDED_REVERSED): merchantReference is the
        # PayFlow refund id the refund was asked with.
        return PspEvent(
            id=f"{code}:{psp}",
            type=code,
            outcome=PspOutcome.REFUND_FAILED,
            payment_intent_id=None,
            psp_reference=str(item.get("originalReference", "")) or None,
            refund_id=reference if reference.startswith("re_") else None,
            failure_reason="declined" if code == "REFUND" else "unknown",
            references=(reference, psp),
            body=item,
        )
    return PspEvent(
        id=f"{code}:{psp}",
        type=code,
        outcome=outcome,
        payment_intent_id=payment_intent_of(reference),
        attempt_key=reference if code == "AUTHORISATION" else None,
        psp_reference=payment_psp or None,
        charge_id=_charge_id(payment_psp) if payment_psp else None,
        amount=amount if isinstance(amount, int) else None,
        decline=decline,
        references=(reference, psp),
        body=item,
    )


REFUND_FAILURES = frozenset({"REFUND_FAILED", "REFUNDED_REVERSED"})
"""Adyen's codes for a refund that failed after Adyen accepted it."""

DISPUTE_CODES: dict[str, DisputeStatus] = {
    "REQUEST_FOR_INFORMATION": DisputeStatus.WARNING_NEEDS_RESPONSE,
    "NOTIFICATION_OF_CHARGEBACK": DisputeStatus.NEEDS_RESPONSE,
    "DISPUTE_OPENED_WITH_CHARGEBACK": DisputeStatus.NEEDS_RESPONSE,
    "CHARGEBACK": DisputeStatus.NEEDS_RESPONSE,
    "INFORMATION_SUPPLIED": DisputeStatus.UNDER_REVIEW,
    "CHARGEBACK_REVERSED": DisputeStatus.WON,
    "PREARBITRATION_WON": DisputeStatus.WON,
    "SECOND_CHARGEBACK": DisputeStatus.LOST,
    "PREARBITRATION_LOST": DisputeStatus.LOST,
    "DISPUTE_DEFENSE_PERIOD_ENDED": DisputeStatus.LOST,
}
"""Adyen's dispute event codes as Stripe's statuses (refined by `disputeStatus` where given)."""

_DISPUTE_STATUSES = {
    "Won": DisputeStatus.WON,
    "Lost": DisputeStatus.LOST,
    "Accepted": DisputeStatus.LOST,
    "Expired": DisputeStatus.LOST,
    "Responded": DisputeStatus.UNDER_REVIEW,
}


def _dispute_event(item: dict[str, Any]) -> PspEvent:
    """A dispute notification: `pspReference` is the dispute's (every event of one dispute
    shares it), `originalReference` the disputed payment's."""
    code = str(item["eventCode"])
    dispute_psp = str(item.get("pspReference", ""))
    payment_psp = str(item.get("originalReference", ""))
    if not dispute_psp or not payment_psp:
        raise InvalidWebhook("An Adyen dispute notification names no dispute or payment.")
    extra = item.get("additionalData") or {}
    status = DISPUTE_CODES[code]
    if code == "CHARGEBACK" or code == "DISPUTE_DEFENSE_PERIOD_ENDED":
        status = _DISPUTE_STATUSES.get(str(extra.get("disputeStatus")), status)
    if status == DisputeStatus.UNDER_REVIEW and code == "REQUEST_FOR_INFORMATION":
        status = DisputeStatus.WARNING_UNDER_REVIEW
    amount = (item.get("amount") or {}).get("value")
    currency = (item.get("amount") or {}).get("currency")
    network_code = str(extra.get("chargebackReasonCode") or "") or None
    return PspEvent(
        id=f"{code}:{dispute_psp}",
        type=code,
        outcome=PspOutcome.DISPUTE,
        payment_intent_id=payment_intent_of(str(item.get("merchantReference", ""))),
        psp_reference=payment_psp,
        charge_id=_charge_id(payment_psp),
        dispute=DisputeReport(
            reference=dispute_psp,
            charge_id=_charge_id(payment_psp),
            status=status,
            reason=reason_for(network_code),
            amount=amount if isinstance(amount, int) else None,
            currency=str(currency).lower() if currency else None,
            due_by=_epoch(extra.get("defensePeriodEndsAt")),
            network_reason_code=network_code,
            payment_reference=payment_psp,
        ),
        body=item,
    )


def _epoch(iso: Any) -> int | None:
    """An ISO 8601 time with offset (Adyen's defensePeriodEndsAt) as epoch seconds."""
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(iso)).timestamp()) if iso else None
    except ValueError:
        return None
