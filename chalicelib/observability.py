"""Logs, metrics and traces with Powertools for AWS Lambda, built on first use (never at import).

- Logs: Powertools' JSON Logger (service `payflow`), with correlation ids (request id,
  PaymentIntent id, execution name, event and delivery ids) added per thread for the duration
  of a handler, and a formatter that redacts secrets (API keys, `whsec_` secrets, Authorization
  values) and card numbers from every line, whatever code wrote it.
- Metrics: CloudWatch EMF in namespace `PayFlow`, serialized by Powertools' EMF provider. Each
  emission gets a provider of its own because Powertools' `Metrics` shares one metric set
  across instances and threads, and the sandbox serves requests concurrently: a shared set would
  mix one request's `connector` dimension into another's metrics. The serialized EMF lines go to
  the configured sinks: stdout (what Lambda ships to CloudWatch) and/or an in-process aggregate
  (what the sandbox's /v1/sandbox/metrics and /metrics read).
- Traces: Powertools' Tracer on handlers and PSP calls, on or off by configuration
  (PAYFLOW_TRACING, and Powertools' own POWERTOOLS_TRACE_DISABLED).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Protocol, TypeVar

from chalicelib.concurrency import Once

# Powertools is imported by the first `Observability` (chalicelib/observability_powertools.py):
# any part of it imports the whole package, 30-50 ms that `import app` does not pay.

NAMESPACE = "PayFlow"
SERVICE = "payflow"

F = TypeVar("F", bound=Callable[..., Any])


class Kind(Enum):
    """How a metric aggregates: counters add up, timers keep a distribution, gauges the last."""

    COUNTER = "counter"
    TIMER = "timer"
    GAUGE = "gauge"


class Unit(StrEnum):
    """CloudWatch units of PayFlow's metrics, spelled as EMF and Powertools' `MetricUnit`."""

    COUNT = "Count"
    MILLISECONDS = "Milliseconds"


class Metric(Enum):
    """Every metric PayFlow emits: EMF name, unit, kind, and what it measures."""

    PAYMENTS_CREATED = ("PaymentsCreated", Unit.COUNT, Kind.COUNTER)
    PAYMENTS_SUCCEEDED = ("PaymentsSucceeded", Unit.COUNT, Kind.COUNTER)
    PAYMENTS_FAILED = ("PaymentsFailed", Unit.COUNT, Kind.COUNTER)
    PSP_LATENCY = ("PspLatency", Unit.MILLISECONDS, Kind.TIMER)
    PSP_ERRORS = ("PspErrors", Unit.COUNT, Kind.COUNTER)
    CIRCUIT_STATE_CHANGES = ("CircuitStateChanges", Unit.COUNT, Kind.COUNTER)
    CONNECTOR_ALERTS = ("ConnectorAlerts", Unit.COUNT, Kind.COUNTER)
    WEBHOOK_ATTEMPTS = ("WebhookAttempts", Unit.COUNT, Kind.COUNTER)
    WEBHOOK_FAILURES = ("WebhookFailures", Unit.COUNT, Kind.COUNTER)
    WEBHOOK_LATENCY = ("WebhookLatency", Unit.MILLISECONDS, Kind.TIMER)
    WEBHOOKS_DEAD_LETTERED = ("WebhooksDeadLettered", Unit.COUNT, Kind.COUNTER)
    OUTBOX_LAG = ("OutboxLag", Unit.MILLISECONDS, Kind.TIMER)
    DLQ_DEPTH = ("DlqDepth", Unit.COUNT, Kind.GAUGE)
    API_REQUESTS = ("ApiRequests", Unit.COUNT, Kind.COUNTER)
    API_LATENCY = ("ApiLatency", Unit.MILLISECONDS, Kind.TIMER)

    def __init__(self, metric_name: str, unit: Unit, kind: Kind) -> None:
        self.metric_name = metric_name
        self.unit = unit
        self.kind = kind

    @classmethod
    def named(cls, name: str) -> Metric | None:
        return _BY_NAME.get(name)


_BY_NAME = {m.metric_name: m for m in Metric}

# PaymentIntent events -> the payment metric they count (see Relay: counted from the outbox).
PAYMENT_EVENT_METRICS = {
    "payment_intent.created": Metric.PAYMENTS_CREATED,
    "payment_intent.succeeded": Metric.PAYMENTS_SUCCEEDED,
    "payment_intent.payment_failed": Metric.PAYMENTS_FAILED,
}


# -- redaction ---------------------------------------------------------------------------------


@functools.cache
def _secrets() -> list[tuple[re.Pattern[str], str]]:
    # Compiled by the first line logged, not at import (a few ms of every cold start).
    return [
        # API keys (sk_test_..., sk_live_..., sk_admin_..., rk_...), webhook and client secrets.
        (re.compile(r"\b((?:sk|rk)_[A-Za-z]+_)[A-Za-z0-9]+"), r"\1[redacted]"),
        (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
        (re.compile(r"(_secret_)[A-Za-z0-9]+"), r"\1[redacted]"),
        (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=:-]+", re.IGNORECASE), r"\1 [redacted]"),
        (
            re.compile(
                r'("?(?:authorization|stripe-signature|webhook-signature)"?\s*[:=]\s*"?)[^",}]+'
            ),
            r"\1[redacted]",
        ),
    ]


@functools.cache
def _digits() -> re.Pattern[str]:
    return re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact(text: str) -> str:
    """`text` without secrets and card numbers (13-19 digits passing the Luhn check)."""
    for pattern, replacement in _secrets():
        text = pattern.sub(replacement, text)

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        return f"[card ...{digits[-4:]}]" if _luhn(digits) else match.group(0)

    return _digits().sub(card, text)


class LogFormat(Enum):
    """How log lines are written."""

    JSON = "json"
    """Powertools' structured lines: what CloudWatch Logs Insights queries (Lambda's default)."""
    TEXT = "text"
    """One readable line per request or invocation, for a terminal."""

    @classmethod
    def choose(cls, configured: str | None, in_lambda: bool) -> LogFormat:
        """`configured` (PAYFLOW_LOG_FORMAT) when set, else JSON in Lambda and text elsewhere."""
        if configured:
            return cls(configured.strip().lower())
        return cls.JSON if in_lambda else cls.TEXT


QUIET_LOGGERS = ("botocore", "boto3", "urllib3")
"""Libraries whose INFO lines ("Found credentials in environment variables") say nothing a
reader of PayFlow's logs needs: they log warnings and errors only."""


def quiet_libraries() -> None:
    """Raise the level of `QUIET_LOGGERS` to WARNING (the root logger may be at INFO, as
    `chalice local` and the sandbox set it)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# -- metric sinks ------------------------------------------------------------------------------


class EmfSink(Protocol):
    """Receives each serialized EMF line."""

    def write(self, line: str) -> None: ...


class StdoutSink:
    """What Powertools' Metrics does on flush: one JSON line on stdout, which Lambda sends to
    CloudWatch Logs, where EMF turns it into metrics."""

    def write(self, line: str) -> None:
        print(line, flush=False)


_RESERVOIR = 2048
"""Values a timer keeps for its percentiles (the most recent ones)."""


@dataclass
class Series:
    """One metric with one set of dimension values, aggregated."""

    metric: str
    unit: str
    kind: Kind
    dimensions: dict[str, str]
    count: int = 0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    last: float = 0.0
    recent: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.last = value
        if self.kind == Kind.TIMER:
            self.recent.append(value)
            if len(self.recent) > _RESERVOIR:
                del self.recent[: len(self.recent) - _RESERVOIR]

    def percentile(self, q: float) -> float | None:
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.metric,
            "unit": self.unit,
            "kind": self.kind.value,
            "dimensions": dict(self.dimensions),
            "count": self.count,
        }
        if self.kind == Kind.COUNTER:
            body["value"] = self.total
        elif self.kind == Kind.GAUGE:
            body["value"] = self.last
        else:
            body.update(
                sum=round(self.total, 3),
                min=self.minimum,
                max=self.maximum,
                avg=round(self.total / self.count, 3) if self.count else None,
                p50=self.percentile(0.50),
                p95=self.percentile(0.95),
                p99=self.percentile(0.99),
            )
        return body


class MetricsAggregate:
    """An in-process sink: parses each EMF line back and aggregates it per (metric, dimensions).
    What the sandbox serves as JSON and as Prometheus text."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], Series] = {}
        self._lines = 0
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        blob = json.loads(line)
        with self._lock:
            self._lines += 1
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                names = [n for group in directive["Dimensions"] for n in group]
                dims = {n: str(blob[n]) for n in names if n in blob}
                for definition in directive["Metrics"]:
                    name, unit = definition["Name"], definition.get("Unit", "None")
                    known = Metric.named(name)
                    kind = known.kind if known else Kind.COUNTER
                    key = (name, tuple(sorted(dims.items())))
                    series = self._series.get(key)
                    if series is None:
                        series = self._series[key] = Series(name, unit, kind, dims)
                    values = blob[name]
                    for value in values if isinstance(values, list) else [values]:
                        series.add(float(value))

    def series(self) -> list[Series]:
        with self._lock:
            return [
                Series(**{**s.__dict__, "recent": list(s.recent), "dimensions": dict(s.dimensions)})
                for s in sorted(
                    self._series.values(), key=lambda s: (s.metric, sorted(s.dimensions.items()))
                )
            ]

    def snapshot(self) -> dict[str, Any]:
        """Every series, and per metric name the total over its dimensions."""
        series = self.series()
        totals: dict[str, float] = {}
        for s in series:
            if s.kind == Kind.COUNTER:
                totals[s.metric] = totals.get(s.metric, 0.0) + s.total
        return {
            "object": "metrics",
            "namespace": NAMESPACE,
            "emf_lines": self._lines,
            "totals": totals,
            "data": [s.to_api() for s in series],
        }

    def reset(self) -> None:
        with self._lock:
            self._series.clear()
            self._lines = 0


def prometheus_text(series: list[Series]) -> str:
    """The aggregate in the Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []
    by_metric: dict[str, list[Series]] = {}
    for s in series:
        by_metric.setdefault(s.metric, []).append(s)
    for metric, group in by_metric.items():
        base = "payflow_" + _snake(metric)
        unit = group[0].unit
        if unit == Unit.MILLISECONDS:
            base += "_milliseconds"
        kind = group[0].kind
        if kind == Kind.COUNTER:
            lines.append(f"# TYPE {base}_total counter")
            lines += [f"{base}_total{_labels(s.dimensions)} {_num(s.total)}" for s in group]
        elif kind == Kind.GAUGE:
            lines.append(f"# TYPE {base} gauge")
            lines += [f"{base}{_labels(s.dimensions)} {_num(s.last)}" for s in group]
        else:
            lines.append(f"# TYPE {base} summary")
            for s in group:
                for q in (0.5, 0.95, 0.99):
                    value = s.percentile(q)
                    labels = _labels({**s.dimensions, "quantile": str(q)})
                    lines.append(f"{base}{labels} {_num(value if value is not None else 0.0)}")
                lines.append(f"{base}_sum{_labels(s.dimensions)} {_num(s.total)}")
                lines.append(f"{base}_count{_labels(s.dimensions)} {s.count}")
    return "\n".join(lines) + "\n"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _labels(dimensions: Mapping[str, str]) -> str:
    if not dimensions:
        return ""
    escaped = (
        f'{_snake(k)}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(dimensions.items())
    )
    return "{" + ",".join(escaped) + "}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


# -- the facade --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservabilityConfig:
    """What observability needs from the settings."""

    log_level: str = "INFO"
    tracing: bool = False
    metrics_sinks: tuple[str, ...] = ("stdout",)
    log_format: LogFormat = LogFormat.JSON

    @classmethod
    def from_settings(cls, settings: Any) -> ObservabilityConfig:
        """The config for `settings` (in Lambda, JSON logs unless PAYFLOW_LOG_FORMAT says)."""
        sinks = tuple(s.strip() for s in settings.metrics_sink.split(",") if s.strip())
        in_lambda = bool(settings.lambda_function_name)
        return cls(
            log_level=settings.log_level,
            tracing=settings.tracing,
            metrics_sinks=sinks,
            log_format=LogFormat.choose(settings.log_format, in_lambda),
        )


class Observability:
    """The process's Logger, Tracer and metric sinks."""

    def __init__(
        self,
        config: ObservabilityConfig | None = None,
        *,
        sinks: tuple[EmfSink, ...] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or ObservabilityConfig()
        self.aggregate: MetricsAggregate | None = None
        if sinks is None:
            built: list[EmfSink] = []
            if "stdout" in self.config.metrics_sinks:
                built.append(StdoutSink())
            if "memory" in self.config.metrics_sinks:
                self.aggregate = MetricsAggregate()
                built.append(self.aggregate)
            sinks = tuple(built)
        else:
            self.aggregate = next((s for s in sinks if isinstance(s, MetricsAggregate)), None)
        self._sinks = sinks
        self._clock = clock
        from aws_lambda_powertools import Logger

        from chalicelib.observability_powertools import RedactingFormatter, TextFormatter

        formatter = (
            TextFormatter if self.config.log_format == LogFormat.TEXT else RedactingFormatter
        )
        self.logger = Logger(
            service=SERVICE,
            level=self.config.log_level,
            logger_formatter=formatter(utc=True),
        )
        # Powertools configures a service's logger once per process and keeps its first
        # formatter; this instance's format is the one that counts.
        self.logger.registered_handler.setFormatter(formatter(utc=True, service=SERVICE))
        quiet_libraries()
        # Modules log through "payflow.<area>" loggers, children of this one.
        self._tracer: Any = None
        if self.config.tracing:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=SERVICE, auto_patch=True)

    # metrics

    def emit(self, values: Mapping[Metric, float], **dimensions: str | None) -> None:
        """One EMF line with `values` under `dimensions` (None values left out). Never raises:
        a metric must not fail a payment."""
        if not self._sinks or not values:
            return
        try:
            from chalicelib.observability_powertools import SinkProvider

            provider = SinkProvider(self._sinks, namespace=NAMESPACE, service=SERVICE)
            for name, dimension in dimensions.items():
                if dimension is not None:
                    provider.add_dimension(name=name, value=str(dimension))
            for metric, value in values.items():
                provider.add_metric(name=metric.metric_name, unit=metric.unit, value=value)
            provider.flush_metrics()
        except Exception:
            self.logger.warning("could not emit metrics", exc_info=True)

    def count(self, metric: Metric, value: float = 1, **dimensions: str | None) -> None:
        self.emit({metric: value}, **dimensions)

    # logs

    @contextlib.contextmanager
    def correlate(self, **keys: Any) -> Iterator[None]:
        """Add `keys` (None values left out) to every log line of this thread meanwhile."""
        keys = {k: v for k, v in keys.items() if v is not None}
        previous = self.logger.thread_safe_get_current_keys()
        self.logger.thread_safe_append_keys(**keys)
        try:
            yield
        finally:
            self.logger.thread_safe_remove_keys(keys.keys())
            restore = {k: previous[k] for k in keys if k in previous}
            if restore:
                self.logger.thread_safe_append_keys(**restore)

    # traces

    @contextlib.contextmanager
    def trace(self, name: str, **annotations: str | int | None) -> Iterator[None]:
        """A subsegment named `name` (when tracing is on), annotated for X-Ray search."""
        if self._tracer is None:
            yield
            return
        with self._tracer.provider.in_subsegment(f"## {name}") as subsegment:
            for key, value in annotations.items():
                if value is not None:
                    subsegment.put_annotation(key, value)
            yield

    @contextlib.contextmanager
    def invocation(self, handler: str, **keys: Any) -> Iterator[None]:
        """A Lambda entry point's run: correlation keys, a trace subsegment, one log line."""
        started = self._clock()
        with self.correlate(handler=handler, **keys), self.trace(handler):
            try:
                yield
            except Exception as error:
                # Expected errors (PspTimeout for the state machine's Retry, a batch retried)
                # and real ones alike: the name is what matters here, the caller decides.
                self.logger.info(
                    "handler raised",
                    extra={"error": type(error).__name__, "duration_ms": self._ms(started)},
                )
                raise
            self.logger.info("handled", extra={"duration_ms": self._ms(started)})

    def _ms(self, started: float) -> int:
        return round((self._clock() - started) * 1000)


@Once
def observability() -> Observability:
    """The process's observability, built on first use from the settings."""
    from chalicelib.settings import get_settings

    return Observability(ObservabilityConfig.from_settings(get_settings()))


def handler(name: str, keys: Callable[[Any], Mapping[str, Any]] | None = None) -> Callable[[F], F]:
    """Decorate a Lambda entry point: its runs are `Observability.invocation`s with the
    correlation ids `keys(event)` picks from the event (nothing is built at import)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(event: Any, *args: Any) -> Any:
            try:
                correlation = dict(keys(event)) if keys else {}
            except Exception:
                correlation = {}
            with observability().invocation(name, **correlation):
                return function(event, *args)

        return run  # type: ignore[return-value]

    return decorate


def id_time_ms(object_id: str) -> int | None:
    """When an id of domain.ids was made, in epoch ms (its 8 base62 characters after `_`)."""
    from chalicelib.domain.ids import ALPHABET

    _, _, body = object_id.partition("_")
    if len(body) < 8:
        return None
    millis = 0
    for char in body[:8]:
        digit = ALPHABET.find(char)
        if digit < 0:
            return None
        millis = millis * 62 + digit
    return millis


# -- correlation ids of the Lambda entry points (app.py) ------------------------------------------

_MAX_IDS = 20
"""Ids of a batch listed in its log lines (a batch may hold 100 records)."""


def payment_task_keys(task: Mapping[str, Any]) -> dict[str, Any]:
    """A payment state machine task: the PaymentIntent, its attempt, and the execution's name
    (as domain.payment_intents.execution_name makes it)."""
    pi_id, attempt = task.get("payment_intent_id"), task.get("attempt")
    return {
        "payment_intent_id": pi_id,
        "attempt": attempt,
        "execution": f"{pi_id}-attempt-{attempt}" if pi_id is not None else None,
        "connector": _candidate(task),
    }


def _candidate(task: Mapping[str, Any]) -> str | None:
    candidates, index = task.get("candidates") or [], task.get("index")
    return candidates[index] if isinstance(index, int) and 0 <= index < len(candidates) else None


def stream_keys(event: Any) -> dict[str, Any]:
    """A DynamoDB stream batch: the ids of the events and PaymentIntents it carries."""
    event_ids: list[str] = []
    pi_ids: list[str] = []
    records = 0
    for record in event:
        records += 1
        raw = record.to_dict() if hasattr(record, "to_dict") else record
        image = (raw.get("dynamodb") or {}).get("NewImage") or {}
        pk = (image.get("pk") or {}).get("S", "")
        # A PaymentIntent's partition holds its attempts and decisions too: name it once.
        ids = event_ids if pk.startswith("evt_") else pi_ids if pk.startswith("pi_") else None
        if ids is not None and pk not in ids and len(ids) < _MAX_IDS:
            ids.append(pk)
    return {
        "records": records,
        "event_ids": event_ids or None,
        "payment_intent_ids": pi_ids or None,
    }


def sqs_keys(event: Any) -> dict[str, Any]:
    """An SQS batch of webhook messages: the delivery ids (wd_<event><endpoint>)."""
    ids: list[str] = []
    messages = 0
    for record in event:
        messages += 1
        body = record.body if hasattr(record, "body") else record.get("body", "")
        try:
            delivery = json.loads(body).get("delivery")
        except (ValueError, AttributeError):
            delivery = None
        if delivery and len(ids) < _MAX_IDS:
            ids.append(str(delivery))
    return {"messages": messages, "delivery_ids": ids or None}
