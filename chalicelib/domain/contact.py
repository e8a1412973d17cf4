"""Addresses, billing details and shipping: the contact records Stripe's objects share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Address(BaseModel):
    """A postal address; every line optional, as in Stripe."""

    city: str | None = None
    country: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    state: str | None = None

    def to_api(self) -> dict[str, Any]:
        return self.model_dump()

    def merged(self, changes: dict[str, Any]) -> Address:
        """This address with the lines a caller sent replaced."""
        return self.model_copy(update=changes)


class BillingDetails(BaseModel):
    """Who pays with a payment method, and where they are billed."""

    address: Address = Address()
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    tax_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {**self.model_dump(exclude={"address"}), "address": self.address.to_api()}

    def merged(self, changes: dict[str, Any]) -> BillingDetails:
        """Stripe's update: sent fields replace, an address merges line by line."""
        update = {k: v for k, v in changes.items() if k != "address"}
        if "address" in changes:
            update["address"] = self.address.merged(changes["address"] or {})
        return self.model_copy(update=update)


class Shipping(BaseModel):
    """Where goods go: a name and an address (required together, as Stripe requires)."""

    address: Address
    name: str
    carrier: str | None = None
    phone: str | None = None
    tracking_number: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {**self.model_dump(exclude={"address"}), "address": self.address.to_api()}


def shipping_api(shipping: Shipping | None) -> dict[str, Any] | None:
    return shipping.to_api() if shipping else None
