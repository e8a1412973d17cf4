"""Observability: EMF lines through Powertools' provider, their aggregate, Prometheus text,
redaction of secrets and card numbers, and per-thread correlation ids."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from chalicelib.domain.ids import new_id
from chalicelib.observability import (
    LogFormat,
    Metric,
    MetricsAggregate,
    Observability,
    ObservabilityConfig,
    id_time_ms,
    prometheus_text,
    redact,
)
from chalicelib.settings import Settings


class Lines:
    """A sink that keeps the raw EMF lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)


def test_emit_writes_one_emf_line_in_the_payflow_namespace() -> None:
    # Given
    raw = Lines()
    obs = Observability(ObservabilityConfig(), sinks=(raw,))

    # When
    obs.emit({Metric.PSP_LATENCY: 12.5}, connector="simulator", code=None)

    # Then
    (line,) = raw.lines
    blob = json.loads(line)
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "PayFlow"
    assert directive["Metrics"] == [{"Name": "PspLatency", "Unit": "Milliseconds"}]
    assert sorted(directive["Dimensions"][0]) == ["connector", "service"]
    assert blob["connector"] == "simulator" and blob["service"] == "payflow"
    assert blob["PspLatency"] == [12.5]


def test_the_aggregate_counts_times_and_gauges_from_emf_lines() -> None:
    # Given
    aggregate = MetricsAggregate()
    obs = Observability(ObservabilityConfig(), sinks=(aggregate,))

    # When
    for latency in (10, 20, 30, 40):
        obs.emit({Metric.PSP_LATENCY: latency}, connector="a")
    obs.count(Metric.PSP_ERRORS, connector="a", code="PspTimeout")
    obs.count(Metric.PSP_ERRORS, connector="b", code="PspTimeout")
    obs.emit({Metric.DLQ_DEPTH: 3})
    obs.emit({Metric.DLQ_DEPTH: 1})

    # Then
    snapshot = aggregate.snapshot()
    assert snapshot["totals"]["PspErrors"] == 2
    by_name = {(s["name"], s["dimensions"].get("connector")): s for s in snapshot["data"]}
    latency = by_name[("PspLatency", "a")]
    assert latency["count"] == 4 and latency["p50"] in (20.0, 30.0) and latency["max"] == 40.0
    assert by_name[("DlqDepth", None)]["value"] == 1.0


def test_prometheus_text_has_counters_summaries_and_gauges() -> None:
    # Given
    aggregate = MetricsAggregate()
    obs = Observability(ObservabilityConfig(), sinks=(aggregate,))
    obs.count(Metric.PAYMENTS_CREATED, 3)
    obs.emit(
        {Metric.WEBHOOK_LATENCY: 5},
    )
    obs.emit({Metric.DLQ_DEPTH: 2})

    # When
    text = prometheus_text(aggregate.series())

    # Then
    assert "# TYPE payflow_payments_created_total counter" in text
    assert 'payflow_payments_created_total{service="payflow"} 3' in text
    assert 'payflow_webhook_latency_milliseconds{quantile="0.99",service="payflow"} 5' in text
    assert 'payflow_webhook_latency_milliseconds_count{service="payflow"} 1' in text
    assert 'payflow_dlq_depth{service="payflow"} 2' in text


def test_a_failing_sink_never_fails_the_caller() -> None:
    class Broken:
        def write(self, line: str) -> None:
            raise OSError("disk full")

    Observability(ObservabilityConfig(), sinks=(Broken(),)).count(Metric.API_REQUESTS)


def test_secrets_and_card_numbers_are_redacted() -> None:
    line = (
        "key sk_test_abcDEF123 admin sk_admin_payflow secret whsec_MfKQ9r8GKYq+/= "
        '"authorization": "Bearer sk_live_zzz" Basic c2tfdGVzdDo= card 4242 4242 4242 4242 '
        "client pi_123_secret_abcdef ts 1700000000123"
    )
    cleaned = redact(line)
    for secret in ("abcDEF123", "payflow", "MfKQ9r8", "zzz", "c2tfdGVzdDo", "4242 4242", "abcdef"):
        assert secret not in cleaned, secret
    assert "[card ...4242]" in cleaned
    assert "1700000000123" in cleaned  # a timestamp is not a card number (Luhn)


def test_log_lines_are_json_with_thread_local_correlation_ids_and_no_secrets() -> None:
    # Given
    obs = Observability(ObservabilityConfig(log_level="INFO"), sinks=())
    stream = io.StringIO()
    handler = obs.logger.registered_handler
    previous, handler.stream = handler.stream, stream  # type: ignore[attr-defined]
    seen: list[str] = []
    try:
        # When two threads log inside their own correlation
        def work(name: str) -> None:
            with obs.correlate(request_id=f"req_{name}", payment_intent_id=f"pi_{name}"):
                logging.getLogger("payflow.api").info("using sk_test_%s", name)

        threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        obs.logger.info("after")
        seen = stream.getvalue().splitlines()
    finally:
        handler.stream = previous  # type: ignore[attr-defined]

    # Then
    records = [json.loads(line) for line in seen]
    mine = {r.get("request_id"): r for r in records if r["message"] != "after"}
    assert mine["req_a"]["payment_intent_id"] == "pi_a"
    assert mine["req_b"]["payment_intent_id"] == "pi_b"
    assert all("sk_test_a" not in line and "sk_test_b" not in line for line in seen)
    assert "request_id" not in records[-1]


def test_event_ids_tell_when_they_were_written() -> None:
    assert abs(id_time_ms(new_id("evt", clock=lambda: 1_700_000_000.123)) - 1_700_000_000_123) <= 1
    assert id_time_ms("nonsense") is None


def _lines_of(obs: Observability, log: Callable[[], None]) -> list[str]:
    """What `log()` writes through `obs`'s logger."""
    stream = io.StringIO()
    handler = obs.logger.registered_handler
    previous, handler.stream = handler.stream, stream  # type: ignore[attr-defined]
    try:
        log()
    finally:
        handler.stream = previous  # type: ignore[attr-defined]
    return stream.getvalue().splitlines()


def _a_request(obs: Observability) -> None:
    with obs.correlate(
        request_id="req_1",
        route="POST /v1/payment_intents/{intent}/confirm",
        payment_intent_id="pi_42",
    ):
        obs.logger.info("request", extra={"status": 402, "duration_ms": 37})


def test_text_format_writes_one_readable_line_per_request() -> None:
    # Given
    obs = Observability(ObservabilityConfig(log_format=LogFormat.TEXT), sinks=())

    # When
    (line,) = _lines_of(obs, lambda: _a_request(obs))

    # Then: time, method and route, status, duration, the object id, the request id
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d POST /v1/payment_intents/\{intent\}/confirm 402 37ms pi_42 req_1", line
    ), line


def test_text_format_names_handlers_warnings_and_redacts() -> None:
    # Given
    obs = Observability(ObservabilityConfig(log_format=LogFormat.TEXT), sinks=())

    def log() -> None:
        with obs.correlate(handler="authorize_payment", payment_intent_id="pi_7", attempt=2):
            obs.logger.info("handled", extra={"duration_ms": 12})
        logging.getLogger("payflow.webhooks").warning("endpoint answered %s", 500)
        obs.logger.info("key sk_test_abc123 used")

    # When
    handled, warning, secret = _lines_of(obs, log)

    # Then
    assert handled.endswith(" authorize_payment 12ms pi_7 attempt=2"), handled
    assert warning.endswith(" WARNING endpoint answered 500"), warning
    assert "abc123" not in secret and "sk_test_[redacted]" in secret


def test_json_format_keeps_powertools_structured_lines() -> None:
    # Given
    obs = Observability(ObservabilityConfig(log_format=LogFormat.JSON), sinks=())

    # When
    (line,) = _lines_of(obs, lambda: _a_request(obs))

    # Then
    record = json.loads(line)
    assert record["message"] == "request"
    assert record["route"] == "POST /v1/payment_intents/{intent}/confirm"
    assert (record["status"], record["duration_ms"]) == (402, 37)
    assert (record["payment_intent_id"], record["request_id"]) == ("pi_42", "req_1")
    assert record["service"] == "payflow"


def test_the_format_is_json_in_lambda_and_text_elsewhere_unless_configured() -> None:
    def settings(log_format: str | None, in_lambda: bool = False) -> Settings:
        return Settings.from_environ(
            {
                "PAYFLOW_PAYMENTS_TABLE": "t",
                "PAYFLOW_IDEMPOTENCY_TABLE": "t",
                "PAYFLOW_SIMULATOR_TABLE": "t",
                "PAYFLOW_PAYMENT_STATE_MACHINE_ARN": "arn",
                "PAYFLOW_REFUND_STATE_MACHINE_ARN": "arn",
                **({"PAYFLOW_LOG_FORMAT": log_format} if log_format else {}),
                # What the Lambda runtime sets in every function's environment.
                **({"AWS_LAMBDA_FUNCTION_NAME": "payflow-dev-api_handler"} if in_lambda else {}),
            }
        )

    def chosen(log_format: str | None, in_lambda: bool) -> LogFormat:
        return ObservabilityConfig.from_settings(settings(log_format, in_lambda)).log_format

    assert chosen(None, in_lambda=True) == LogFormat.JSON
    assert chosen(None, in_lambda=False) == LogFormat.TEXT
    assert chosen("json", in_lambda=False) == LogFormat.JSON
    assert chosen("text", in_lambda=True) == LogFormat.TEXT
    with pytest.raises(ValidationError):
        settings("yaml")


def test_botocore_info_lines_are_silenced() -> None:
    # Given a root logger at INFO, as `chalice local` and the sandbox set it
    logging.getLogger("botocore").setLevel(logging.NOTSET)

    # When
    Observability(ObservabilityConfig(), sinks=())

    # Then
    assert not logging.getLogger("botocore.credentials").isEnabledFor(logging.INFO)
    assert logging.getLogger("botocore.credentials").isEnabledFor(logging.WARNING)
