"""`make bench`: PayFlow's speed and cost, measured against the embedded sandbox in one run.

Prints a table and writes bench/results.json. Figures that depend on this machine are shown next
to a reference measured in the same run (raw conditional PutItems on the same backend, a bare
`import boto3`, Powertools' idempotency utility), so the ratios travel better than the numbers.

    .venv/bin/python bench/run.py [--payments 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import re
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from bench import cold_start  # noqa: E402
from payflow.sandbox.runtime import Sandbox, SandboxConfig  # noqa: E402

PRICES = json.loads((ROOT / "bench" / "prices.json").read_text())
RESULTS = ROOT / "bench" / "results.json"
ADMIN_KEY = "sk_admin_bench"


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


# -- AWS call counting ----------------------------------------------------------------------------


class CallCounter:
    """botocore hooks on the handlers' clients: (service, operation) -> calls, what made each
    call, and DynamoDB capacity units by DynamoDB's own sizing rules (`item_size`).

    An update is billed on the size of the item it leaves (AWS bills the larger of before and
    after; items here only grow or keep their size on the payment path), so the counter reads
    each updated item back through `sizer`, a client that is not counted. It does so in
    `settle()`, after the timed phase: reads made while it runs would queue with the handlers'
    own requests for the embedded AWS's DynamoDB lock (about 6 a payment, against the handlers'
    10) and slow what is timed. An item updated twice in a phase is billed both times by the
    size the phase left it with; on the payment path the items updated (claims, circuits,
    deliveries, balances) stay under 1 KB, one unit either way."""

    def __init__(self, sizer: Any = None) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.purposes: Counter[tuple[str, str]] = Counter()
        self.purpose_write_units: Counter[tuple[str, str]] = Counter()
        self.write_units = 0.0
        self.read_units = 0.0
        # The simulated PSP's own book (its table, dal/simulator.py): a real PSP keeps that on
        # its side, so those calls are counted apart from PayFlow's.
        self.psp_calls: Counter[str] = Counter()
        self.enabled = True
        self._sizer = sizer
        self._updates: queue.Queue[tuple[str, str, str, str, float, int]] = queue.Queue()
        self._lock = threading.Lock()
        self._sizing = threading.Event()
        threading.Thread(target=self._size_updates, daemon=True).start()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.*.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def reset(self) -> None:
        self.settle()  # what was queued before is not billed to what comes next
        with self._lock:
            self.calls.clear()
            self.psp_calls.clear()
            self.purposes.clear()
            self.purpose_write_units.clear()
            self.write_units = self.read_units = 0.0

    def settle(self) -> None:
        """Bill every update made so far by the size of the item it left (read now)."""
        self._sizing.set()
        try:
            self._updates.join()
        finally:
            self._sizing.clear()

    def _size_updates(self) -> None:
        while True:
            call, purpose, table, key, factor, left = self._updates.get()
            self._sizing.wait()  # until settle(): taken during a phase, it waits here
            try:
                item = self._stored(table, json.loads(key))
                size = _units(item_size(item), 1024)
                # An index the update took the item out of deletes its entry: billed by about
                # the item's size, as the entry projected the whole item.
                units = factor * size + index_units(item) + left * size
                with self._lock:
                    self.purpose_write_units[(call, purpose)] += units
                    self.write_units += units
            finally:
                self._updates.task_done()

    def _before(self, model: Any, params: dict[str, Any], context: Any, **_: Any) -> None:
        if not self.enabled:
            return
        service = model.service_model.service_name
        call = f"{service}:{model.name}"
        purpose = _purpose(sys._getframe(1))
        if purpose.startswith(SIMULATED_PSP):
            with self._lock:
                self.psp_calls[call] += 1
            return
        with self._lock:
            self.calls[(service, model.name)] += 1
            self.purposes[(call, purpose)] += 1
        if service == "dynamodb":
            context["bench"] = (call, purpose, _body(params))

    def _after(self, model: Any, context: Any, **_: Any) -> None:
        if not self.enabled or "bench" not in context:
            return
        call, purpose, body = context.pop("bench")

        def later(table: str, key: dict[str, Any], factor: float, left: int) -> int:
            self._updates.put((call, purpose, table, json.dumps(key), factor, left))
            return 0

        writes, reads = _capacity(model.name, body, later)
        with self._lock:
            self.purpose_write_units[(call, purpose)] += writes
            self.write_units += writes
            self.read_units += reads

    def _stored(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        if self._sizer is None:
            return key
        item = self._sizer.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return dict(item or key)


SIMULATED_PSP = "dal.simulator."


def _purpose(frame: Any) -> str:
    """What a call is for: the innermost PayFlow function that made it (outside the DynamoDB
    helpers) and, when that is in the data layer, the first function above it that is not."""
    inner = asker = None
    while frame is not None and asker is None:
        path = frame.f_code.co_filename
        if f"{os.sep}chalicelib{os.sep}" in path and not path.endswith(f"dal{os.sep}dynamo.py"):
            module = path.rsplit(f"{os.sep}chalicelib{os.sep}", 1)[1][:-3].replace(os.sep, ".")
            name = f"{module}.{frame.f_code.co_qualname}"
            if inner is None:
                inner = name
                if not module.startswith("dal."):
                    break
            elif not module.startswith("dal."):
                asker = name
        frame = frame.f_back
    return " <- ".join(n for n in (inner, asker) if n) or "outside chalicelib"


def _body(params: dict[str, Any]) -> dict[str, Any]:
    body = params.get("body") or {}
    if isinstance(body, bytes | str):
        try:
            return dict(json.loads(body))
        except ValueError:
            return {}
    return dict(body)


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB bills for an item (its documented rules): attribute names count their
    UTF-8 length; strings their UTF-8 length, numbers about one byte per two significant digits
    plus one, booleans and nulls one byte; maps and lists 3 bytes plus one per element."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        digits = content.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(content) * 3 // 4  # base64 on the wire
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in content.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in content)
    return sum(len(str(v)) for v in content)  # sets


def _index_keys() -> tuple[str, ...]:
    """The attributes that put an item in one of the tables' global secondary indexes (each
    projects ALL attributes), from the template that deploys them."""
    template = json.loads((ROOT / "infra" / "resources.json").read_text())
    keys = []
    for resource in template.get("Resources", {}).values():
        for index in resource.get("Properties", {}).get("GlobalSecondaryIndexes", []):
            assert index["Projection"]["ProjectionType"] == "ALL", index["IndexName"]
            keys.append(
                next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH")
            )
    return tuple(keys)


INDEX_KEYS = _index_keys()


def index_units(item: dict[str, Any]) -> int:
    """Write units an item's index entries cost (not doubled in a transaction): a write to an
    indexed item is a write to each index it is in, billed by the projected (whole) item."""
    return sum(_units(item_size(item), 1024) for key in INDEX_KEYS if key in item)


def _indexes_left(update: dict[str, Any]) -> int:
    """How many indexes an update takes its item out of: the index keys its REMOVE clause names
    (a sparse index's entry is deleted when its key goes). Counted whether or not the item had
    the key: at most one unit too many, for a key already gone."""
    expression = update.get("UpdateExpression", "")
    match = re.search(r"\bREMOVE\b(.*?)(?=\b(?:SET|ADD|DELETE)\b|$)", expression, re.I | re.S)
    if not match:
        return 0
    names = update.get("ExpressionAttributeNames", {})
    removed = {names.get(part.strip(), part.strip()) for part in match.group(1).split(",")}
    return sum(1 for key in INDEX_KEYS if key in removed)


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _capacity(
    operation: str, body: dict[str, Any], later: Callable[[str, dict[str, Any], float, int], int]
) -> tuple[float, float]:
    """(write units, read units) of one DynamoDB request, on-demand: 1 WRU per KB written (x2
    in a transaction), an update by the size of the item it leaves (and of each index entry
    it deletes); 1 RRU per 4 KB read
    strongly consistent (half for eventually consistent), per item for batch reads. Updates
    and deletes are handed to `later` (table, key, factor, indexes left), which bills them
    once sized."""

    def write(action: str, payload: dict[str, Any], factor: float) -> float:
        if action in ("Put", "PutItem"):
            item = payload["Item"]
            return factor * _units(item_size(item), 1024) + index_units(item)
        if action in ("Update", "UpdateItem"):
            later(payload["TableName"], payload["Key"], factor, _indexes_left(payload))
        elif action in ("Delete", "DeleteItem"):
            later(payload["TableName"], payload["Key"], factor, 0)
        return 0.0  # updates billed later; a ConditionCheck is read capacity

    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return write(operation, body, 1.0), 0.0
    if operation == "TransactWriteItems":
        units = 0.0
        for action in body.get("TransactItems", []):
            ((name, payload),) = action.items()
            units += write(name, payload, 2.0)
        return units, 0.0
    if operation == "BatchWriteItem":
        units = 0.0
        for table, requests_ in body.get("RequestItems", {}).items():
            for request in requests_:
                if "PutRequest" in request:
                    units += write("Put", request["PutRequest"], 1.0)
                else:
                    later(table, request["DeleteRequest"]["Key"], 1.0, 0)
        return units, 0.0
    strength = 1.0 if body.get("ConsistentRead") else 0.5
    if operation in ("GetItem", "Query", "Scan"):
        return 0.0, strength
    if operation == "BatchGetItem":
        return 0.0, sum(
            len(spec.get("Keys", [])) * (1.0 if spec.get("ConsistentRead") else 0.5)
            for spec in body.get("RequestItems", {}).values()
        )
    if operation == "TransactGetItems":
        return 0.0, 2.0 * len(body.get("TransactItems", []))
    return 0.0, 0.0


# -- webhook receiver -----------------------------------------------------------------------------


class Receiver:
    """Verifies each webhook with stripe-python and notes when each succeeded event arrived."""

    def __init__(self) -> None:
        self.secret = ""
        self.succeeded_at: dict[str, float] = {}
        self.rejected = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import stripe

                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.monotonic()
                try:
                    event = stripe.Webhook.construct_event(
                        body.decode(), self.headers.get("Stripe-Signature", ""), receiver.secret
                    )
                except Exception:
                    with receiver._lock:
                        receiver.rejected += 1
                    self.send_response(400)
                else:
                    if event["type"] == "payment_intent.succeeded":
                        with receiver._lock:
                            receiver.succeeded_at.setdefault(event["data"]["object"]["id"], arrived)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the measurements ------------------------------------------------------------------------


def subscribed_receiver(session: requests.Session, api_url: str) -> tuple[Receiver, str]:
    """A Receiver subscribed, through `session`, to payment_intent.succeeded: it and the id of
    its webhook endpoint."""
    receiver = Receiver()
    endpoint = session.post(
        f"{api_url}/v1/webhook_endpoints",
        data={"url": receiver.url, "enabled_events[]": ["payment_intent.succeeded"]},
        timeout=10,
    ).json()
    receiver.secret = endpoint["secret"]
    return receiver, endpoint["id"]


def pipeline(
    sandbox: Sandbox, key: str, payments: int, concurrency: int, counter: CallCounter
) -> dict[str, Any]:
    session = requests.Session()
    session.auth = (key, "")
    receiver, endpoint_id = subscribed_receiver(session, sandbox.api_url)
    sent: dict[str, float] = {}
    lock = threading.Lock()
    local = threading.local()

    def one(i: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.auth = (key, "")
        started = time.monotonic()
        response = local.session.post(
            f"{sandbox.api_url}/v1/payment_intents",
            data={
                "amount": 1000 + i,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
            },
            headers={"Idempotency-Key": f"bench-{uuid.uuid4().hex}"},
            timeout=30,
        )
        if response.status_code == 200:
            with lock:
                sent[response.json()["id"]] = started
                answered.append((time.monotonic() - started) * 1000)

    answered: list[float] = []
    counter.reset()
    runs = _lambda_runs(sandbox)
    cpu = CpuMeter({"api_and_handlers": os.getpid(), "embedded_aws": sandbox.aws.pid})
    began = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(payments)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not set(sent) <= set(receiver.succeeded_at):
        time.sleep(0.05)
    done = time.monotonic()
    cpu_seconds = cpu.used()
    sandbox.pollers.wait_idle(timeout=60)
    counter.settle()
    calls = Counter(counter.calls)
    purposes = Counter(counter.purposes)
    purpose_wru = Counter(counter.purpose_write_units)
    write_units, read_units = counter.write_units, counter.read_units
    batches = {name: count - runs.get(name, 0) for name, count in _lambda_runs(sandbox).items()}
    latencies = [
        (receiver.succeeded_at[pi] - started) * 1000
        for pi, started in sent.items()
        if pi in receiver.succeeded_at
    ]
    session.delete(f"{sandbox.api_url}/v1/webhook_endpoints/{endpoint_id}", timeout=10)
    receiver.close()
    succeeded = len(latencies)
    return {
        "payments": payments,
        "succeeded_with_webhook": succeeded,
        "rejected_signatures": receiver.rejected,
        "seconds": round(done - began, 3),
        "payments_per_second": round(succeeded / (done - began), 2),
        "create_to_webhook_ms": {
            "p50": round(pct(latencies, 0.50), 1),
            "p95": round(pct(latencies, 0.95), 1),
            "p99": round(pct(latencies, 0.99), 1),
        },
        "create_confirm_ms": {
            "p50": round(pct(answered, 0.50), 1),
            "p95": round(pct(answered, 0.95), 1),
        },
        "clients": concurrency,
        "aws_calls": {f"{s}:{o}": n for (s, o), n in sorted(calls.items())},
        "simulated_psp_calls": dict(sorted(counter.psp_calls.items())),
        "aws_calls_by_purpose": [
            {
                "call": call,
                "purpose": purpose,
                "count": n,
                "write_units": purpose_wru[(call, purpose)],
            }
            for (call, purpose), n in sorted(purposes.items(), key=lambda kv: -kv[1])
        ],
        "dynamodb_write_units": write_units,
        "dynamodb_read_units": read_units,
        "cpu_ms_per_payment": {
            name: round(1000 * seconds / max(1, succeeded), 1)
            for name, seconds in cpu_seconds.items()
        },
        "cores": CORES,
        "event_source_batches": batches,
        "executions": _transitions(sandbox, list(sent)[:20]),
    }


CORES = len(os.sched_getaffinity(0))


class CpuMeter:
    """CPU seconds (user + system, every thread) that named processes use from now on: this
    process (the API, the handlers, the pollers, and the bench's own clients and receiver) and
    the embedded AWS."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items() if pid}
        self._start = self._now()

    def used(self) -> dict[str, float]:
        """Seconds used by each process since the meter was made, and their `total`."""
        now = self._now()
        used = {name: now[name] - self._start[name] for name in now}
        return {**used, "total": sum(used.values())}

    def _now(self) -> dict[str, float]:
        times = {name: process.cpu_times() for name, process in self._processes.items()}
        return {name: t.user + t.system for name, t in times.items()}


def latency_floor_ms(run: dict[str, Any]) -> float:
    """The lowest mean create+confirm latency `run`'s CPU allows its clients: at C ms of CPU a
    payment (answer, events, webhook), the machine's cores finish at most cores / C payments a
    second, and clients that each wait for their answer before the next (Little's law) then
    wait at least clients * C / cores ms on average, once the pipeline keeps up."""
    per_payment = run["cpu_ms_per_payment"]["total"]
    return round(run["clients"] * per_payment / run["cores"], 1)


def _counting(handler: Any) -> Any:
    """`handler`, counting its runs in its `bench_runs` attribute."""

    def counted(event: Any, context: Any) -> Any:
        counted.bench_runs += 1  # type: ignore[attr-defined]
        return handler(event, context)

    counted.bench_runs = 0  # type: ignore[attr-defined]
    return counted


def _lambda_runs(sandbox: Sandbox) -> dict[str, int]:
    """Batches the pollers handed to each event-source handler so far (wrapped on first use)."""
    runs: dict[str, int] = {}
    for poller in sandbox.pollers.pollers:
        handler = poller.handler  # type: ignore[attr-defined]
        if not hasattr(handler, "bench_runs"):
            handler = _counting(handler)
            poller.handler = handler  # type: ignore[attr-defined]
        runs[poller.name] = handler.bench_runs
    return runs


def _transitions(sandbox: Sandbox, pi_ids: list[str]) -> dict[str, float]:
    """State transitions and Lambda tasks per execution, from a sample's execution history."""
    client = sandbox.aws.client("stepfunctions")
    arn = os.environ["PAYFLOW_PAYMENT_STATE_MACHINE_ARN"]
    transitions: list[int] = []
    tasks: list[int] = []
    for pi_id in pi_ids:
        execution = arn.replace(":stateMachine:", ":execution:") + f":{pi_id}-attempt-1"
        try:
            events = client.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        except Exception:
            continue
        transitions.append(sum(1 for e in events if e["type"].endswith("StateEntered")))
        tasks.append(
            sum(1 for e in events if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"))
        )
    if not transitions:
        return {"transitions": 0.0, "tasks": 0.0, "sampled": 0}
    return {
        "transitions": statistics.mean(transitions),
        "tasks": statistics.mean(tasks) or statistics.mean(transitions) / 2,
        "sampled": len(transitions),
    }


def raw_put_items(sandbox: Sandbox, count: int) -> dict[str, Any]:
    """Single conditional PutItems, one thread, on the same embedded backend."""
    client = sandbox.aws.client("dynamodb")
    table = os.environ["PAYFLOW_PAYMENTS_TABLE"]
    run = uuid.uuid4().hex
    began = time.monotonic()
    for i in range(count):
        client.put_item(
            TableName=table,
            Item={"pk": {"S": f"bench#{run}#{i}"}, "sk": {"S": "bench"}, "n": {"N": str(i)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    seconds = time.monotonic() - began
    return {"count": count, "seconds": round(seconds, 3), "per_second": round(count / seconds, 1)}


def idempotency(sandbox: Sandbox, merchant_id: str, counter: CallCounter, runs: int) -> dict:
    """A create and its replay: PayFlow's own idempotency next to Powertools' utility, both
    in-process on the same backend, DynamoDB round trips counted by the hooks."""
    from chalicelib.container import services
    from chalicelib.domain.idempotency import StoredResponse, fingerprint
    from chalicelib.domain.ids import new_id
    from chalicelib.domain.payment_intents import CaptureMethod
    from chalicelib.services.context import RequestContext

    svc = services()

    def payflow_create(key: str) -> Any:
        claim = svc.idempotency.claim(
            merchant_id,
            key,
            fingerprint("POST", "/v1/payment_intents", {"amount": 500}),
            new_id("pi"),
        )
        if isinstance(claim, StoredResponse):
            return claim
        ctx = RequestContext(request_id=new_id("req"), idempotency_key=key, claim=claim)
        return svc.payment_intents.create(
            merchant_id,
            ctx,
            amount=500,
            currency="usd",
            capture_method=CaptureMethod.AUTOMATIC,
            payment_method=None,
            confirm=False,
            description=None,
            metadata=None,
            payment_method_types=None,
        )

    powertools_create = _powertools_create(sandbox, counter)
    results: dict[str, Any] = {}
    for name, create in (("payflow", payflow_create), ("powertools", powertools_create)):
        first_ms, replay_ms, first_calls, replay_calls = [], [], [], []
        for _ in range(runs):
            key = uuid.uuid4().hex
            for timings, calls in ((first_ms, first_calls), (replay_ms, replay_calls)):
                counter.reset()
                began = time.perf_counter()
                create(key)
                timings.append((time.perf_counter() - began) * 1000)
                calls.append(sum(n for (s, _), n in counter.calls.items() if s == "dynamodb"))
        results[name] = {
            "create_round_trips": statistics.median(first_calls),
            "create_ms_p50": round(statistics.median(first_ms), 2),
            "replay_round_trips": statistics.median(replay_calls),
            "replay_ms_p50": round(statistics.median(replay_ms), 2),
        }
    return results


def _powertools_create(sandbox: Sandbox, counter: CallCounter) -> Callable[[str], Any]:
    """Powertools' idempotent_function around the same object write (one PutItem)."""
    import warnings

    # Outside Lambda the utility cannot see the remaining time; it says so on every call.
    warnings.filterwarnings("ignore", message="Couldn't determine the remaining time")
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    dynamodb = sandbox.aws.client("dynamodb")
    table = "bench-powertools-idempotency"
    existing = dynamodb.list_tables()["TableNames"]
    if table not in existing:
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    counter.attach(dynamodb)
    layer = DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)
    config = IdempotencyConfig(event_key_jmespath="key", use_local_cache=False)
    payments = os.environ["PAYFLOW_PAYMENTS_TABLE"]

    @idempotent_function(data_keyword_argument="request", persistence_store=layer, config=config)
    def create(request: dict[str, str]) -> dict[str, str]:
        pi_id = f"pi_bench_{request['key']}"
        dynamodb.put_item(
            TableName=payments,
            Item={"pk": {"S": pi_id}, "sk": {"S": "bench"}, "amount": {"N": "500"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        return {"id": pi_id}

    return lambda key: create(request={"key": key})


def stripe_keep_alive(sandbox: Sandbox, key: str, count: int) -> dict[str, Any]:
    """stripe-python (one keep-alive connection) retrieving a PaymentIntent."""
    import stripe

    client = stripe.StripeClient(key, base_addresses={"api": sandbox.api_url})
    pi = client.v1.payment_intents.create(params={"amount": 700, "currency": "usd"})
    timings = []
    for _ in range(count):
        began = time.perf_counter()
        client.v1.payment_intents.retrieve(pi.id)
        timings.append((time.perf_counter() - began) * 1000)
    return {
        "count": count,
        "p50_ms": round(pct(timings, 0.50), 2),
        "p99_ms": round(pct(timings, 0.99), 2),
    }


def rate_limit_cost(sandbox: Sandbox, key: str, merchant_id: str, count: int) -> dict[str, Any]:
    """Reads under Stripe's live-mode limit (100/s per key): what the shared counter costs."""
    from chalicelib.container import services

    limits = {"rate_limits[read]": 100, "rate_limits[write]": 100}
    requests.post(
        f"{sandbox.api_url}/v1/sandbox/merchants/{merchant_id}",
        data=limits,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    ).raise_for_status()
    stats = services().rate_limiter.stats
    checks, trips = stats.checks, stats.round_trips
    session = requests.Session()
    session.auth = (key, "")
    statuses = [
        session.get(f"{sandbox.api_url}/v1/payment_intents", params={"limit": 1}).status_code
        for _ in range(count)
    ]
    checked = max(1, stats.checks - checks)
    return {
        "requests": count,
        "refused_429": statuses.count(429),
        "counter_writes_per_request": round((stats.round_trips - trips) / checked, 3),
    }


# -- cost -----------------------------------------------------------------------------------------


def cost_per_million(pipe: dict[str, Any], api_ms: float) -> dict[str, Any]:
    """AWS list price of a million payments like the pipeline's, from bench/prices.json."""
    n = pipe["succeeded_with_webhook"] or 1
    per = {k: v / n for k, v in pipe["aws_calls"].items()}
    sqs_requests = sum(v for k, v in per.items() if k.startswith("sqs:"))
    batches = pipe["event_source_batches"]
    deliver_batches = batches.get("DeliverWebhooks", 0) / n
    stream_batches = sum(v for k, v in batches.items() if k != "DeliverWebhooks") / n
    # The SQS event source mapping receives and deletes each batch (billed SQS requests).
    sqs_requests += 2 * deliver_batches
    tasks = pipe["executions"]["tasks"]
    invocations = 1 + tasks + stream_batches + deliver_batches
    memory_gb = PRICES["assumptions"]["lambda_memory_mb"] / 1024
    gb_seconds = memory_gb * (
        api_ms / 1000 + (invocations - 1) * PRICES["assumptions"]["handler_ms"] / 1000
    )
    lines = {
        "DynamoDB writes": pipe["dynamodb_write_units"] / n * PRICES["dynamodb"]["write_unit"],
        "DynamoDB reads": pipe["dynamodb_read_units"] / n * PRICES["dynamodb"]["read_unit"],
        "SQS": sqs_requests * PRICES["sqs"]["request"],
        "Step Functions": pipe["executions"]["transitions"] * PRICES["stepfunctions"]["transition"],
        "Lambda requests": invocations * PRICES["lambda"]["request"],
        "Lambda duration": gb_seconds * PRICES["lambda"]["gb_second"],
        "API Gateway": 1 * PRICES["apigateway"]["rest_request"],
        "DynamoDB Streams": 0.0,
    }
    per_million = {k: round(v * 1_000_000, 2) for k, v in lines.items()}
    return {
        "per_million_usd": per_million,
        "total_per_million_usd": round(sum(per_million.values()), 2),
        "lambda_invocations_per_payment": round(invocations, 2),
        "stream_reads_note": PRICES["dynamodbstreams"]["note"],
    }


# -- the run --------------------------------------------------------------------------------------


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    config = SandboxConfig(
        api_port=0,
        aws_port=0,
        admin_key=ADMIN_KEY,
        secret_key="sk_test_bench_demo",
        settings=(("PAYFLOW_LOG_LEVEL", "CRITICAL"), ("PAYFLOW_CONFIRM_WAIT_MS", "5000")),
        time_scale=0.01,
    )
    with Sandbox(config) as running:
        yield running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PayFlow benchmarks on the embedded sandbox")
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--puts", type=int, default=500)
    parser.add_argument(
        "--pipeline-only", action="store_true", help="the pipeline and its AWS calls, nothing else"
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"payments": args.payments, "concurrency": args.concurrency}
    with sandbox() as running:
        from chalicelib.container import services, webhooks

        merchant = requests.post(
            f"{running.api_url}/v1/sandbox/merchants",
            data={"name": "bench"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        ).json()
        key, merchant_id = merchant["secret_key"], merchant["id"]
        counter = CallCounter(sizer=running.aws.client("dynamodb"))
        for client in services().clients() + webhooks().clients():
            counter.attach(client)
        print(f"pipeline: {args.payments} payments ...", file=sys.stderr, flush=True)
        results["pipeline"] = pipeline(running, key, args.payments, args.concurrency, counter)
        print("pipeline, one client ...", file=sys.stderr, flush=True)
        results["pipeline_one_client"] = pipeline(
            running, key, max(20, args.payments // 4), 1, counter
        )
        from chalicelib.observability import observability

        aggregate = observability().aggregate
        api_ms = 0.0
        if aggregate is not None:
            for series in aggregate.series():
                if series.metric == "ApiLatency" and "POST /v1/payment_intents" in str(
                    series.dimensions
                ):
                    api_ms = series.total / max(1, series.count)
        results["cost"] = cost_per_million(results["pipeline"], api_ms)
        if args.pipeline_only:
            cost = results["cost"]
            print(f"AWS cost per million payments: ${cost['total_per_million_usd']:,.2f}")
            for line, usd in cost["per_million_usd"].items():
                print(f"  {line}: ${usd:,.2f}")
            print(latency_table(results))
            print()
            print(purpose_table(results["pipeline"]))
            return 0
        print("raw PutItems ...", file=sys.stderr, flush=True)
        results["raw_put_item"] = raw_put_items(running, args.puts)
        results["pipeline_to_put_item_ratio"] = round(
            results["pipeline"]["payments_per_second"] / results["raw_put_item"]["per_second"], 4
        )
        print("idempotency ...", file=sys.stderr, flush=True)
        results["idempotency"] = idempotency(running, merchant_id, counter, runs=30)
        print("stripe-python keep-alive ...", file=sys.stderr, flush=True)
        results["stripe_keep_alive_retrieve"] = stripe_keep_alive(running, key, 200)
        print("rate limiting ...", file=sys.stderr, flush=True)
        results["rate_limit"] = rate_limit_cost(running, key, merchant_id, 300)
    print("cold start ...", file=sys.stderr, flush=True)
    results["cold_start"] = cold_start.measure()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print()
    print(latency_table(results))
    print()
    print(purpose_table(results["pipeline"]))
    print()
    print(cold_start.table(results["cold_start"]))
    return 0


def latency_table(r: dict[str, Any]) -> str:
    """create+confirm (the API's answer) and create -> verified webhook, 8 clients and one, with
    the CPU each payment took and the latency floor that CPU sets (`latency_floor_ms`)."""
    lines = [
        "| clients | create+confirm p50 / p95 | create -> verified webhook p50 / p95 "
        "| CPU per payment (API and handlers + embedded AWS) | floor for the mean answer |"
    ]
    lines.append("| ---: | ---: | ---: | ---: | ---: |")
    for run in (r["pipeline"], r["pipeline_one_client"]):
        api, hook, cpu = (
            run["create_confirm_ms"],
            run["create_to_webhook_ms"],
            run["cpu_ms_per_payment"],
        )
        lines.append(
            f"| {run['clients']} | {api['p50']} / {api['p95']} ms "
            f"| {hook['p50']} / {hook['p95']} ms "
            f"| {cpu['total']} ms ({cpu['api_and_handlers']} + {cpu['embedded_aws']}) "
            f"| {latency_floor_ms(run)} ms on {run['cores']} cores |"
        )
    return "\n".join(lines)


def purpose_table(p: dict[str, Any]) -> str:
    """Each AWS call of a payment with what made it, per payment, most frequent first."""
    n = max(1, p["succeeded_with_webhook"])
    lines = ["| AWS call | made by (data layer <- service) | per payment | WRU per payment |"]
    lines.append("| --- | --- | ---: | ---: |")
    for row in p["aws_calls_by_purpose"]:
        lines.append(
            f"| {row['call']} | {row['purpose']} | {row['count'] / n:.2f} "
            f"| {row['write_units'] / n:.2f} |"
        )
    return "\n".join(lines)


def table(r: dict[str, Any]) -> str:
    p, put, cost = r["pipeline"], r["raw_put_item"], r["cost"]
    idem, cold, sk = r["idempotency"], r["cold_start"]["imports"], r["stripe_keep_alive_retrieve"]
    lat = p["create_to_webhook_ms"]
    n = max(1, p["succeeded_with_webhook"])
    calls_per = {k: round(v / n, 2) for k, v in p["aws_calls"].items()}
    rows = [
        ("pipeline (create+confirm -> verified webhook)", f"{p['payments_per_second']} payments/s"),
        ("  create -> webhook p50 / p95 / p99", f"{lat['p50']} / {lat['p95']} / {lat['p99']} ms"),
        ("raw conditional PutItem, same backend", f"{put['per_second']} /s"),
        ("  ratio pipeline / PutItem", f"{r['pipeline_to_put_item_ratio']}"),
        ("AWS calls per payment (PayFlow's handlers)", f"{sum(calls_per.values()):.1f}"),
        *((f"  {k}", str(v)) for k, v in calls_per.items()),
        (
            "  not counted: the simulated PSP's own book",
            f"{sum(p.get('simulated_psp_calls', {}).values()) / n:.1f} calls",
        ),
        (
            "DynamoDB WRU / RRU per payment",
            f"{p['dynamodb_write_units'] / max(1, p['succeeded_with_webhook']):.1f} / "
            f"{p['dynamodb_read_units'] / max(1, p['succeeded_with_webhook']):.1f}",
        ),
        ("Step Functions transitions per payment", f"{p['executions']['transitions']:.1f}"),
        ("Lambda invocations per payment", f"{cost['lambda_invocations_per_payment']}"),
        ("AWS cost per million payments", f"${cost['total_per_million_usd']:,.2f}"),
        *((f"  {k}", f"${v:,.2f}") for k, v in cost["per_million_usd"].items()),
        (
            "idempotent create: PayFlow",
            f"{idem['payflow']['create_round_trips']:g} round trips, "
            f"{idem['payflow']['create_ms_p50']} ms",
        ),
        (
            "idempotent create: Powertools utility",
            f"{idem['powertools']['create_round_trips']:g} round trips, "
            f"{idem['powertools']['create_ms_p50']} ms",
        ),
        (
            "replay: PayFlow",
            f"{idem['payflow']['replay_round_trips']:g} round trips, "
            f"{idem['payflow']['replay_ms_p50']} ms",
        ),
        (
            "replay: Powertools utility",
            f"{idem['powertools']['replay_round_trips']:g} round trips, "
            f"{idem['powertools']['replay_ms_p50']} ms",
        ),
        (
            "cold start: import app / import boto3",
            f"{cold['app_ms']} / {cold['bare_boto3_ms']} ms = {cold['ratio']}",
        ),
        ("stripe-python keep-alive retrieve p50 / p99", f"{sk['p50_ms']} / {sk['p99_ms']} ms"),
        *_rate_limit_rows(r.get("rate_limit")),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'measure':<{width}} | value |", f"| {'-' * width} | --- |"]
    lines += [f"| {k:<{width}} | {v} |" for k, v in rows]
    return "\n".join(lines)


def _rate_limit_rows(rate: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not rate:
        return []
    writes = rate["counter_writes_per_request"]
    per_million = writes * 1_000_000 * PRICES["dynamodb"]["write_unit"]
    return [
        (
            "rate limit (100/s per key): counter writes per request",
            f"{writes} (${per_million:,.2f} per million requests; "
            f"{rate['refused_429']} of {rate['requests']} refused)",
        )
    ]


if __name__ == "__main__":
    sys.exit(main())
