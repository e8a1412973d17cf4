"""Customers: create, read, update, delete and list, each change with its event."""

from __future__ import annotations

from typing import Any

from chalicelib.dal.dynamo import WriteBatch
from chalicelib.domain import customers as rules
from chalicelib.domain.customers import Customer
from chalicelib.domain.ids import new_id
from chalicelib.errors import InvalidRequestError
from chalicelib.services.context import Outcome, RequestContext
from chalicelib.services.payment_methods import PaymentMethodService
from chalicelib.services.resources import Resource, Resources


def _top_level(customer: Customer) -> dict[str, str]:
    attrs = {"status": "deleted" if customer.deleted else "active"}
    if customer.email:
        attrs["email"] = customer.email
    return attrs


CUSTOMERS: Resource[Customer] = Resource(
    kind="customer", model=Customer, url="/v1/customers", noun="customer", top_level=_top_level
)


class CustomerService:
    """Every Customer operation; writes are conditional on the version read."""

    def __init__(self, resources: Resources, payment_methods: PaymentMethodService) -> None:
        self._r = resources
        self._payment_methods = payment_methods

    def retrieve(self, merchant_id: str, customer_id: str) -> Customer:
        return self._r.get(CUSTOMERS, merchant_id, customer_id, param="customer")

    def active(self, merchant_id: str, customer_id: str, *, param: str = "customer") -> Customer:
        """A customer that exists and is not deleted (what payments and saved methods need)."""
        customer = self._r.get(CUSTOMERS, merchant_id, customer_id, param=param)
        if customer.deleted:
            raise InvalidRequestError(
                f"No such customer: '{customer_id}'; it has been deleted.",
                code="resource_missing",
                param=param,
            )
        return customer

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        email: str | None,
    ) -> dict[str, Any]:
        return self._r.list_body(
            CUSTOMERS,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters={"status": "active", "email": email},
        )

    def search(
        self, merchant_id: str, *, query: str, limit: int, page: str | None
    ) -> dict[str, Any]:
        """Customers matching `query`; deleted ones are not found, as in Stripe."""
        found = self._r.search_body(CUSTOMERS, merchant_id, query=query, limit=limit, page=page)
        found["data"] = [c for c in found["data"] if not c.get("deleted")]
        return found

    def create(self, merchant_id: str, ctx: RequestContext, fields: dict[str, Any]) -> Outcome:
        customer_id = ctx.claim.object_id if ctx.claim else new_id("cus")
        if ctx.claim is not None and ctx.claim.taken_over:
            existing = self._r.find(CUSTOMERS, merchant_id, customer_id)
            if existing is not None:
                return Outcome(200, existing.to_api())
        customer = rules.create(
            id=customer_id, merchant_id=merchant_id, created=self._r.now(), fields=fields
        )
        batch = WriteBatch()
        default = customer.default_payment_method
        if fields.get("payment_method"):
            # Saved in the same transaction: the customer never exists without it.
            attach = self._payment_methods.plan_attach(
                merchant_id, fields["payment_method"], customer.id
            )
            if default is not None and default not in (attach.after.id, fields["payment_method"]):
                raise _not_attached(default)
            if default is not None:
                customer = customer.model_copy(update={"default_payment_method": attach.after.id})
            self._payment_methods.add_attach(batch, ctx, attach)
        elif default is not None:
            raise _not_attached(default)
        self._r.add_new(batch, CUSTOMERS, customer)
        self._r.add_event(batch, ctx, "customer.created", customer)
        return self._r.committer.commit(ctx, batch, Outcome(200, customer.to_api()))

    def update(
        self, merchant_id: str, customer_id: str, ctx: RequestContext, changes: dict[str, Any]
    ) -> Outcome:
        customer = self.active(merchant_id, customer_id)
        after = rules.update(customer, changes)
        default = after.default_payment_method
        if default is not None and default != customer.default_payment_method:
            pm = self._payment_methods.retrieve(
                merchant_id, default, param="invoice_settings[default_payment_method]"
            )
            if pm.customer != customer.id:
                raise _not_attached(default)
        batch = WriteBatch()
        self._r.add_version(batch, CUSTOMERS, after, customer.version)
        self._r.add_event(batch, ctx, "customer.updated", after, customer)
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def delete(self, merchant_id: str, customer_id: str, ctx: RequestContext) -> Outcome:
        customer = self.active(merchant_id, customer_id)
        tombstone = rules.deleted(customer)
        batch = WriteBatch()
        self._r.add_version(batch, CUSTOMERS, tombstone, customer.version)
        # Stripe's customer.deleted carries the customer as it was.
        self._r.add_event(batch, ctx, "customer.deleted", customer)
        return self._r.committer.commit(ctx, batch, Outcome(200, tombstone.to_api()))


def _not_attached(payment_method: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The PaymentMethod '{payment_method}' is not attached to this customer. Attach it "
        "before making it the default.",
        code="resource_missing",
        param="invoice_settings[default_payment_method]",
    )
