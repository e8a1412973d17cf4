"""The pieces of chalicelib.observability built on Powertools classes: the log formatters and
the EMF provider. A module of their own because subclassing needs the base class at import,
and importing any part of Powertools imports all of its package (Logger, Metrics, Tracer):
`Observability`, built by a function's first call, imports this module, `import app` does not.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from chalicelib.observability import EmfSink, redact


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with `redact` applied to the finished line (message, extra
    keys and tracebacks alike)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


# Keys every line carries (or that the text line shows in its own place).
_TEXT_SKIPPED = {
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "sampling_rate",
    "route",
    "status",
    "duration_ms",
    "handler",
    "request_id",
    "exception",
    "exception_name",
    "exception_notes",
    "stack_trace",
    "xray_trace_id",
}


class TextFormatter(RedactingFormatter):
    """The same record as `RedactingFormatter`, written as one readable line:

    ``08:46:02 POST /v1/payment_intents/{intent}/confirm 200 263ms pi_0Vc... req_0Vc...``
    for a request, ``08:46:03 authorize_payment 12ms pi_0Vc... attempt=1`` for a Lambda entry
    point, ``08:46:04 WARNING could not emit metrics key=value`` for anything else (with its
    traceback below, if any). Ids come first, other keys as key=value."""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        clock = str(log.get("timestamp", ""))[11:19]
        level = str(log.get("level", "INFO"))
        message = str(log.get("message", ""))
        if message == "request" and "route" in log:
            head = f"{log['route']} {log.get('status', '?')} {log.get('duration_ms', '?')}ms"
        elif message in ("handled", "handler raised") and "handler" in log:
            head = f"{log['handler']} {log.get('duration_ms', '?')}ms"
            if message == "handler raised":
                head += f" raised {log.get('error', '?')}"
        else:
            head = message if level == "INFO" else f"{level} {message}"
        ids = [str(v) for k, v in log.items() if k.endswith("_id") and k not in _TEXT_SKIPPED]
        rest = [
            f"{k}={_text_value(v)}"
            for k, v in log.items()
            if k not in _TEXT_SKIPPED and not k.endswith("_id") and k != "error"
        ]
        if message != "handler raised" and "error" in log:
            rest.append(f"error={_text_value(log['error'])}")
        if "request_id" in log:
            ids.append(str(log["request_id"]))
        line = " ".join([clock, head, *ids, *rest]).strip()
        if log.get("exception"):
            line += "\n" + str(log["exception"])
        return line


def _text_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    text = str(value)
    return json.dumps(text) if " " in text or not text else text


class SinkProvider(AmazonCloudWatchEMFProvider):
    """Powertools' EMF provider; flushing hands the serialized line to PayFlow's sinks instead
    of printing it."""

    def __init__(self, sinks: tuple[EmfSink, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sinks = sinks

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if self.metric_set and not is_metrics_disabled():
            line = json.dumps(self.serialize_metric_set(), separators=(",", ":"))
            for sink in self._sinks:
                sink.write(line)
        self.clear_metrics()
