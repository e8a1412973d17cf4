"""Connect a Chalice app to the embedded runtime: invoke resolution and event pollers.

A Lambda function can be named three ways: by the Chalice handler name (``process_payment``), by
the logical id Chalice gives it in its SAM template (``ProcessPayment``, which the resource
template references with ``Fn::GetAtt``), and by its deployed name
(``<app_name>-<stage>-process_payment``). All three resolve to the same handler.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice, EventSourceHandler
from chalice.utils import to_cfn_resource_name

from payflow.sandbox.event_filters import record_filter
from payflow.sandbox.lambda_invoke import REGION, Handler, Resolver
from payflow.sandbox.pollers import Poller, SqsPoller, StreamPoller
from payflow.sandbox.provision import EventSourceMapping, Provisioned

# Chalice names the function behind API Gateway "api_handler" (logical id APIHandler).
API_HANDLER = "api_handler"


def function_handlers(app: Chalice, stage: str = "dev") -> dict[str, Handler]:
    """Every name a Lambda entry point of `app` may be invoked by -> its handler."""
    entry_points: dict[str, Handler] = {
        name: handler
        for name, handler in app.handler_map.items()
        # Route views are not Lambda entry points; the app itself is (api_handler).
        if isinstance(handler, EventSourceHandler)
    }
    entry_points[API_HANDLER] = app
    names: dict[str, Handler] = {}
    for name, handler in entry_points.items():
        names[name] = handler
        names[f"{app.app_name}-{stage}-{name}"] = handler
        names["APIHandler" if name == API_HANDLER else to_cfn_resource_name(name)] = handler
    return names


def handler_resolver(app: Chalice, stage: str = "dev") -> Resolver:
    """`resolve(name)` for `LambdaInvokeMiddleware`, backed by `app.handler_map`."""
    names = function_handlers(app, stage)
    return names.get


def pollers_for(
    app: Chalice,
    provisioned: Provisioned,
    sqs: Any,
    streams: Any,
    *,
    stage: str = "dev",
    region: str = REGION,
    **options: Any,
) -> list[Poller]:
    """One poller per event source mapping of `provisioned`, each calling its Chalice handler.

    `options` go to every poller constructor that accepts them (e.g. ``wait_seconds`` for
    queues, ``idle_interval`` and ``retry_base`` for both). Raises LookupError when a mapping
    names a function the app does not define.
    """
    handlers = function_handlers(app, stage)
    pollers: list[Poller] = []
    for mapping in provisioned.event_source_mappings:
        handler = handlers.get(mapping.function)
        if handler is None:
            raise LookupError(
                f"event source mapping for {mapping.function!r} ({mapping.source_arn}): "
                f"the Chalice app {app.app_name!r} has no such handler"
            )
        pollers.append(_poller(mapping, handler, provisioned, sqs, streams, region, options))
    return pollers


def _poller(
    mapping: EventSourceMapping,
    handler: Handler,
    provisioned: Provisioned,
    sqs: Any,
    streams: Any,
    region: str,
    options: dict[str, Any],
) -> Poller:
    common: dict[str, Any] = {
        "batch_size": mapping.batch_size,
        "report_batch_item_failures": mapping.report_batch_item_failures,
        "name": mapping.function,
        "region": region,
        "record_filter": record_filter(mapping.filter_patterns),
    }
    if mapping.kind == "sqs":
        queue_options = {k: v for k, v in options.items() if k in _SQS_OPTIONS}
        return SqsPoller(
            sqs,
            _queue_url(mapping.source_arn, provisioned, sqs),
            mapping.source_arn,
            handler,
            **common,
            **queue_options,
        )
    stream_options = {k: v for k, v in options.items() if k in _STREAM_OPTIONS}
    return StreamPoller(
        streams,
        mapping.source_arn,
        handler,
        starting_position=mapping.starting_position or "LATEST",
        **common,
        **stream_options,
    )


_SQS_OPTIONS = {"wait_seconds", "idle_interval", "duplicate_rate", "rng", "concurrency"}
_STREAM_OPTIONS = {
    "duplicate_rate",
    "rng",
    "idle_interval",
    "max_idle_interval",
    "retry_base",
    "retry_max",
    "shard_refresh_seconds",
    "clock",
    "checkpoints",
}


def _queue_url(queue_arn: str, provisioned: Provisioned, sqs: Any) -> str:
    for (logical_id, attribute), value in provisioned.attributes.items():
        if attribute == "Arn" and value == queue_arn:
            return provisioned.attributes[(logical_id, "QueueUrl")]
    # A queue from outside the template: its name is the ARN's last segment.
    return str(sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"])
