"""Builds the services once per process from the settings, on first use (never at import)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from chalicelib.clock import SandboxClock
from chalicelib.concurrency import Once
from chalicelib.connectors.registry import ConnectorRegistry, load_default_routing
from chalicelib.dal.connectors import ConnectorStateStore
from chalicelib.dal.events import EventStore
from chalicelib.dal.idempotency import IdempotencyStore
from chalicelib.dal.ledger import LedgerStore
from chalicelib.dal.merchants import MerchantStore
from chalicelib.dal.objects import ObjectStore
from chalicelib.dal.ratelimit import RateLimitStore
from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.dal.webhooks import WebhookQueue, WebhookStore
from chalicelib.dal.workflows import PaymentWorkflows
from chalicelib.domain.webhooks import RetrySchedule
from chalicelib.errors import ResourceMissing
from chalicelib.faults import Faults
from chalicelib.services.charges import ChargeService
from chalicelib.services.circuits import CircuitBreakers
from chalicelib.services.connectors import ConnectorService
from chalicelib.services.context import Committer
from chalicelib.services.customers import CustomerService
from chalicelib.services.events import EventService
from chalicelib.services.expand import Expander
from chalicelib.services.ledger import LedgerService
from chalicelib.services.merchants import MerchantService
from chalicelib.services.orchestration import PaymentOrchestrator
from chalicelib.services.payment_intents import PaymentIntentService
from chalicelib.services.payment_methods import PaymentMethodService
from chalicelib.services.ratelimits import RateLimiter
from chalicelib.services.refunds import RefundService
from chalicelib.services.resources import Resources
from chalicelib.services.setup_intents import SetupIntentService
from chalicelib.settings import Settings, get_settings
from chalicelib.webhooks.delivery import Deliverer, EndpointHealth
from chalicelib.webhooks.endpoints import WebhookEndpointService
from chalicelib.webhooks.relay import Dispatcher, Relay
from chalicelib.webhooks.sender import PinnedSender

if TYPE_CHECKING:
    from chalicelib.services.analytics import AnalyticsService

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=10,
    # Threads of one process share clients (the sandbox serves requests concurrently).
    max_pool_connections=64,
)


@dataclass
class Services:
    """Everything a handler needs, wired together."""

    settings: Settings
    dynamodb: Any
    faults: Faults
    idempotency: IdempotencyStore
    objects: ObjectStore
    merchants: MerchantService
    rate_limiter: RateLimiter
    simulator_ledger: SimulatorLedger
    ledger: LedgerService
    refunds: RefundService
    connector_state: ConnectorStateStore
    connectors: ConnectorRegistry
    circuits: CircuitBreakers
    orchestrator: PaymentOrchestrator
    connector_admin: ConnectorService
    payment_intents: PaymentIntentService
    payment_methods: PaymentMethodService
    customers: CustomerService
    charges: ChargeService
    setup_intents: SetupIntentService
    expander: Expander
    clock: SandboxClock | None = None
    """The settable business clock, in the sandbox only (None on AWS: the wall clock)."""


def build_services(settings: Settings, session: boto3.session.Session | None = None) -> Services:
    """Wire the services for `settings`; clients come from `session` (default: a new one)."""
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb", config=_CLIENT_CONFIG)
    sandbox_clock = SandboxClock() if settings.sandbox else None
    clock = sandbox_clock or time.time
    faults = Faults(settings.faults)
    idempotency = IdempotencyStore(
        dynamodb,
        settings.idempotency_table,
        ttl_seconds=settings.idempotency_ttl_seconds,
        lease_ms=settings.idempotency_lease_ms,
    )
    objects = ObjectStore(dynamodb, settings.payments_table)
    simulator_ledger = SimulatorLedger(dynamodb, settings.simulator_table)
    ledger = LedgerStore(dynamodb, settings.payments_table, clock=clock)
    connector_state = ConnectorStateStore(dynamodb, settings.payments_table)
    registry = ConnectorRegistry(
        load_default_routing(),
        connector_state,
        simulator_ledger,
        stripe_api_key=settings.stripe_api_key,
        stripe_api_base=settings.stripe_api_base,
    )
    circuits = CircuitBreakers(connector_state)
    stepfunctions = session.client("stepfunctions", config=_CLIENT_CONFIG)
    workflows = PaymentWorkflows(stepfunctions, settings.payment_state_machine_arn)
    committer = Committer(dynamodb, idempotency, faults, clock=clock)
    resources = Resources(objects, committer)
    payment_methods = PaymentMethodService(resources)
    customers = CustomerService(resources, payment_methods)
    charges = ChargeService(resources)
    setup_intents = SetupIntentService(resources, payment_methods, customers)
    ledger_service = LedgerService(ledger, dynamodb, clock=clock)
    refunds = RefundService(
        objects,
        committer,
        ledger,
        registry,
        PaymentWorkflows(stepfunctions, settings.refund_state_machine_arn),
        charges,
        wait_ms=settings.confirm_wait_ms,
        clock=clock,
    )
    payment_intents = PaymentIntentService(
        objects,
        committer,
        registry,
        circuits,
        connector_state,
        workflows,
        ledger,
        payment_methods,
        customers,
        charges,
        confirm_wait_ms=settings.confirm_wait_ms,
        availability_delay_seconds=settings.availability_delay_seconds,
    )
    return Services(
        settings=settings,
        dynamodb=dynamodb,
        faults=faults,
        idempotency=idempotency,
        objects=objects,
        merchants=MerchantService(
            MerchantStore(dynamodb, settings.payments_table),
            admin_key=settings.admin_key,
            cache_seconds=settings.api_key_cache_seconds,
            default_rate_limits=settings.default_rate_limits(),
        ),
        rate_limiter=RateLimiter(
            RateLimitStore(dynamodb, settings.rate_limit_table)
            if settings.rate_limit_table
            else None,
            lease=settings.rate_limit_lease,
        ),
        simulator_ledger=simulator_ledger,
        ledger=ledger_service,
        refunds=refunds,
        connector_state=connector_state,
        connectors=registry,
        circuits=circuits,
        orchestrator=PaymentOrchestrator(registry, circuits, connector_state),
        connector_admin=ConnectorService(registry, circuits, connector_state),
        payment_intents=payment_intents,
        payment_methods=payment_methods,
        customers=customers,
        charges=charges,
        setup_intents=setup_intents,
        expander=Expander(
            {
                "pi_": lambda m, i: _body(lambda: payment_intents.retrieve(m, i)),
                "cus_": lambda m, i: _body(lambda: customers.retrieve(m, i)),
                "ch_": lambda m, i: _body(lambda: charges.retrieve(m, i)),
                "pm_": lambda m, i: _body(lambda: payment_methods.retrieve(m, i)),
                "re_": lambda m, i: _body(lambda: refunds.retrieve(m, i)),
                "txn_": lambda m, i: ledger.transaction(m, i),
                "seti_": lambda m, i: _body(lambda: setup_intents.retrieve(m, i)),
                "setatt_": lambda m, i: _body(lambda: setup_intents.attempt(m, i)),
            }
        ),
        clock=sandbox_clock,
    )


def _body(read: Callable[[], Any]) -> dict[str, Any] | None:
    """An expansion's object, or None (the id stays) when it cannot be read."""
    try:
        return read().to_api()  # type: ignore[no-any-return]
    except ResourceMissing:
        return None


@Once
def services() -> Services:
    """The process's services, built on first use from the environment's settings."""
    return build_services(get_settings())


@dataclass
class WebhookServices:
    """The webhook side: endpoint and event APIs, the outbox relay and the delivery handler."""

    endpoints: WebhookEndpointService
    events: EventService
    relay: Relay
    deliverer: Deliverer
    queue: WebhookQueue


def build_webhook_services(
    settings: Settings,
    faults: Faults,
    api_dynamodb: Any,
    session: boto3.session.Session | None = None,
) -> WebhookServices:
    """Wire the webhook services. The relay and the delivery handler are Lambda functions of
    their own: they get their own DynamoDB client, as they would in their own process."""
    session = session or boto3.session.Session()
    worker_dynamodb = session.client("dynamodb", config=_CLIENT_CONFIG)
    queue = WebhookQueue(
        session.client("sqs", config=_CLIENT_CONFIG),
        settings.webhook_queue_url or "",
        settings.webhook_dlq_url,
    )
    schedule = RetrySchedule.parse(settings.webhook_retry_schedule)

    def stores(client: Any) -> tuple[WebhookStore, EventStore]:
        objects = ObjectStore(client, settings.payments_table)
        return (
            WebhookStore(client, settings.payments_table, objects),
            EventStore(client, settings.payments_table, objects),
        )

    api_store, api_events = stores(api_dynamodb)
    worker_store, worker_events = stores(worker_dynamodb)
    # Checked again at send time, on the one resolution the connection then uses: a name may
    # resolve elsewhere than when it was registered. The sandbox allows private receivers.
    sender = PinnedSender(settings.webhook_timeout_seconds, allow_private=settings.sandbox)
    return WebhookServices(
        endpoints=WebhookEndpointService(
            api_store,
            api_events,
            Dispatcher(api_store, queue, schedule, faults),
            allow_private_urls=settings.sandbox,
        ),
        events=EventService(api_events),
        relay=Relay(worker_store, Dispatcher(worker_store, queue, schedule, faults), faults),
        deliverer=Deliverer(
            worker_store,
            worker_events,
            queue,
            sender,
            schedule,
            EndpointHealth(
                worker_store, disable_after_seconds=settings.webhook_disable_after_seconds
            ),
            faults=faults,
        ),
        queue=queue,
    )


@Once
def webhooks() -> WebhookServices:
    """The process's webhook services, built on first use."""
    base = services()
    return build_webhook_services(base.settings, base.faults, base.dynamodb)


@Once
def analytics() -> AnalyticsService:
    """The process's analytics service (counters, reports, connector alerts), built on first
    use; ResourceMissing (a 404) when the deployment has no analytics table."""
    # Imported here: only the analytics routes and the rollup consumer pay for it.
    from chalicelib.dal.analytics import AnalyticsStore
    from chalicelib.services.analytics import AnalyticsService

    base = services()
    table = base.settings.analytics_table
    if not table:
        raise ResourceMissing("Analytics are not configured in this deployment.")
    store = AnalyticsStore(base.dynamodb, table, base.settings.payments_table, base.objects)
    return AnalyticsService(store, clock=base.clock or time.time)
