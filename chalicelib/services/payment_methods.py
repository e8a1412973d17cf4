"""PaymentMethods: made from test cards and tokens, saved to customers, used by payments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.dal.dynamo import WriteBatch
from chalicelib.domain import payment_methods as rules
from chalicelib.domain.card_numbers import entered_card
from chalicelib.domain.contact import BillingDetails
from chalicelib.domain.ids import new_id
from chalicelib.domain.metadata import updated_metadata
from chalicelib.domain.payment_methods import AllowRedisplay, PaymentMethod
from chalicelib.domain.test_cards import TestCard, describe, is_test_id
from chalicelib.errors import InvalidRequestError, ParameterInvalid, ResourceMissing
from chalicelib.services.context import Outcome, RequestContext
from chalicelib.services.resources import Resource, Resources

_TYPED = ("number", "exp_month", "exp_year", "cvc")


def _upi(vpa: str | None) -> TestCard:
    """What a UPI method charges: a collect request to its VPA, else an intent (QR code)."""
    card = describe("pm_upi_collect" if vpa else "pm_upi_intent")
    assert card is not None
    return card


def _top_level(pm: PaymentMethod) -> dict[str, str]:
    return {"customer": pm.customer, "type": pm.type} if pm.customer else {"type": pm.type}


PAYMENT_METHODS: Resource[PaymentMethod] = Resource(
    kind="payment_method",
    model=PaymentMethod,
    url="/v1/payment_methods",
    noun="PaymentMethod",
    top_level=_top_level,
)


@dataclass(frozen=True)
class Attach:
    """An attachment to write: `before` is None when it makes a new method from a test card."""

    before: PaymentMethod | None
    after: PaymentMethod


class PaymentMethodService:
    """Every PaymentMethod operation; what payments and SetupIntents use to resolve an id."""

    def __init__(self, resources: Resources) -> None:
        self._r = resources

    def retrieve(
        self, merchant_id: str, pm_id: str, *, param: str = "payment_method"
    ) -> PaymentMethod:
        """A stored PaymentMethod, or the one a test card's own id stands for."""
        card = describe(pm_id) if is_test_id(pm_id) else None
        if card is not None:
            return rules.from_test_card(merchant_id, card)
        found = self._r.find(PAYMENT_METHODS, merchant_id, pm_id)
        if found is None:
            raise ResourceMissing(f"No such PaymentMethod: '{pm_id}'", param=param)
        return found

    def usable(self, merchant_id: str, pm_id: str, customer: str | None) -> PaymentMethod:
        """The method a payment or setup names, checked against its customer."""
        pm = self.retrieve(merchant_id, pm_id)
        rules.usable_by(pm, customer)
        return pm

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        customer: str | None,
        type: str | None,
        url: str | None = None,
    ) -> dict[str, Any]:
        return self._r.list_body(
            PAYMENT_METHODS,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters={"customer": customer, "type": type},
            url=url,
        )

    def create(
        self,
        merchant_id: str,
        ctx: RequestContext,
        *,
        type: str,
        card: dict[str, Any] | None,
        billing_details: dict[str, Any] | None,
        metadata: dict[str, str] | None,
        allow_redisplay: AllowRedisplay | None,
        publishable: bool = False,
        vpa: str | None = None,
    ) -> Outcome:
        """`POST /v1/payment_methods`: `type=card` with `card[token]` (a test token such as
        `tok_visa`, or a test card id such as `pm_card_visa`), or, with a publishable key (the
        browser, payflow.js), a test card's number, expiry and CVC; `type=upi`, with
        `upi[vpa]` for a collect request."""
        if vpa is not None and type != "upi":
            raise ParameterInvalid("upi[vpa] is for a upi PaymentMethod only.", param="upi[vpa]")
        if vpa is not None:
            vpa = rules.checked_vpa(vpa)
        test_card, expiry = self._card_of(type, card or {}, publishable, vpa)
        pm_id = ctx.claim.object_id if ctx.claim else new_id("pm")
        if ctx.claim is not None and ctx.claim.taken_over:
            existing = self._r.find(PAYMENT_METHODS, merchant_id, pm_id)
            if existing is not None:
                return Outcome(200, existing.to_api())
        pm = rules.made_from(
            id=pm_id,
            merchant_id=merchant_id,
            card=test_card,
            created=self._r.now(),
            billing_details=BillingDetails().merged(billing_details or {}),
            metadata={k: v for k, v in (metadata or {}).items() if v != ""},
            allow_redisplay=allow_redisplay,
            expiry=expiry,
            vpa=vpa,
        )
        batch = WriteBatch()
        self._r.add_new(batch, PAYMENT_METHODS, pm)
        return self._r.committer.commit(ctx, batch, Outcome(200, pm.to_api()))

    def _card_of(
        self, type: str, card: dict[str, Any], publishable: bool, vpa: str | None = None
    ) -> tuple[TestCard, tuple[int, int] | None]:
        """The test card a creation names, and the expiry typed with it, if any."""
        token, number = card.get("token"), card.get("number")
        typed = {name for name in _TYPED if card.get(name) is not None}
        if type == "upi":
            if token or typed:
                raise ParameterInvalid("A upi PaymentMethod takes no card details.", param="card")
            return _upi(vpa), None
        if token and typed:
            raise ParameterInvalid(
                "Pass either card[token] or the card's details, not both.",
                param=f"card[{sorted(typed)[0]}]",
            )
        if token:
            test_card = describe(token)
            if test_card is None or test_card.type == "upi":
                raise ParameterInvalid(
                    f"No such token: '{token}'. Use one of Stripe's test tokens such as tok_visa.",
                    param="card[token]",
                    code="resource_missing",
                )
            return test_card, None
        if not typed:
            raise InvalidRequestError(
                "Pass card[token] (a test token: tok_visa, tok_mastercard, ...), or use a test "
                "PaymentMethod id such as pm_card_visa directly. Card numbers are taken from "
                "payflow.js's frame (a publishable key) only.",
                code="parameter_missing",
                param="card[token]",
            )
        if not publishable:
            # As Stripe: a server that sends card numbers handles card data; tokens avoid it.
            raise InvalidRequestError(
                "Sending card numbers to PayFlow's API with a secret key is unsafe: collect "
                "them with payflow.js (publishable key), or use test tokens such as tok_visa.",
                code="unsafe_raw_card_data",
                param="card[number]",
            )
        entered = entered_card(
            number or "",
            card.get("exp_month"),
            card.get("exp_year"),
            card.get("cvc"),
            now=self._r.now(),
        )
        return entered.card, (entered.exp_month, entered.exp_year)

    def update(
        self, merchant_id: str, pm_id: str, ctx: RequestContext, changes: dict[str, Any]
    ) -> Outcome:
        pm = self.retrieve(merchant_id, pm_id)
        if pm.customer is None:
            raise InvalidRequestError(
                "You must save this PaymentMethod to a customer before you can update it.",
                code="payment_method_unexpected_state",
            )
        update: dict[str, Any] = {"version": pm.version + 1}
        if "billing_details" in changes:
            update["billing_details"] = pm.billing_details.merged(changes["billing_details"] or {})
        if "metadata" in changes:
            update["metadata"] = updated_metadata(pm.metadata, changes["metadata"])
        if changes.get("allow_redisplay") is not None:
            update["allow_redisplay"] = changes["allow_redisplay"]
        after = pm.model_copy(update=update)
        batch = WriteBatch()
        self._r.add_version(batch, PAYMENT_METHODS, after, pm.version)
        self._r.add_event(batch, ctx, "payment_method.updated", after, pm)
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def plan_attach(
        self, merchant_id: str, pm_id: str, customer_id: str, *, set_up: bool = False
    ) -> Attach:
        """What attaching `pm_id` to the customer writes (`set_up`: authenticated for later
        off-session payments too). A test card's own id makes a new PaymentMethod from the
        card, as Stripe does, so the test card stays usable by all."""
        pm = self.retrieve(merchant_id, pm_id)
        before: PaymentMethod | None = pm
        if is_test_id(pm.id):
            before = None
            pm = rules.made_from(
                id=new_id("pm"), merchant_id=merchant_id, card=pm.test_card, created=self._r.now()
            )
        after = rules.attached(pm, customer_id)
        if set_up and not after.set_up:
            after = after.model_copy(update={"set_up": True, "version": pm.version + 1})
        return Attach(before, after)

    def add_attach(self, batch: WriteBatch, ctx: RequestContext, attach: Attach) -> None:
        before, after = attach.before, attach.after
        if before is None:
            self._r.add_new(batch, PAYMENT_METHODS, after)
        elif before == after:
            return  # attached to this customer already: nothing to write, nothing to announce
        else:
            self._r.add_version(batch, PAYMENT_METHODS, after, before.version)
        if before is None or before.customer != after.customer:
            self._r.add_event(batch, ctx, "payment_method.attached", after, before)

    def attach(
        self, merchant_id: str, pm_id: str, customer_id: str, ctx: RequestContext
    ) -> Outcome:
        attach = self.plan_attach(merchant_id, pm_id, customer_id)
        batch = WriteBatch()
        self.add_attach(batch, ctx, attach)
        return self._r.committer.commit(ctx, batch, Outcome(200, attach.after.to_api()))

    def add_set_up(self, batch: WriteBatch, pm: PaymentMethod) -> PaymentMethod:
        """Mark a method authenticated for off-session use without saving it to anyone (no
        event: Stripe has none for it). A test card's own id stands for the card: no mark."""
        if pm.set_up or is_test_id(pm.id):
            return pm
        after = pm.model_copy(update={"set_up": True, "version": pm.version + 1})
        self._r.add_version(batch, PAYMENT_METHODS, after, pm.version)
        return after

    def detach(self, merchant_id: str, pm_id: str, ctx: RequestContext) -> Outcome:
        pm = self.retrieve(merchant_id, pm_id)
        after = rules.detached(pm)
        batch = WriteBatch()
        self._r.add_version(batch, PAYMENT_METHODS, after, pm.version)
        self._r.add_event(batch, ctx, "payment_method.detached", after, pm)
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))
