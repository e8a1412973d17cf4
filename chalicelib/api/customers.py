"""/v1/customers and /v1/payment_methods: Stripe's Customers and PaymentMethods APIs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services
from chalicelib.errors import ResourceMissing

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p
    from chalicelib.services.context import Outcome

customers = Blueprint(__name__)
bp = customers


@bp.route("/v1/customers", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CreateCustomer", creates="cus", returns="customer")
def create_customer(call: ApiCall) -> Outcome:
    return services().customers.create(call.merchant_id, call.context, call.params.changes())


@bp.route("/v1/customers", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListCustomers", returns="list:customer")
def list_customers(call: ApiCall) -> dict:
    params: p.ListCustomers = call.params
    return services().customers.list_page(
        call.merchant_id,
        **params.page(),
        email=params.email,
    )


@bp.route("/v1/customers/search", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="SearchParams", returns="list:customer")
def search_customers(call: ApiCall) -> dict:
    params: p.SearchParams = call.params
    return services().customers.search(
        call.merchant_id, query=params.query, limit=params.limit, page=params.page
    )


@bp.route("/v1/customers/{customer}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="customer")
def retrieve_customer(call: ApiCall, customer: str) -> dict:
    return services().customers.retrieve(call.merchant_id, customer).to_api()


@bp.route("/v1/customers/{customer}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateCustomer", returns="customer")
def update_customer(call: ApiCall, customer: str) -> Outcome:
    return services().customers.update(
        call.merchant_id, customer, call.context, call.params.changes()
    )


@bp.route("/v1/customers/{customer}", methods=["DELETE"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def delete_customer(call: ApiCall, customer: str) -> Outcome:
    return services().customers.delete(call.merchant_id, customer, call.context)


@bp.route(
    "/v1/customers/{customer}/payment_methods", methods=["GET"], content_types=ANY_CONTENT_TYPE
)
@endpoint(bp, params="ListCustomerPaymentMethods", returns="list:payment_method")
def list_customer_payment_methods(call: ApiCall, customer: str) -> dict:
    params: p.ListCustomerPaymentMethods = call.params
    services().customers.retrieve(call.merchant_id, customer)
    return services().payment_methods.list_page(
        call.merchant_id,
        **params.page(),
        customer=customer,
        type=params.type,
        url=f"/v1/customers/{customer}/payment_methods",
    )


@bp.route(
    "/v1/customers/{customer}/payment_methods/{payment_method}",
    methods=["GET"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="Params", returns="payment_method")
def retrieve_customer_payment_method(call: ApiCall, customer: str, payment_method: str) -> dict:
    services().customers.retrieve(call.merchant_id, customer)
    pm = services().payment_methods.retrieve(call.merchant_id, payment_method)
    if pm.customer != customer:
        raise ResourceMissing(f"No such PaymentMethod: '{payment_method}'", param="payment_method")
    return pm.to_api()


@bp.route("/v1/payment_methods", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CreatePaymentMethod", auth="client", creates="pm", returns="payment_method")
def create_payment_method(call: ApiCall) -> Outcome:
    params: p.CreatePaymentMethod = call.params
    return services().payment_methods.create(
        call.merchant_id,
        call.context,
        type=params.type,
        card=params.card.model_dump() if params.card else None,
        vpa=params.upi.vpa if params.upi else None,
        billing_details=(
            params.billing_details.model_dump(exclude_unset=True)
            if params.billing_details
            else None
        ),
        metadata=params.metadata,
        allow_redisplay=params.allow_redisplay,
        publishable=call.publishable,
    )


@bp.route("/v1/payment_methods", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListPaymentMethods", returns="list:payment_method")
def list_payment_methods(call: ApiCall) -> dict:
    params: p.ListPaymentMethods = call.params
    return services().payment_methods.list_page(
        call.merchant_id,
        **params.page(),
        customer=params.customer,
        type=params.type,
    )


@bp.route("/v1/payment_methods/{payment_method}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="payment_method")
def retrieve_payment_method(call: ApiCall, payment_method: str) -> dict:
    return services().payment_methods.retrieve(call.merchant_id, payment_method).to_api()


@bp.route("/v1/payment_methods/{payment_method}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdatePaymentMethod", returns="payment_method")
def update_payment_method(call: ApiCall, payment_method: str) -> Outcome:
    return services().payment_methods.update(
        call.merchant_id, payment_method, call.context, call.params.changes()
    )


@bp.route(
    "/v1/payment_methods/{payment_method}/attach",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="AttachPaymentMethod", creates="pm", returns="payment_method")
def attach_payment_method(call: ApiCall, payment_method: str) -> Outcome:
    customer = services().customers.active(call.merchant_id, call.params.customer)
    return services().payment_methods.attach(
        call.merchant_id, payment_method, customer.id, call.context
    )


@bp.route(
    "/v1/payment_methods/{payment_method}/detach",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="Params", returns="payment_method")
def detach_payment_method(call: ApiCall, payment_method: str) -> Outcome:
    return services().payment_methods.detach(call.merchant_id, payment_method, call.context)
