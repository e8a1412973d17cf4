"""The Customer: who pays, their contact details, and their saved payment methods' default.

Pure rules, no I/O: the service reads a Customer, calls one of these, and writes the result on
condition of the version it read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.contact import Address, Shipping, shipping_api
from chalicelib.domain.metadata import merge_metadata, updated_metadata


class Customer(BaseModel):
    """A Customer as stored: Stripe's fields plus the version writes are conditional on."""

    id: str
    merchant_id: str
    created: int
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    description: str | None = None
    address: Address | None = None
    shipping: Shipping | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    default_payment_method: str | None = None
    """invoice_settings.default_payment_method: the method off-session payments use by default."""
    preferred_locales: list[str] = Field(default_factory=list)
    deleted: bool = False
    """Stripe keeps a deleted customer's id: retrieving it answers `deleted: true`."""
    version: int = 1

    def to_api(self) -> dict[str, Any]:
        if self.deleted:
            return {"id": self.id, "object": "customer", "deleted": True}
        return {
            "id": self.id,
            "object": "customer",
            "address": self.address.to_api() if self.address else None,
            "balance": 0,
            "created": self.created,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": self.description,
            "email": self.email,
            "invoice_prefix": None,
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": self.default_payment_method,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "name": self.name,
            "next_invoice_sequence": 1,
            "phone": self.phone,
            "preferred_locales": list(self.preferred_locales),
            "shipping": shipping_api(self.shipping),
            "tax_exempt": "none",
            "test_clock": None,
        }


EVENT_TYPES = ("customer.created", "customer.updated", "customer.deleted")
"""What Customer changes announce."""

CONTACT_FIELDS = ("email", "name", "phone", "description", "preferred_locales")


def create(*, id: str, merchant_id: str, created: int, fields: dict[str, Any]) -> Customer:
    """A new Customer from the create call's parameters (already validated)."""
    return Customer(
        id=id,
        merchant_id=merchant_id,
        created=created,
        **{k: fields[k] for k in CONTACT_FIELDS if fields.get(k) is not None},
        address=Address(**fields["address"]) if fields.get("address") else None,
        shipping=Shipping.model_validate(fields["shipping"]) if fields.get("shipping") else None,
        metadata=merge_metadata({}, fields.get("metadata")),
        default_payment_method=(fields.get("invoice_settings") or {}).get("default_payment_method"),
    )


def update(customer: Customer, changes: dict[str, Any]) -> Customer:
    """Stripe's update: sent fields replace (an empty string clears), metadata merges."""
    fields: dict[str, Any] = {
        k: (v if v != "" else None) for k, v in changes.items() if k in CONTACT_FIELDS
    }
    if "preferred_locales" in fields and fields["preferred_locales"] is None:
        fields["preferred_locales"] = []
    if "address" in changes:
        address = changes["address"]
        fields["address"] = (customer.address or Address()).merged(address) if address else None
    if "shipping" in changes:
        fields["shipping"] = (
            Shipping.model_validate(changes["shipping"]) if changes["shipping"] else None
        )
    if "metadata" in changes:
        fields["metadata"] = updated_metadata(customer.metadata, changes["metadata"])
    if "invoice_settings" in changes:
        settings = changes["invoice_settings"] or {}
        if "default_payment_method" in settings:
            fields["default_payment_method"] = settings["default_payment_method"] or None
    return customer.model_copy(update={**fields, "version": customer.version + 1})


def deleted(customer: Customer) -> Customer:
    """The tombstone a delete leaves."""
    return customer.model_copy(update={"deleted": True, "version": customer.version + 1})
