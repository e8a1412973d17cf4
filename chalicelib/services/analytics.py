"""Analytics and connector alerts: folding PSP calls from the payments stream into counters,
reports over a range, and failure-spike alerts sent through the outbox as PayFlow events.

The stream consumer (`rollup_payments`) sees every attempt record the orchestration writes
(`sk` = `attempt#...`); each is folded once (the store's fold markers), so replays are safe.
After a batch, each (merchant, connector) it touched is checked against the merchant's alert
rule over the minute buckets of its window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chalicelib.dal.analytics import AnalyticsStore, Fold
from chalicelib.dal.dynamo import ConditionFailed, from_image
from chalicelib.domain import analytics as rules
from chalicelib.domain.analytics import (
    Alert,
    AlertMove,
    AlertSettings,
    AlertStatus,
    CallFact,
    Granularity,
    Tally,
)
from chalicelib.domain.events import Event
from chalicelib.domain.ids import new_id
from chalicelib.errors import ParameterInvalid
from chalicelib.observability import Metric, observability

logger = logging.getLogger("payflow")

MAX_BUCKETS = 400
"""A report reads at most this many time buckets per connector and method."""
DEFAULT_RANGE_SECONDS = 86400
"""Without a range, a report covers the last day."""
REFUNDS = ("_refunds", "_all")
"""The (connector, method) under which refunds are counted."""


class AnalyticsService:
    """Folds PSP calls and refunds into counters; reports; raises and resolves alerts."""

    def __init__(
        self,
        store: AnalyticsStore,
        *,
        clock: Callable[[], float] = time.time,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wall = wall

    def _business_offset(self) -> int:
        # Attempt records carry wall-clock times; the sandbox's business clock (set back by
        # `payflow seed` to write a 30-day history) may differ. A call is folded within a second
        # or so of being made, so today's offset places it where the payment's history is. On
        # AWS both clocks are the wall clock: zero.
        return int(self._clock() - self._wall())

    # -- the stream consumer -------------------------------------------------------------------

    def handle(self, records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Fold the batch's new attempt records and succeeded refunds; then check alerts."""
        attempts: list[dict[str, Any]] = []
        refunds: list[dict[str, Any]] = []
        for record in records:
            change = record.get("dynamodb") or {}
            new = change.get("NewImage")
            if not new:
                continue
            item = from_image(new)
            sk = str(item.get("sk", ""))
            inserted = record.get("eventName") == "INSERT"
            if sk.startswith("attempt#") and inserted:
                attempts.append(item)
            elif sk.startswith("routing#") and inserted:
                # The confirm handler's own calls ride in the attempt's routing decision.
                attempts.extend(
                    {"pk": item["pk"], "sk": f"{sk}#{i}", "data": call}
                    for i, call in enumerate(item.get("data", {}).get("calls", []))
                )
            elif sk == "refund" and _became_succeeded(change):
                refunds.append(item)
        facts = self._facts(attempts)
        folds = [_call_fold(fact) for fact in facts] + [
            _refund_fold(item, self._clock()) for item in refunds
        ]
        folded = self._store.fold(folds)
        for merchant_id, connector in sorted({(f.merchant_id, f.connector) for f in facts}):
            self.check_alert(merchant_id, connector)
        return {"folded": folded}

    def _facts(self, attempts: list[dict[str, Any]]) -> list[CallFact]:
        payments = self._store.payment_facts(sorted({str(a["pk"]) for a in attempts}))
        offset = self._business_offset()
        facts = []
        for item in attempts:
            record = item["data"]
            payment = payments.get(str(item["pk"]))
            outcome = rules.classify(str(record.get("outcome", "")))
            if payment is None or outcome is None:
                continue
            facts.append(
                CallFact(
                    merchant_id=payment["merchant_id"],
                    payment_intent_id=payment["id"],
                    attempt_key=str(item["sk"]),
                    connector=str(record["connector"]),
                    method=_method(payment),
                    outcome=outcome,
                    latency_ms=int(record.get("latency_ms") or 0),
                    reason=record.get("error_code") or record.get("outcome"),
                    created=int(record.get("created") or self._wall()) + offset,
                    amount=int(payment["amount"]),
                    currency=str(payment["currency"]),
                )
            )
        return facts

    # -- alerts --------------------------------------------------------------------------------

    def check_alert(self, merchant_id: str, connector: str) -> Alert | None:
        """Raise or resolve the connector's alert from its window; the alert written, if any.

        Only the instance whose conditional write wins announces a move: a concurrent batch
        that lost reads the new state and has nothing left to do."""
        settings = self._store.alert_settings(merchant_id)
        now = self._clock()
        window = self._window(merchant_id, connector, now, settings.window_seconds)
        current = self._store.current_alert(merchant_id, connector)
        firing = current is not None and current.status == AlertStatus.FIRING
        move = rules.evaluate(window, settings, firing)
        if move == AlertMove.NONE:
            return None
        rate = window.success_rate() or 0.0
        if move == AlertMove.RAISE:
            alert = Alert(
                id=new_id("alert", clock=self._clock),
                merchant_id=merchant_id,
                connector=connector,
                status=AlertStatus.FIRING,
                created=int(now),
                success_rate=rate,
                attempted=window.attempted,
                threshold=settings.threshold,
                window_seconds=settings.window_seconds,
                version=(current.version + 1) if current else 0,
            )
            event_type = rules.ALERT_EVENT
        else:
            assert current is not None
            alert = current.model_copy(
                update={
                    "status": AlertStatus.RESOLVED,
                    "resolved_at": int(now),
                    "success_rate": rate,
                    "attempted": window.attempted,
                    "version": current.version + 1,
                }
            )
            event_type = rules.ALERT_RESOLVED_EVENT
        event = Event(
            id=new_id("evt", clock=self._clock),
            merchant_id=merchant_id,
            type=event_type,
            created=int(now),
            data_object=alert.to_api(),
            previous_attributes={"status": current.status.value} if current else None,
        )
        try:
            self._store.save_alert(alert, current, event)
        except ConditionFailed:
            return None
        if alert.status == AlertStatus.FIRING:
            # One dimension set (service only), which the CloudWatch alarm in infra/ names.
            observability().count(Metric.CONNECTOR_ALERTS)
        logger.warning(
            "connector alert %s: %s success rate %.2f over %d calls",
            alert.status.value,
            connector,
            rate,
            window.attempted,
            extra={"merchant_id": merchant_id, "alert": alert.id},
        )
        return alert

    def _window(self, merchant_id: str, connector: str, now: float, seconds: int) -> Tally:
        # Whole minute buckets: the window is the last `seconds // 60` minutes, this one included.
        minute = Granularity.MINUTE
        start = minute.start(now) - (seconds // 60 - 1) * minute.seconds
        buckets = self._store.buckets(merchant_id, minute, start, minute.start(now))
        return rules.tally(b for b in buckets if b.get("connector") == connector)

    def alerts(self, merchant_id: str, limit: int) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [a.to_api() for a in self._store.alerts(merchant_id, limit)],
            "has_more": False,
            "url": "/v1/alerts",
        }

    def alert_settings(self, merchant_id: str) -> dict[str, Any]:
        return self._store.alert_settings(merchant_id).to_api()

    def set_alert_settings(self, merchant_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change some of the merchant's alert rule; the others keep their values."""
        current = self._store.alert_settings(merchant_id)
        settings = AlertSettings.model_validate({**current.model_dump(), **changes})
        self._store.save_alert_settings(merchant_id, settings)
        return settings.to_api()

    # -- reports -------------------------------------------------------------------------------

    def report(
        self,
        merchant_id: str,
        start: int | None = None,
        end: int | None = None,
        interval: str | None = None,
    ) -> dict[str, Any]:
        """Success rate over time by connector and by method, latency percentiles, reasons,
        volume and refunds, for buckets starting in [start, end] (default: the last day; hour
        buckets up to two days, day buckets beyond)."""
        end = int(self._clock()) if end is None else end
        start = end - DEFAULT_RANGE_SECONDS if start is None else start
        granularity = Granularity(interval or ("hour" if end - start <= 2 * 86400 else "day"))
        first, last = granularity.start(start), granularity.start(end)
        count = (last - first) // granularity.seconds + 1
        if end < start:
            raise ParameterInvalid("created[lte] must not be before created[gte].", param="created")
        if count > MAX_BUCKETS:
            raise ParameterInvalid(
                f"That range holds {count} {granularity.value} buckets; at most {MAX_BUCKETS}. "
                "Use interval=day, or a shorter range.",
                param="interval",
            )
        starts = [first + i * granularity.seconds for i in range(count)]
        index = {s: i for i, s in enumerate(starts)}
        buckets = self._store.buckets(merchant_id, granularity, first, last)
        calls = [b for b in buckets if b.get("connector") != REFUNDS[0]]
        refunds = [b for b in buckets if b.get("connector") == REFUNDS[0]]
        return {
            "object": "analytics",
            "interval": granularity.value,
            "start": first,
            "end": last + granularity.seconds - 1,
            "buckets": starts,
            "total": rules.tally(calls).summary(),
            "by_connector": _by(calls, "connector", index),
            "by_method": _by(calls, "method", index),
            "volume": _series(calls, "volume_", index),
            "refunds": {
                "count": _series(refunds, "refunds", index).get("", [0] * len(starts)),
                "volume": _series(refunds, "refund_volume_", index),
            },
        }


def _by(buckets: list[dict[str, Any]], key: str, index: Mapping[int, int]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for bucket in buckets:
        groups.setdefault(str(bucket.get(key)), []).append(bucket)
    out: dict[str, Any] = {}
    for name, members in sorted(groups.items()):
        per_bucket = [Tally() for _ in index]
        for bucket in members:
            per_bucket[index[int(bucket["start"])]].add(bucket)
        out[name] = {
            "total": rules.tally(members).summary(),
            "success_rate": [t.success_rate() for t in per_bucket],
            "attempted": [t.attempted for t in per_bucket],
        }
    return out


def _series(
    buckets: list[dict[str, Any]], prefix: str, index: Mapping[int, int]
) -> dict[str, list[int]]:
    """Counters starting with `prefix`, summed per time bucket, by the rest of their name."""
    out: dict[str, list[int]] = {}
    for bucket in buckets:
        for name, value in bucket.items():
            if name.startswith(prefix) and isinstance(value, int):
                series = out.setdefault(name.removeprefix(prefix), [0] * len(index))
                series[index[int(bucket["start"])]] += value
    return out


def _call_fold(fact: CallFact) -> Fold:
    return Fold(
        merchant_id=fact.merchant_id,
        source=fact.payment_intent_id,
        key=fact.attempt_key,
        at=fact.created,
        dimension=(fact.connector, fact.method),
        counters=rules.counters(fact),
    )


def _refund_fold(item: Mapping[str, Any], now: float) -> Fold:
    refund = item["data"]
    return Fold(
        merchant_id=str(item["merchant_id"]),
        source=str(refund["id"]),
        key="succeeded",
        at=int(refund.get("created") or now),
        dimension=REFUNDS,
        counters={"refunds": 1, f"refund_volume_{refund['currency']}": refund["amount"]},
    )


def _method(payment: Mapping[str, Any]) -> str:
    details = payment.get("psp_payment_method")
    if isinstance(details, Mapping) and details.get("type"):
        return str(details["type"])
    types = payment.get("payment_method_types") or ["card"]
    return str(types[0])


def _became_succeeded(change: Mapping[str, Any]) -> bool:
    def status(image: Mapping[str, Any] | None) -> Any:
        return (from_image(image).get("data") or {}).get("status") if image else None

    return bool(
        status(change.get("NewImage")) == "succeeded"
        and status(change.get("OldImage")) != "succeeded"
    )
