"""Builds the services once per process from the settings, on first use (never at import)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.connectors.base import Connector
from chalicelib.connectors.simulator import SimulatorConnector
from chalicelib.dal.idempotency import IdempotencyStore
from chalicelib.dal.merchants import MerchantStore
from chalicelib.dal.objects import ObjectStore
from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.faults import Faults
from chalicelib.services.context import Committer
from chalicelib.services.merchants import MerchantService
from chalicelib.services.payment_intents import PaymentIntentService
from chalicelib.settings import Settings, get_settings

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
    simulator_ledger: SimulatorLedger
    connector: Connector
    payment_intents: PaymentIntentService


def build_services(settings: Settings, session: boto3.session.Session | None = None) -> Services:
    """Wire the services for `settings`; clients come from `session` (default: a new one)."""
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb", config=_CLIENT_CONFIG)
    faults = Faults(settings.faults)
    idempotency = IdempotencyStore(
        dynamodb,
        settings.idempotency_table,
        ttl_seconds=settings.idempotency_ttl_seconds,
        lease_ms=settings.idempotency_lease_ms,
    )
    objects = ObjectStore(dynamodb, settings.payments_table)
    ledger = SimulatorLedger(dynamodb, settings.simulator_table)
    connector = SimulatorConnector(ledger)
    committer = Committer(dynamodb, idempotency, faults)
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
        ),
        simulator_ledger=ledger,
        connector=connector,
        payment_intents=PaymentIntentService(objects, committer, connector),
    )


@functools.cache
def services() -> Services:
    """The process's services, built on first use from the environment's settings."""
    return build_services(get_settings())
