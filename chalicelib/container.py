"""Builds the services once per process from the settings, each on first use (never at import).

One Lambda function runs one handler: the webhook deliverer needs no PaymentIntent service, a
refund task no setup intents. So each service is a lazy attribute of `Services`, built (and its
module imported) the first time a handler asks for it, together with what it depends on and
nothing else; once built it is shared by every later caller in the process.

boto3 itself is imported here at import time on purpose: every function's first call needs it,
and in Lambda the init phase that imports the handler module is where that cost belongs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import boto3
from botocore.config import Config

from chalicelib.concurrency import Once

if TYPE_CHECKING:
    from chalicelib.clock import SandboxClock
    from chalicelib.connectors.registry import ConnectorRegistry
    from chalicelib.connectors.simulator_customer import SimulatorCustomer
    from chalicelib.connectors.simulator_settlement import SimulatorSettlement
    from chalicelib.connectors.simulator_webhooks import SimulatorOutbox
    from chalicelib.dal.connectors import ConnectorStateStore
    from chalicelib.dal.events import EventStore
    from chalicelib.dal.idempotency import IdempotencyStore
    from chalicelib.dal.ledger import LedgerStore
    from chalicelib.dal.objects import ObjectStore
    from chalicelib.dal.psp_events import PspEventStore
    from chalicelib.dal.simulator import SimulatorLedger
    from chalicelib.dal.webhooks import WebhookQueue, WebhookStore
    from chalicelib.dal.workflows import PaymentWorkflows
    from chalicelib.domain.webhooks import RetrySchedule
    from chalicelib.faults import Faults
    from chalicelib.services.charges import ChargeService
    from chalicelib.services.circuits import CircuitBreakers
    from chalicelib.services.connectors import ConnectorService
    from chalicelib.services.context import Committer
    from chalicelib.services.customers import CustomerService
    from chalicelib.services.disputes import DisputeService
    from chalicelib.services.events import EventService
    from chalicelib.services.expand import Expander
    from chalicelib.services.ledger import LedgerService
    from chalicelib.services.merchants import MerchantService
    from chalicelib.services.orchestration import PaymentOrchestrator
    from chalicelib.services.payment_intents import PaymentIntentService
    from chalicelib.services.payment_methods import PaymentMethodService
    from chalicelib.services.psp_events import PspEventService
    from chalicelib.services.ratelimits import RateLimiter
    from chalicelib.services.reconciliation import ReconciliationService
    from chalicelib.services.refunds import RefundService
    from chalicelib.services.resources import Resources
    from chalicelib.services.setup_intents import SetupIntentService
    from chalicelib.services.simulator import SimulatorService
    from chalicelib.settings import Settings
    from chalicelib.webhooks.delivery import Deliverer
    from chalicelib.webhooks.endpoints import WebhookEndpointService
    from chalicelib.webhooks.relay import Relay

if TYPE_CHECKING:
    from chalicelib.services.analytics import AnalyticsService

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=10,
    # Threads of one process share clients (the sandbox serves requests concurrently).
    max_pool_connections=64,
)

Owner = TypeVar("Owner", bound="_Lazily")
Built = TypeVar("Built")


class _Lazily:
    """Base of the containers: one reentrant lock per instance, under which lazy attributes
    are built (a service's builder asks for the ones it depends on)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()


class lazy(Generic[Owner, Built]):  # a decorator, lower case like functools.cached_property
    """An attribute built by the decorated method on first access, once per instance however
    many threads ask at the same time (functools.cached_property has no lock from Python
    3.12): the services hold caches and circuit state that must exist once per process."""

    def __init__(self, build: Callable[[Owner], Built]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> lazy[Owner, Built]: ...

    @overload
    def __get__(self, instance: Owner, owner: type) -> Built: ...

    def __get__(self, instance: Owner | None, owner: type) -> lazy[Owner, Built] | Built:
        if instance is None:
            return self
        # Called only while the instance's __dict__ lacks the name: once built, the value
        # stored there is what attribute access returns, without this method or the lock.
        with instance._lock:
            if self._name not in instance.__dict__:
                instance.__dict__[self._name] = self._build(instance)
            value: Built = instance.__dict__[self._name]
            return value

    def is_built(self, instance: Owner) -> bool:
        """Whether `instance` has built this attribute yet."""
        return self._name in instance.__dict__


class Services(_Lazily):
    """Everything a handler needs, wired together, each piece built when first asked for."""

    def __init__(self, settings: Settings, session: boto3.session.Session | None = None) -> None:
        super().__init__()
        self.settings = settings
        self._session = session

    @lazy
    def session(self) -> boto3.session.Session:
        """Where the AWS clients come from (default: a new boto3 session)."""
        return self._session or boto3.session.Session()

    @lazy
    def dynamodb(self) -> Any:
        return self.session.client("dynamodb", config=_CLIENT_CONFIG)

    @lazy
    def stepfunctions(self) -> Any:
        return self.session.client("stepfunctions", config=_CLIENT_CONFIG)

    def clients(self) -> list[Any]:
        """Every AWS client the services use, built now (a benchmark counts their calls)."""
        return [self.dynamodb, self.stepfunctions]

    @lazy
    def clock(self) -> SandboxClock | None:
        """The settable business clock, in the sandbox only (None on AWS: the wall clock)."""
        from chalicelib.clock import SandboxClock

        return SandboxClock() if self.settings.sandbox else None

    @property
    def business_time(self) -> Callable[[], float]:
        """What business timestamps are read from: the sandbox clock, else the wall clock."""
        return self.clock or time.time

    @lazy
    def faults(self) -> Faults:
        from chalicelib.faults import Faults

        return Faults(self.settings.faults)

    @lazy
    def idempotency(self) -> IdempotencyStore:
        from chalicelib.dal.idempotency import IdempotencyStore

        return IdempotencyStore(
            self.dynamodb,
            self.settings.idempotency_table,
            ttl_seconds=self.settings.idempotency_ttl_seconds,
            lease_ms=self.settings.idempotency_lease_ms,
        )

    @lazy
    def objects(self) -> ObjectStore:
        from chalicelib.dal.objects import ObjectStore

        return ObjectStore(self.dynamodb, self.settings.payments_table)

    @lazy
    def simulator_ledger(self) -> SimulatorLedger:
        from chalicelib.dal.simulator import SimulatorLedger

        return SimulatorLedger(self.dynamodb, self.settings.simulator_table)

    @lazy
    def simulator_settlement(self) -> SimulatorSettlement:
        from chalicelib.connectors.simulator_settlement import SimulatorSettlement

        return SimulatorSettlement(self.simulator_ledger)

    @lazy
    def simulator_outbox(self) -> SimulatorOutbox:
        from chalicelib.connectors.simulator_webhooks import SimulatorOutbox

        return SimulatorOutbox(self.simulator_ledger, clock=self.business_time)

    @lazy
    def simulator_customer(self) -> SimulatorCustomer:
        from chalicelib.connectors.simulator_customer import SimulatorCustomer

        return SimulatorCustomer(
            self.simulator_ledger, self.simulator_outbox, clock=self.business_time
        )

    @lazy
    def simulator(self) -> SimulatorService:
        from chalicelib.services.simulator import SimulatorService

        return SimulatorService(
            self.simulator_customer,
            self.simulator_outbox,
            self.connectors,
            self.payment_intents,
            api_url=self.settings.api_url,
            webhook_secret=self.settings.simulator_webhook_secret,
            post=self._post_simulator_webhook,
        )

    def _post_simulator_webhook(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        # The HTTP client is imported on the first webhook sent, not when the API's routes
        # build this service to decide or sweep.
        from chalicelib.connectors.simulator_webhooks import post_with
        from chalicelib.webhooks.sender import PinnedSender

        sender = PinnedSender(
            self.settings.webhook_timeout_seconds, allow_private=self.settings.sandbox
        )
        return post_with(sender)(url, body, headers)

    @lazy
    def ledger_store(self) -> LedgerStore:
        from chalicelib.dal.ledger import LedgerStore

        return LedgerStore(self.dynamodb, self.settings.payments_table, clock=self.business_time)

    @lazy
    def connector_state(self) -> ConnectorStateStore:
        from chalicelib.dal.connectors import ConnectorStateStore

        return ConnectorStateStore(self.dynamodb, self.settings.payments_table)

    @lazy
    def psp_event_store(self) -> PspEventStore:
        from chalicelib.dal.psp_events import PspEventStore

        return PspEventStore(self.dynamodb, self.settings.payments_table, clock=self.business_time)

    @lazy
    def connectors(self) -> ConnectorRegistry:
        from chalicelib.connectors.adyen_connector import AdyenAccount
        from chalicelib.connectors.razorpay_connector import RazorpayAccount
        from chalicelib.connectors.registry import ConnectorRegistry, load_default_routing

        settings = self.settings
        return ConnectorRegistry(
            load_default_routing(),
            self.connector_state,
            self.simulator_ledger,
            stripe_api_key=settings.stripe_api_key,
            stripe_api_base=settings.stripe_api_base,
            razorpay=RazorpayAccount(
                settings.razorpay_key_id, settings.razorpay_key_secret, settings.razorpay_api_base
            ),
            adyen=AdyenAccount(
                settings.adyen_api_key,
                settings.adyen_merchant_account,
                settings.adyen_checkout_base,
                report_user=settings.adyen_report_user,
                report_password=settings.adyen_report_password,
                report_base=settings.adyen_report_base,
            ),
            psp_events=self.psp_event_store,
            # Only an Adyen report reads it, by PaymentIntent: the store is built then.
            owner=lambda pi_id: self.objects.owner("payment_intent", pi_id),
            simulator_customer=self.simulator_customer,
            clock=self.business_time,
        )

    @lazy
    def psp_events(self) -> PspEventService:
        from chalicelib.services.psp_events import PspEventService, WebhookSecrets

        return PspEventService(
            self.connectors.defaults,
            WebhookSecrets(
                stripe=self.settings.stripe_webhook_secret,
                razorpay=self.settings.razorpay_webhook_secret,
                adyen=self.settings.adyen_hmac_key,
                simulator=self.settings.simulator_webhook_secret,
            ),
            self.psp_event_store,
            self.payment_intents,
            self.disputes,
            self.refunds,
            self.simulator_settlement,
        )

    @lazy
    def disputes(self) -> DisputeService:
        from chalicelib.dal.disputes import DisputeRefs
        from chalicelib.services.disputes import DisputeService

        return DisputeService(
            self.resources,
            self.ledger_store,
            DisputeRefs(self.dynamodb, self.settings.payments_table),
        )

    @lazy
    def circuits(self) -> CircuitBreakers:
        from chalicelib.services.circuits import CircuitBreakers

        return CircuitBreakers(self.connector_state)

    @lazy
    def committer(self) -> Committer:
        from chalicelib.services.context import Committer

        return Committer(self.dynamodb, self.idempotency, self.faults, clock=self.business_time)

    @lazy
    def resources(self) -> Resources:
        from chalicelib.services.resources import Resources

        return Resources(self.objects, self.committer)

    @lazy
    def payment_methods(self) -> PaymentMethodService:
        from chalicelib.services.payment_methods import PaymentMethodService

        return PaymentMethodService(self.resources)

    @lazy
    def customers(self) -> CustomerService:
        from chalicelib.services.customers import CustomerService

        return CustomerService(self.resources, self.payment_methods)

    @lazy
    def charges(self) -> ChargeService:
        from chalicelib.services.charges import ChargeService

        return ChargeService(self.resources)

    @lazy
    def setup_intents(self) -> SetupIntentService:
        from chalicelib.services.setup_intents import SetupIntentService

        return SetupIntentService(self.resources, self.payment_methods, self.customers)

    @lazy
    def ledger(self) -> LedgerService:
        from chalicelib.services.ledger import LedgerService

        return LedgerService(self.ledger_store, self.dynamodb, clock=self.business_time)

    def _workflows(self, state_machine_arn: str) -> PaymentWorkflows:
        from chalicelib.dal.workflows import PaymentWorkflows

        return PaymentWorkflows(self.stepfunctions, state_machine_arn)

    @lazy
    def refunds(self) -> RefundService:
        from chalicelib.services.refunds import RefundService

        return RefundService(
            self.objects,
            self.committer,
            self.ledger_store,
            self.connectors,
            self._workflows(self.settings.refund_state_machine_arn),
            self.charges,
            wait_ms=self.settings.confirm_wait_ms,
            clock=self.business_time,
        )

    @lazy
    def reconciliation(self) -> ReconciliationService:
        from chalicelib.dal.merchants import MerchantStore
        from chalicelib.dal.reconciliation import ReconciliationStore
        from chalicelib.errors import ResourceMissing
        from chalicelib.services.reconciliation import ReconciliationService

        arn = self.settings.reconciliation_state_machine_arn
        if not arn:
            raise ResourceMissing("Reconciliation is not configured in this deployment.")
        return ReconciliationService(
            self.objects,
            ReconciliationStore(self.dynamodb, self.settings.payments_table),
            self.committer,
            self.ledger_store,
            self.connectors,
            self.simulator_settlement,
            self._workflows(arn),
            lambda: self.payment_intents,
            self.dynamodb,
            disputes=lambda: self.disputes,
            merchant_ids=lambda: MerchantStore(self.dynamodb, self.settings.payments_table).ids(),
            sandbox=self.settings.sandbox,
            clock=self.business_time,
        )

    @lazy
    def payment_intents(self) -> PaymentIntentService:
        from chalicelib.services.payment_intents import PaymentIntentService

        return PaymentIntentService(
            self.objects,
            self.committer,
            self.connectors,
            self.circuits,
            self.connector_state,
            self._workflows(self.settings.payment_state_machine_arn),
            self.ledger_store,
            self.payment_methods,
            self.customers,
            self.charges,
            self.orchestrator,
            confirm_wait_ms=self.settings.confirm_wait_ms,
            availability_delay_seconds=self.settings.availability_delay_seconds,
        )

    @lazy
    def merchants(self) -> MerchantService:
        from chalicelib.dal.merchants import MerchantStore
        from chalicelib.services.merchants import MerchantService

        return MerchantService(
            MerchantStore(self.dynamodb, self.settings.payments_table),
            admin_key=self.settings.admin_key,
            cache_seconds=self.settings.api_key_cache_seconds,
            default_rate_limits=self.settings.default_rate_limits(),
        )

    @lazy
    def rate_limiter(self) -> RateLimiter:
        from chalicelib.dal.ratelimit import RateLimitStore
        from chalicelib.services.ratelimits import RateLimiter

        table = self.settings.rate_limit_table
        return RateLimiter(
            RateLimitStore(self.dynamodb, table) if table else None,
            lease=self.settings.rate_limit_lease,
        )

    @lazy
    def orchestrator(self) -> PaymentOrchestrator:
        from chalicelib.services.orchestration import PaymentOrchestrator

        return PaymentOrchestrator(self.connectors, self.circuits, self.connector_state)

    @lazy
    def connector_admin(self) -> ConnectorService:
        from chalicelib.services.connectors import ConnectorService

        return ConnectorService(self.connectors, self.circuits, self.connector_state)

    @lazy
    def expander(self) -> Expander:
        from chalicelib.services.expand import Expander

        return Expander(
            {
                "pi_": lambda m, i: _body(lambda: self.payment_intents.retrieve(m, i)),
                "cus_": lambda m, i: _body(lambda: self.customers.retrieve(m, i)),
                "ch_": lambda m, i: _body(lambda: self.charges.retrieve(m, i)),
                "pm_": lambda m, i: _body(lambda: self.payment_methods.retrieve(m, i)),
                "re_": lambda m, i: _body(lambda: self.refunds.retrieve(m, i)),
                "du_": lambda m, i: _body(lambda: self.disputes.retrieve(m, i)),
                "txn_": lambda m, i: self.ledger_store.transaction(m, i),
                "seti_": lambda m, i: _body(lambda: self.setup_intents.retrieve(m, i)),
                "setatt_": lambda m, i: _body(lambda: self.setup_intents.attempt(m, i)),
            }
        )


def build_services(settings: Settings, session: boto3.session.Session | None = None) -> Services:
    """The services for `settings`; clients come from `session` (default: a new one)."""
    return Services(settings, session)


def _body(read: Callable[[], Any]) -> dict[str, Any] | None:
    """An expansion's object, or None (the id stays) when it cannot be read."""
    from chalicelib.errors import ResourceMissing

    try:
        return read().to_api()  # type: ignore[no-any-return]
    except ResourceMissing:
        return None


@Once
def services() -> Services:
    """The process's services, built on first use from the environment's settings."""
    from chalicelib.settings import get_settings

    return build_services(get_settings())


class WebhookServices(_Lazily):
    """The webhook side: endpoint and event APIs, the outbox relay and the delivery handler.
    The relay and the delivery handler are Lambda functions of their own: they get their own
    DynamoDB client, as they would in their own process; the APIs use the services' client."""

    def __init__(
        self,
        settings: Settings,
        faults: Faults,
        api_dynamodb: Callable[[], Any],
        session: boto3.session.Session | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.faults = faults
        self._api_dynamodb = api_dynamodb
        self._session = session

    @lazy
    def session(self) -> boto3.session.Session:
        return self._session or boto3.session.Session()

    @lazy
    def worker_dynamodb(self) -> Any:
        return self.session.client("dynamodb", config=_CLIENT_CONFIG)

    def clients(self) -> list[Any]:
        """The webhook side's own AWS clients, built now (the APIs' DynamoDB client is among
        `Services.clients()`)."""
        return [self.worker_dynamodb, self.sqs]

    @lazy
    def sqs(self) -> Any:
        return self.session.client("sqs", config=_CLIENT_CONFIG)

    @lazy
    def queue(self) -> WebhookQueue:
        from chalicelib.dal.webhooks import WebhookQueue

        return WebhookQueue(
            self.sqs,
            self.settings.webhook_queue_url or "",
            self.settings.webhook_dlq_url,
        )

    @lazy
    def schedule(self) -> RetrySchedule:
        from chalicelib.domain.webhooks import RetrySchedule

        return RetrySchedule.parse(self.settings.webhook_retry_schedule)

    def _stores(self, client: Any) -> tuple[WebhookStore, EventStore]:
        from chalicelib.dal.events import EventStore
        from chalicelib.dal.objects import ObjectStore
        from chalicelib.dal.webhooks import WebhookStore

        objects = ObjectStore(client, self.settings.payments_table)
        return (
            WebhookStore(client, self.settings.payments_table, objects),
            EventStore(client, self.settings.payments_table, objects),
        )

    @lazy
    def api_stores(self) -> tuple[WebhookStore, EventStore]:
        return self._stores(self._api_dynamodb())

    @lazy
    def worker_stores(self) -> tuple[WebhookStore, EventStore]:
        return self._stores(self.worker_dynamodb)

    @lazy
    def endpoints(self) -> WebhookEndpointService:
        from chalicelib.webhooks.endpoints import WebhookEndpointService
        from chalicelib.webhooks.relay import Dispatcher

        store, events = self.api_stores
        return WebhookEndpointService(
            store,
            events,
            Dispatcher(store, self.queue, self.schedule, self.faults),
            allow_private_urls=self.settings.sandbox,
        )

    @lazy
    def events(self) -> EventService:
        from chalicelib.services.events import EventService

        return EventService(self.api_stores[1])

    @lazy
    def relay(self) -> Relay:
        from chalicelib.webhooks.relay import Dispatcher, Relay

        store = self.worker_stores[0]
        return Relay(store, Dispatcher(store, self.queue, self.schedule, self.faults), self.faults)

    @lazy
    def deliverer(self) -> Deliverer:
        from chalicelib.webhooks.delivery import Deliverer, EndpointHealth
        from chalicelib.webhooks.sender import PinnedSender

        store, events = self.worker_stores
        # Checked again at send time, on the one resolution the connection then uses: a name
        # may resolve elsewhere than when it was registered. The sandbox allows private
        # receivers.
        sender = PinnedSender(
            self.settings.webhook_timeout_seconds, allow_private=self.settings.sandbox
        )
        return Deliverer(
            store,
            events,
            self.queue,
            sender,
            self.schedule,
            EndpointHealth(
                store, disable_after_seconds=self.settings.webhook_disable_after_seconds
            ),
            faults=self.faults,
        )


def build_webhook_services(
    settings: Settings,
    faults: Faults,
    api_dynamodb: Callable[[], Any],
    session: boto3.session.Session | None = None,
) -> WebhookServices:
    """The webhook services; the APIs' stores use `api_dynamodb()`, asked for when needed."""
    return WebhookServices(settings, faults, api_dynamodb, session)


@Once
def webhooks() -> WebhookServices:
    """The process's webhook services, built on first use."""
    base = services()
    return build_webhook_services(base.settings, base.faults, lambda: base.dynamodb)


@Once
def analytics() -> AnalyticsService:
    """The process's analytics service (counters, reports, connector alerts), built on first
    use; ResourceMissing (a 404) when the deployment has no analytics table."""
    # Imported here: only the analytics routes and the rollup consumer pay for it.
    from chalicelib.dal.analytics import AnalyticsStore
    from chalicelib.errors import ResourceMissing
    from chalicelib.services.analytics import AnalyticsService

    base = services()
    table = base.settings.analytics_table
    if not table:
        raise ResourceMissing("Analytics are not configured in this deployment.")
    store = AnalyticsStore(base.dynamodb, table, base.settings.payments_table, base.objects)
    return AnalyticsService(store, clock=base.clock or time.time)
